//! One error type for the whole program. Every variant says where the problem is
//! (file, line, column, or flag), so `main` can print it and exit non-zero.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem in an input file at a known place. `line` and `col` are 1-based; 0 = unknown.
    #[error("{}{}: {msg}", file.display(), place(*line, *col))]
    Data {
        file: PathBuf,
        line: u64,
        col: u64,
        msg: String,
    },

    /// A command-line flag with a value that makes no sense.
    #[error("{flag}: {msg}")]
    Flag { flag: String, msg: String },

    /// A model file that cannot be read, or that does not fit the data.
    #[error("model {}: {msg}", file.display())]
    Model { file: PathBuf, msg: String },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// Training that cannot go on (the loss diverged): not a usage error, so exit 1.
    #[error("{0}")]
    Training(String),

    /// A backend asked to do something its buffers cannot hold, or output that cannot be
    /// written: program errors rather than user errors, still reported without a panic.
    #[error("{0}")]
    Internal(String),

    /// Anything the GPU side reports: no adapter, limits exceeded, shader errors, device lost.
    #[error("gpu: {0}")]
    Gpu(String),
}

fn place(line: u64, col: u64) -> String {
    match (line, col) {
        (0, _) => String::new(),
        (l, 0) => format!(":{l}"),
        (l, c) => format!(":{l}:{c}"),
    }
}

impl Error {
    pub fn data(file: impl Into<PathBuf>, line: u64, col: u64, msg: impl Into<String>) -> Self {
        Error::Data {
            file: file.into(),
            line,
            col,
            msg: msg.into(),
        }
    }
    pub fn flag(flag: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Flag {
            flag: flag.into(),
            msg: msg.into(),
        }
    }
    pub fn model(file: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Model {
            file: file.into(),
            msg: msg.into(),
        }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub fn training(msg: impl Into<String>) -> Self {
        Error::Training(msg.into())
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }
    pub fn gpu(msg: impl Into<String>) -> Self {
        Error::Gpu(msg.into())
    }
}

/// `s` cut to about `max` characters (on a character boundary, with `…`), so a huge value or
/// column list quoted in a message keeps the message readable.
pub fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cut_keeps_short_text_and_shortens_long_text_on_char_boundaries() {
        assert_eq!(super::cut("short", 80), "short");
        let long = "é".repeat(200);
        let c = super::cut(&long, 80);
        assert_eq!(c.chars().count(), 81);
        assert!(c.ends_with('…'));
    }
}
