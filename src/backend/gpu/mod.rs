//! The wgpu backend. (Being written.)
