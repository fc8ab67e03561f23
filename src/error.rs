//! One error type for the whole program. Every variant says where the problem is
//! (file, line, column, or flag), so `main` can print it and exit non-zero.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem in an input file at a known place. `line` and `col` are 1-based; 0 = unknown.
    #[error("{}{}: {}", file.display(), place(*line, *col), readable(msg))]
    Data {
        file: PathBuf,
        line: u64,
        col: u64,
        msg: String,
    },

    /// A command-line flag with a value that makes no sense.
    #[error("{}: {}", cut(flag, 80), readable(msg))]
    Flag { flag: String, msg: String },

    /// A model file that cannot be read, or that does not fit the data.
    #[error("model {}: {}", file.display(), readable(msg))]
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

/// `msg` with each long '…'-quoted run cut to 80 characters (see [`cut`]): a value, name or
/// pattern quoted from a file or a flag can be megabytes long, and every message that quotes
/// one stays readable this way, wherever it was made. A run counts as quoted text when it has
/// no space or is longer than any message's own prose between an apostrophe and a quote.
pub fn readable(msg: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 80;
    const PROSE: usize = 1000;
    if msg.len() <= MAX {
        return std::borrow::Cow::Borrowed(msg);
    }
    let mut out = String::with_capacity(msg.len().min(4 * PROSE));
    let mut rest = msg;
    while let Some(open) = rest.find('\'') {
        let (head, tail) = rest.split_at(open + 1);
        out.push_str(head);
        let Some(close) = tail.find('\'') else {
            rest = tail;
            break;
        };
        let inner = &tail[..close];
        let long = inner.chars().nth(MAX).is_some();
        if long && (!inner.contains(' ') || inner.len() > PROSE) {
            out.push_str(&cut(inner, MAX));
        } else {
            out.push_str(inner);
        }
        out.push('\'');
        rest = &tail[close + 1..];
    }
    // An unclosed quote around a huge value: the rest is cut as a whole.
    out.push_str(&if rest.len() > PROSE {
        cut(rest, MAX)
    } else {
        rest.to_string()
    });
    std::borrow::Cow::Owned(out)
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

    #[test]
    fn long_quoted_values_are_cut_wherever_the_message_was_made() {
        let value = "x".repeat(5000);
        let e = super::Error::data(
            "d.csv",
            3,
            2,
            format!("column 'b': '{value}' is not a number"),
        );
        let s = e.to_string();
        assert!(s.starts_with("d.csv:3:2: column 'b': 'xxxx"), "{s}");
        assert!(s.ends_with("x…' is not a number"), "{s}");
        assert!(s.chars().count() < 130, "{} chars", s.chars().count());
        // Short quotes and the prose between an apostrophe and a quote stay whole.
        let prose = "the model's first features are not a window of 7 over 'views' (views[t-7], …)";
        assert_eq!(super::readable(prose), prose);
        let long_prose = format!("the model's columns {} are missing: 'a'", "a, ".repeat(40));
        assert_eq!(super::readable(&long_prose), long_prose);
        // A flag's value and an unclosed quote around a huge value.
        let e = super::Error::flag("--target", format!("no column '{value}' in d.csv"));
        assert!(e.to_string().chars().count() < 130, "{e}");
        let e = super::Error::flag("--keep", format!("pattern '{value}"));
        assert!(e.to_string().chars().count() < 130, "{e}");
    }
}
