//! CSV reading, column selection, splits and the normalizer. (Being written.)
