use clap::Parser;

fn main() {
    quiet_wayland_probe();
    let mut cli = wgtrain::cli::Cli::parse();
    if let wgtrain::cli::Command::Train(a) = &mut cli.command {
        // Checkpoints keep the command line; a path that is not UTF-8 keeps none.
        a.argv = std::env::args_os()
            .map(|s| s.into_string())
            .collect::<Result<_, _>>()
            .unwrap_or_default();
    }
    if let Err(e) = wgtrain::signals::install() {
        wgtrain::errln!("wgtrain: warning: {e}; Ctrl-C will end the run without saving");
    }
    let result = wgtrain::cli::run(cli);
    if wgtrain::signals::requested() {
        // The run stopped early on purpose and said what it saved (or why it could not).
        if let Err(e) = &result {
            wgtrain::errln!("wgtrain: error: {e}");
        }
        std::process::exit(wgtrain::signals::EXIT_INTERRUPTED);
    }
    if let Err(e) = result {
        wgtrain::errln!("wgtrain: error: {e}");
        // 2 for a command line that makes no sense (as clap does), 1 for everything else.
        let code = if matches!(e, wgtrain::Error::Flag { .. }) {
            2
        } else {
            1
        };
        std::process::exit(code);
    }
}

/// Vulkan drivers probe for a Wayland display while wgpu enumerates adapters, and libwayland
/// prints "error: XDG_RUNTIME_DIR is invalid" on headless machines without one. The probe
/// fails either way; pointing the variable at the temp dir only keeps that scary line away.
fn quiet_wayland_probe() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: first thing in main, before any other thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
}
