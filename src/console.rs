//! Printing that can never kill a run. `println!` panics when stdout is a closed pipe
//! (`wgtrain train … | head -1`) or a full disk; a run that dies for a progress line loses
//! hours of training. Here a failed write only stops further printing to that stream: the
//! run goes on and its model is saved.
//!
//! Whether stdout/stderr still work is process-wide by nature (they are the process's), so
//! it lives in two statics rather than being threaded through every call.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

static STDOUT_OPEN: AtomicBool = AtomicBool::new(true);
static STDERR_OPEN: AtomicBool = AtomicBool::new(true);

/// Writes `line` and a newline to `w` unless `open` says an earlier write failed; a failure
/// clears `open`. Returns whether the line was written.
pub fn write_line(open: &AtomicBool, w: &mut dyn Write, line: &str) -> bool {
    if !open.load(Ordering::Relaxed) {
        return false;
    }
    let ok = w
        .write_all(line.as_bytes())
        .and_then(|_| w.write_all(b"\n"))
        .and_then(|_| w.flush())
        .is_ok();
    if !ok {
        open.store(false, Ordering::Relaxed);
    }
    ok
}

/// A line on stdout; never fails, never panics.
pub fn out(line: &str) -> bool {
    write_line(&STDOUT_OPEN, &mut io::stdout().lock(), line)
}

/// A line on stderr; never fails, never panics.
pub fn err(line: &str) -> bool {
    write_line(&STDERR_OPEN, &mut io::stderr().lock(), line)
}

/// False once a write to stdout failed.
pub fn stdout_open() -> bool {
    STDOUT_OPEN.load(Ordering::Relaxed)
}

/// The command's data on stdout (predictions): unlike a progress line, losing it is an error,
/// except when the reader went away on purpose (`| head`), which ends the output quietly.
pub fn data_to(w: &mut dyn Write, bytes: &[u8]) -> Result<()> {
    match w.write_all(bytes).and_then(|_| w.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::io("<stdout>", e)),
    }
}

/// [`data_to`] on the process's stdout.
pub fn data_to_stdout(bytes: &[u8]) -> Result<()> {
    data_to(&mut io::stdout().lock(), bytes)
}

/// `println!` that never panics (see the module note).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::console::out(&format!($($arg)*))
    };
}

/// `eprintln!` that never panics (see the module note).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::console::err(&format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that accepts `room` bytes and then fails as a full disk or closed pipe does.
    struct Failing {
        room: usize,
        kind: io::ErrorKind,
        got: Vec<u8>,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from(self.kind));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_stream_stops_printing_without_a_panic() {
        for kind in [io::ErrorKind::BrokenPipe, io::ErrorKind::StorageFull] {
            let open = AtomicBool::new(true);
            let mut w = Failing {
                room: 12,
                kind,
                got: vec![],
            };
            assert!(write_line(&open, &mut w, "epoch 1"));
            assert!(!write_line(&open, &mut w, "epoch 2"), "{kind:?}");
            assert!(!open.load(Ordering::Relaxed));
            w.room = 100;
            assert!(!write_line(&open, &mut w, "epoch 3"), "stays closed");
            assert_eq!(w.got, b"epoch 1\nepoc");
        }
    }

    #[test]
    fn data_output_is_quiet_on_a_closed_pipe_and_an_error_on_a_full_disk() {
        let mut pipe = Failing {
            room: 3,
            kind: io::ErrorKind::BrokenPipe,
            got: vec![],
        };
        assert!(data_to(&mut pipe, b"a,b\n1,2\n").is_ok());
        let mut disk = Failing {
            room: 3,
            kind: io::ErrorKind::StorageFull,
            got: vec![],
        };
        let e = data_to(&mut disk, b"a,b\n1,2\n").unwrap_err();
        assert!(e.to_string().contains("<stdout>"), "{e}");
    }
}
