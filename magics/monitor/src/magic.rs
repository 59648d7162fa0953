//! `%monitor baseline|check` in the kernel: the data is a frame from the frame store or a
//! file, and the results show as tables beside the files written.

use clap::Parser;
use polars::prelude::*;
use rustmaker_magics::data::SharedObjectStore;
use rustmaker_magics::table::frame_bundle;
use rustmaker_magics::{
    parse_args, Magic, MagicCall, MagicContext, MagicError, MagicForm, MimeBundle,
};

pub use crate::command::MonitorCommand;
use crate::command::{execute, Outcome};
use crate::format::Statistics;

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct MonitorArgs {
    #[command(subcommand)]
    command: MonitorCommand,
}

pub struct MonitorMagic {
    pub store: SharedObjectStore,
}

use rustmaker_magics::failed;

/// One row per feature: what a user looks at first.
pub fn summary(stats: &Statistics) -> Result<DataFrame, MagicError> {
    let f = &stats.features;
    let num = |g: fn(&crate::format::NumericalStatistics) -> f64| -> Vec<Option<f64>> {
        f.iter()
            .map(|x| x.numerical_statistics.as_ref().map(g))
            .collect()
    };
    let common = |x: &crate::format::FeatureStatistics| {
        x.numerical_statistics
            .as_ref()
            .map(|n| n.common)
            .or(x.string_statistics.as_ref().map(|s| s.common))
    };
    df!(
        "feature" => f.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
        "inferred_type" => f.iter().map(|x| x.inferred_type.as_str()).collect::<Vec<_>>(),
        "present" => f.iter().map(|x| common(x).map(|c| c.num_present)).collect::<Vec<_>>(),
        "missing" => f.iter().map(|x| common(x).map(|c| c.num_missing)).collect::<Vec<_>>(),
        "mean" => num(|n| n.mean),
        "std_dev" => num(|n| n.std_dev),
        "min" => num(|n| n.min),
        "max" => num(|n| n.max),
        "distinct" => f.iter().map(|x| x.string_statistics.as_ref().map(|s| s.distinct_count)).collect::<Vec<_>>()
    )
    .map_err(failed)
}

impl Magic for MonitorMagic {
    fn name(&self) -> &str {
        "monitor"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line]
    }
    fn summary(&self) -> &str {
        "Data quality in Model Monitor's formats: `baseline` (statistics, constraints) and `check` (violations)."
    }
    fn help(&self) -> String {
        "%monitor baseline --data FRAME|FILE|s3://… --output DIR [--header|--no-header] [--schema NAME[:TYPE],…]
%monitor check --data FRAME|FILE|s3://… --baseline DIR --output DIR [--header|--no-header] [--schema …] [-o NAME]
%monitor check --capture PREFIX|s3://PREFIX [--since HOUR] [--until HOUR] --baseline DIR --output DIR [-o NAME]
%monitor report DIR

baseline writes DIR/statistics.json and DIR/constraints.json in SageMaker Model Monitor's
formats (KLL sketches with c = 0.64, k = 2048; HyperLogLog distinct counts; suggested
constraints). check reads them (edit constraints.json to change thresholds), profiles the new
data and writes DIR/statistics.json and DIR/constraint_violations.json: data_type_check,
completeness_check, categorical_values_check, baseline_drift_check, missing_column_check,
extra_column_check. FILE is .csv, .jsonl or .parquet. Whether a CSV's first line names the
columns is sniffed (a header when its values do not fit the types of the rest of each column)
and told; --header / --no-header say it, and without a header the columns are _c0, _c1, …. With --capture, SageMaker data-capture files (endpoint/variant/yyyy/mm/dd/hh/*.jsonl)
are checked hour by hour, as a monitoring schedule does, into DIR/yyyy/mm/dd/hh/; each hour's
execution is Completed, CompletedWithViolations or Failed (with the reason). report shows a
check's output inline and writes DIR/report.html: the violations, and per feature the baseline
and current distributions with the drift distance. `rustmaker monitor baseline|check|report`
does the same from a shell.

Example:
  %monitor baseline --data train --output baseline/
  %monitor check --data today.csv --header --baseline baseline/ --output reports/today/"
            .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let args: MonitorArgs = parse_args("monitor", call.argv()?)?;
        match execute(args.command, &*self.store, ctx)? {
            Outcome::Baseline {
                source,
                header,
                output,
                result,
            } => {
                if let Some(choice) = header.filter(|c| !c.forced) {
                    ctx.stdout(&format!("{source}: {choice}.\n"));
                }
                ctx.stdout(&format!(
                    "Baseline of {source} ({} rows, {} features) written to {} (statistics.json, constraints.json).\n",
                    result.statistics.dataset.item_count,
                    result.statistics.features.len(),
                    output.display()
                ));
                ctx.display(frame_bundle(&summary(&result.statistics)?, 1000), None);
            }
            Outcome::Report { dir, html } => {
                ctx.display(
                    MimeBundle::text(format!(
                        "Data quality report written to {}",
                        dir.join("report.html").display()
                    ))
                    .with("text/html", serde_json::Value::String(html)),
                    None,
                );
            }
            Outcome::Capture { runs, frame } => {
                let table = executions_frame(&runs)?;
                ctx.display(frame_bundle(&table, 1000), None);
                if let Some(name) = frame {
                    ctx.frames().insert(&name, table)?;
                }
            }
            Outcome::Check {
                source,
                header,
                baseline,
                output,
                outcome,
                frame,
            } => {
                if let Some(choice) = header.filter(|c| !c.forced) {
                    ctx.stdout(&format!("{source}: {choice}.\n"));
                }
                ctx.display(
                    MimeBundle::text(format!(
                        "{}: {} violation(s) of the baseline in {}; files in {}",
                        outcome.status.as_str(),
                        outcome.violations.len(),
                        baseline.display(),
                        output.display()
                    )),
                    None,
                );
                let v = &outcome.violations;
                let table = df!(
                    "feature_name" => v.iter().map(|x| x.feature_name.as_str()).collect::<Vec<_>>(),
                    "constraint_check_type" => v.iter().map(|x| serde_json::to_value(x.constraint_check_type).ok().and_then(|s| s.as_str().map(str::to_owned)).unwrap_or_default()).collect::<Vec<_>>(),
                    "description" => v.iter().map(|x| x.description.as_str()).collect::<Vec<_>>()
                )
                .map_err(failed)?;
                if !v.is_empty() {
                    ctx.display(frame_bundle(&table, 1000), None);
                }
                let d = &outcome.drift;
                let drift = df!(
                    "feature" => d.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
                    "drift_distance" => d.iter().map(|x| x.1).collect::<Vec<_>>(),
                    "threshold" => d.iter().map(|x| x.2).collect::<Vec<_>>()
                )
                .map_err(failed)?;
                ctx.display(frame_bundle(&drift, 1000), None);
                if let Some(name) = frame {
                    ctx.frames().insert(&name, table)?;
                }
            }
        }
        Ok(())
    }
}

/// One row per monitoring execution, in SageMaker's words.
pub fn executions_frame(runs: &[crate::capture::Execution]) -> Result<DataFrame, MagicError> {
    df!(
        "ScheduledTime" => runs.iter().map(|r| crate::capture::hour_label(r.hour)).collect::<Vec<_>>(),
        "MonitoringExecutionStatus" => runs.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
        "records" => runs.iter().map(|r| r.records).collect::<Vec<_>>(),
        "violations" => runs.iter().map(|r| r.violations as u64).collect::<Vec<_>>(),
        "FailureReason" => runs.iter().map(|r| r.failure_reason.clone().unwrap_or_default()).collect::<Vec<_>>(),
        "report" => runs.iter().map(|r| r.output.display().to_string()).collect::<Vec<_>>()
    )
    .map_err(failed)
}
