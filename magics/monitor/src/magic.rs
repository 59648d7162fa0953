//! `%monitor baseline|check` in the kernel: the data is a frame from the frame store or a
//! file, and the results show as tables beside the files written.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use polars::prelude::*;
use rustmaker_magics::scratch::Scratch;
use rustmaker_magics::table::frame_bundle;
use rustmaker_magics::{
    parse_args, Magic, MagicCall, MagicContext, MagicError, MagicForm, MimeBundle,
};

use crate::format::Statistics;
use crate::{MonitorError, Source};

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct MonitorArgs {
    #[command(subcommand)]
    command: MonitorCommand,
}

/// The subcommands of `%monitor`, and of `rustmaker monitor` on the command line.
#[derive(Subcommand, Debug)]
pub enum MonitorCommand {
    /// Profile a data set: writes OUTPUT/statistics.json and OUTPUT/constraints.json.
    Baseline {
        /// A .csv, .jsonl or .parquet file, an s3:// object, or (in a notebook) a frame.
        #[arg(long)]
        data: String,
        #[arg(long)]
        output: PathBuf,
        /// The CSV's first line names the columns.
        #[arg(long)]
        header: bool,
        /// Column names (a CSV's, in order) and fixed types: `id:Integral,price,color:String`.
        #[arg(long)]
        schema: Option<String>,
    },
    /// Check data against a baseline: writes OUTPUT/statistics.json and
    /// OUTPUT/constraint_violations.json, and reports the execution status (Completed,
    /// CompletedWithViolations).
    Check {
        /// A .csv, .jsonl or .parquet file, an s3:// object, or (in a notebook) a frame.
        #[arg(long, required_unless_present = "capture", conflicts_with = "capture")]
        data: Option<String>,
        /// A data-capture folder or s3:// prefix (endpoint/variant/yyyy/mm/dd/hh/*.jsonl below
        /// it): each hour is checked into OUTPUT/yyyy/mm/dd/hh/, as a monitoring schedule would.
        #[arg(long)]
        capture: Option<PathBuf>,
        /// First hour to check (2022-04-18T05 or a full timestamp); default: the first captured.
        #[arg(long, requires = "capture")]
        since: Option<String>,
        /// Last hour to check; default: the last captured.
        #[arg(long, requires = "capture")]
        until: Option<String>,
        #[arg(long)]
        baseline: PathBuf,
        #[arg(long)]
        output: PathBuf,
        #[arg(long)]
        header: bool,
        /// Column names (a CSV's, in order) and fixed types, as for `baseline`.
        #[arg(long)]
        schema: Option<String>,
        /// In a notebook: keep the violations (or the executions, with --capture) as a frame.
        #[arg(short = 'o')]
        frame: Option<String>,
    },
    /// Write DIR/report.html for a check's output directory.
    Report { dir: PathBuf },
}

/// Downloads an `s3://` object or prefix into a local folder and returns its local path (the
/// kernel gives the AWS magics' S3 access, so this crate needs no AWS SDK).
pub type Fetch = Box<
    dyn Fn(&str, &std::path::Path, &dyn MagicContext) -> Result<PathBuf, MagicError> + Send + Sync,
>;

pub struct MonitorMagic {
    pub fetch: Fetch,
}

fn failed(e: impl std::fmt::Display) -> MagicError {
    MagicError::Failed(e.to_string())
}

fn source(
    data: &str,
    header: bool,
    fetch: &Fetch,
    scratch: &Scratch,
    ctx: &mut dyn MagicContext,
) -> Result<Source, MagicError> {
    if data.starts_with("s3://") {
        let path = fetch(data, scratch.path(), &*ctx)?;
        if path.is_dir() {
            return Err(failed(format!(
                "{data} is a prefix; give one object (.csv, .jsonl or .parquet)"
            )));
        }
        return Source::file(&path, header).map_err(failed);
    }
    if let Ok(frame) = ctx.frames().get(data) {
        return Ok(Source::Frame {
            name: data.to_owned(),
            frame: frame.clone(),
        });
    }
    let path = PathBuf::from(data);
    if !path.exists() {
        return Err(failed(format!(
            "`{data}` is neither a frame (`%frames` lists them) nor a file"
        )));
    }
    Source::file(&path, header).map_err(failed)
}

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
        "%monitor baseline --data FRAME|FILE|s3://… --output DIR [--header] [--schema NAME[:TYPE],…]
%monitor check --data FRAME|FILE|s3://… --baseline DIR --output DIR [--header] [--schema …] [-o NAME]
%monitor check --capture PREFIX|s3://PREFIX [--since HOUR] [--until HOUR] --baseline DIR --output DIR [-o NAME]
%monitor report DIR

baseline writes DIR/statistics.json and DIR/constraints.json in SageMaker Model Monitor's
formats (KLL sketches with c = 0.64, k = 2048; HyperLogLog distinct counts; suggested
constraints). check reads them (edit constraints.json to change thresholds), profiles the new
data and writes DIR/statistics.json and DIR/constraint_violations.json: data_type_check,
completeness_check, categorical_values_check, baseline_drift_check, missing_column_check,
extra_column_check. FILE is .csv (--header when the first line names the columns), .jsonl or
.parquet. With --capture, SageMaker data-capture files (endpoint/variant/yyyy/mm/dd/hh/*.jsonl)
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
        match args.command {
            MonitorCommand::Baseline {
                data,
                output,
                header,
                schema,
            } => {
                let schema =
                    crate::Schema::parse_option(schema.as_deref()).map_err(monitor_error)?;
                let scratch = Scratch::new("monitor")?;
                let src = source(&data, header, &self.fetch, &scratch, ctx)?;
                let result =
                    crate::baseline(&src, schema.as_ref(), &output).map_err(monitor_error)?;
                ctx.stdout(&format!(
                    "Baseline of {} ({} rows, {} features) written to {} (statistics.json, constraints.json).\n",
                    src.describe(),
                    result.statistics.dataset.item_count,
                    result.statistics.features.len(),
                    output.display()
                ));
                ctx.display(frame_bundle(&summary(&result.statistics)?, 1000), None);
                Ok(())
            }
            MonitorCommand::Report { dir } => {
                let html = crate::report::write(&dir).map_err(monitor_error)?;
                ctx.display(
                    MimeBundle::text(format!(
                        "Data quality report written to {}",
                        dir.join("report.html").display()
                    ))
                    .with("text/html", serde_json::Value::String(html)),
                    None,
                );
                Ok(())
            }
            MonitorCommand::Check {
                capture: Some(prefix),
                since,
                until,
                baseline,
                output,
                frame,
                ..
            } => {
                if let Some(name) = &frame {
                    rustmaker_magics::frames::check_name(name)?;
                }
                let hour = |t: Option<String>| {
                    crate::capture::parse_hour_option(t.as_deref()).map_err(monitor_error)
                };
                let scratch = Scratch::new("monitor")?;
                let text = prefix.to_string_lossy().into_owned();
                let prefix = if text.starts_with("s3://") {
                    (self.fetch)(&text, scratch.path(), &*ctx)?
                } else {
                    prefix
                };
                let runs = crate::capture::check_capture(
                    &prefix,
                    &baseline,
                    &output,
                    hour(since)?,
                    hour(until)?,
                )
                .map_err(monitor_error)?;
                let table = executions_frame(&runs)?;
                ctx.display(frame_bundle(&table, 1000), None);
                if let Some(name) = frame {
                    ctx.frames().insert(&name, table)?;
                }
                Ok(())
            }
            MonitorCommand::Check {
                data,
                baseline,
                output,
                header,
                schema,
                frame,
                ..
            } => {
                let schema =
                    crate::Schema::parse_option(schema.as_deref()).map_err(monitor_error)?;
                if let Some(name) = &frame {
                    rustmaker_magics::frames::check_name(name)?;
                }
                let data = data.expect("clap requires --data without --capture");
                let scratch = Scratch::new("monitor")?;
                let src = source(&data, header, &self.fetch, &scratch, ctx)?;
                let outcome = crate::check(&src, schema.as_ref(), &baseline, &output)
                    .map_err(monitor_error)?;
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
                Ok(())
            }
        }
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

fn monitor_error(e: MonitorError) -> MagicError {
    failed(e)
}
