//! `wgtrain check`: every GPU kernel against the CPU reference on this machine's adapter.

use crate::backend::Backend;
use crate::backend::gpu::{DeviceChoice, GpuBackend, check, select_adapter};
use crate::cli::CheckArgs;
use crate::error::{Error, Result};

/// `check` needs a GPU: `auto` here means any adapter, software ones included.
pub fn run(a: &CheckArgs) -> Result<()> {
    let choice = match a.dev.device {
        DeviceChoice::Cpu => {
            return Err(Error::flag(
                "--device",
                "check compares a GPU with the CPU; it needs auto or gpu",
            ));
        }
        DeviceChoice::Auto | DeviceChoice::Gpu => DeviceChoice::Gpu,
    };
    let adapter = select_adapter(choice, a.dev.adapter.as_deref())?
        .ok_or_else(|| Error::gpu("no GPU adapter found"))?;
    let mut gpu = GpuBackend::new(adapter)?;
    println!(
        "checking {} against the CPU reference (seed {})",
        gpu.describe(),
        a.seed
    );
    let lines = check::run_checks(&mut gpu, a.seed)?;
    for l in &lines {
        println!("{l}");
    }
    let failed = lines.iter().filter(|l| !l.pass).count();
    println!("{} passed, {failed} failed", lines.len() - failed);
    if failed > 0 {
        return Err(Error::gpu(format!(
            "{failed} of {} checks failed on {}",
            lines.len(),
            gpu.describe()
        )));
    }
    Ok(())
}
