//! `wgtrain plot METRICS.csv`: redraw the loss curves from a metrics file.

use crate::cli::PlotArgs;
use crate::error::Result;

pub fn run(a: &PlotArgs) -> Result<()> {
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| a.metrics.with_extension("png"));
    crate::plot::format_of(&out)?;
    let _outputs = crate::io::OutputPlan::new()
        .input("the metrics file", &a.metrics)
        .output("--out", &out)
        .check()?;
    let history = crate::metrics::read(&a.metrics)?;
    let title = a.title.clone().unwrap_or_else(|| {
        a.metrics
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    });
    crate::plot::loss_curves(&out, &history, "loss", &title)?;
    crate::errln!("wgtrain: loss curves in {}", out.display());
    Ok(())
}
