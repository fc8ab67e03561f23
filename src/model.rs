//! The MLP and its model file. (Being written.)
