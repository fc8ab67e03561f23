use clap::Parser;

fn main() {
    let cli = wgtrain::app::Cli::parse();
    if let Err(e) = wgtrain::app::run(cli) {
        eprintln!("wgtrain: error: {e}");
        // 2 for a command line that makes no sense (as clap does), 1 for everything else.
        let code = if matches!(e, wgtrain::Error::Flag { .. }) {
            2
        } else {
            1
        };
        std::process::exit(code);
    }
}
