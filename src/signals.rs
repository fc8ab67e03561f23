//! Ctrl-C (SIGINT) and SIGTERM. The first asks the run to stop after its current step and
//! save what it has (the model, the metrics, the checkpoint), then exit with
//! [`EXIT_INTERRUPTED`]. A second ends the process at once from the handler (`_exit`), so no
//! output is touched: files are written through temp files and renames, so an interrupted
//! write leaves only a `.NAME.tmp-PID` file, which the next write of that file removes.
//!
//! Signals are process-wide, so the flag is one static; only `main` installs the handlers
//! (library callers and tests see `requested() == false` unless they call [`request`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};

/// The exit status after a first Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;

struct State {
    stop: Arc<AtomicBool>,
    which: Arc<AtomicUsize>,
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| State {
        stop: Arc::new(AtomicBool::new(false)),
        which: Arc::new(AtomicUsize::new(0)),
    })
}

/// Installs the handlers for SIGINT and SIGTERM (once; later calls do nothing).
#[cfg(unix)]
pub fn install() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    static INSTALLED: OnceLock<()> = OnceLock::new();
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    let s = state();
    for sig in [SIGINT, SIGTERM] {
        let err = |e: std::io::Error| Error::internal(format!("installing a signal handler: {e}"));
        // Actions run in the order registered: the exit checks the flag before it is set,
        // so only a signal that finds it already set ends the process.
        flag::register_conditional_shutdown(sig, EXIT_INTERRUPTED, Arc::clone(&s.stop))
            .map_err(err)?;
        flag::register(sig, Arc::clone(&s.stop)).map_err(err)?;
        flag::register_usize(sig, Arc::clone(&s.which), sig as usize).map_err(err)?;
    }
    let _ = INSTALLED.set(());
    Ok(())
}

#[cfg(not(unix))]
pub fn install() -> Result<()> {
    Ok(())
}

/// True once a first SIGINT or SIGTERM arrived (or [`request`] was called).
pub fn requested() -> bool {
    state().stop.load(Ordering::SeqCst)
}

/// Asks for a stop as a first Ctrl-C would (tests, and callers embedding the trainer).
pub fn request() {
    state().stop.store(true, Ordering::SeqCst);
}

/// The name of the signal that asked for the stop, for the closing message.
pub fn which() -> &'static str {
    match state().which.load(Ordering::SeqCst) {
        #[cfg(unix)]
        n if n == signal_hook::consts::SIGTERM as usize => "SIGTERM",
        #[cfg(unix)]
        n if n == signal_hook::consts::SIGINT as usize => "Ctrl-C (SIGINT)",
        _ => "a stop request",
    }
}
