//! The training loop. (Being written.)
