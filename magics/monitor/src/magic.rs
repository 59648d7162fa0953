//! `%monitor baseline|check` in the kernel: the data is a frame from the frame store or a
//! file, and the results show as tables beside the files written.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use polars::prelude::*;
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

#[derive(Subcommand, Debug)]
enum MonitorCommand {
    Baseline {
        #[arg(long)]
        data: String,
        #[arg(long)]
        output: PathBuf,
        /// The CSV's first line names the columns.
        #[arg(long)]
        header: bool,
    },
    Check {
        #[arg(long)]
        data: String,
        #[arg(long)]
        baseline: PathBuf,
        #[arg(long)]
        output: PathBuf,
        #[arg(long)]
        header: bool,
        /// Keep the violations as a frame.
        #[arg(short = 'o')]
        frame: Option<String>,
    },
}

pub struct MonitorMagic;

fn failed(e: impl std::fmt::Display) -> MagicError {
    MagicError::Failed(e.to_string())
}

fn source(data: &str, header: bool, ctx: &mut dyn MagicContext) -> Result<Source, MagicError> {
    if data.starts_with("s3://") {
        return Err(failed(format!(
            "{data}: copy the object first (`%s3 cp {data} .` or `%s3 read {data} -o NAME`) and profile the file or frame"
        )));
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
        "%monitor baseline --data FRAME|FILE --output DIR [--header]
%monitor check --data FRAME|FILE --baseline DIR --output DIR [--header] [-o NAME]

baseline writes DIR/statistics.json and DIR/constraints.json in SageMaker Model Monitor's
formats (KLL sketches with c = 0.64, k = 2048; HyperLogLog distinct counts; suggested
constraints). check reads them (edit constraints.json to change thresholds), profiles the new
data and writes DIR/statistics.json and DIR/constraint_violations.json: data_type_check,
completeness_check, categorical_values_check, baseline_drift_check, missing_column_check,
extra_column_check. FILE is .csv (--header when the first line names the columns), .jsonl or
.parquet. `rustmaker monitor baseline|check` does the same from a shell.

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
            } => {
                let src = source(&data, header, ctx)?;
                let result = crate::baseline(&src, &output).map_err(monitor_error)?;
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
            MonitorCommand::Check {
                data,
                baseline,
                output,
                header,
                frame,
            } => {
                if let Some(name) = &frame {
                    rustmaker_magics::frames::check_name(name)?;
                }
                let src = source(&data, header, ctx)?;
                let outcome = crate::check(&src, &baseline, &output).map_err(monitor_error)?;
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

fn monitor_error(e: MonitorError) -> MagicError {
    failed(e)
}
