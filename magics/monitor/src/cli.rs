//! `rustmaker monitor …`: the same commands as `%monitor`, printed as lines for a shell.

use rustmaker_magics::console::Console;
use rustmaker_magics::data::ObjectStore;
use rustmaker_magics::MagicError;

use crate::command::{execute, MonitorCommand, Outcome};

/// Runs `command`, reading `s3://` data through `store`; prints what it did on stdout (the
/// header choice of a sniffed CSV on stderr).
pub fn run(command: MonitorCommand, store: &dyn ObjectStore) -> Result<(), MagicError> {
    let mut console = Console::new();
    match execute(command, store, &mut console)? {
        Outcome::Baseline {
            source,
            header,
            output,
            result,
        } => {
            if let Some(choice) = header.filter(|c| !c.forced) {
                eprintln!("{source}: {choice}.");
            }
            println!(
                "Baseline of {source} ({} rows, {} features) written to {}",
                result.statistics.dataset.item_count,
                result.statistics.features.len(),
                output.display()
            );
        }
        Outcome::Report { dir, .. } => {
            println!("Report written to {}", dir.join("report.html").display());
        }
        Outcome::Capture { runs, .. } => {
            for run in runs {
                println!(
                    "{} {} records={} violations={} {}",
                    crate::capture::hour_label(run.hour),
                    run.status.as_str(),
                    run.records,
                    run.violations,
                    run.failure_reason.unwrap_or_default()
                );
            }
        }
        Outcome::Check {
            source,
            header,
            output,
            outcome,
            ..
        } => {
            if let Some(choice) = header.filter(|c| !c.forced) {
                eprintln!("{source}: {choice}.");
            }
            for v in &outcome.violations {
                println!("{}: {}", v.feature_name, v.description);
            }
            println!(
                "{}: {} violation(s); files in {}",
                outcome.status.as_str(),
                outcome.violations.len(),
                output.display()
            );
        }
    }
    Ok(())
}
