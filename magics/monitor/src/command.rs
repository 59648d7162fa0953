//! `%monitor …` and `rustmaker monitor …`: one command type, dispatched once here into an
//! [`Outcome`] that the magic ([`crate::magic`]) and the command line ([`crate::cli`]) each
//! render their own way.

use std::path::PathBuf;

use clap::Subcommand;
use rustmaker_magics::csv_header::{HeaderArgs, HeaderChoice};
use rustmaker_magics::data::{self, DataArg, ObjectStore};
use rustmaker_magics::scratch::Scratch;
use rustmaker_magics::{MagicContext, MagicError};

use crate::capture::Execution;
use crate::{Baseline, CheckOutcome, Schema, Source};

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
        #[command(flatten)]
        csv: HeaderArgs,
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
        #[command(flatten)]
        csv: HeaderArgs,
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

/// What a command did, for its front end to show.
pub enum Outcome {
    Baseline {
        source: String,
        header: Option<HeaderChoice>,
        output: PathBuf,
        result: Baseline,
    },
    Check {
        source: String,
        header: Option<HeaderChoice>,
        baseline: PathBuf,
        output: PathBuf,
        outcome: CheckOutcome,
        frame: Option<String>,
    },
    Capture {
        runs: Vec<Execution>,
        frame: Option<String>,
    },
    Report {
        dir: PathBuf,
        html: String,
    },
}

/// The data of `--data`: a frame, a file, or an `s3://` object downloaded into `scratch`.
fn source(
    arg: &str,
    header: Option<bool>,
    store: &dyn ObjectStore,
    scratch: &Scratch,
    ctx: &mut dyn MagicContext,
) -> Result<Source, MagicError> {
    let formats = ".csv, .jsonl or .parquet";
    // A name with an extension is a file (frame names have none): refuse an unknown format
    // before looking for it, which says more than "not found".
    if !arg.starts_with("s3://") && std::path::Path::new(arg).extension().is_some() {
        Source::check_format(std::path::Path::new(arg)).map_err(MagicError::from)?;
    }
    match data::resolve(arg, store, scratch.path(), ctx, formats)? {
        DataArg::Frame { name, frame } => Ok(Source::Frame { name, frame }),
        DataArg::File { path, .. } => Source::file(&path, header).map_err(MagicError::from),
    }
}

/// Runs `command`; data arguments are resolved through `store` and `ctx`'s frames.
pub fn execute(
    command: MonitorCommand,
    store: &dyn ObjectStore,
    ctx: &mut dyn MagicContext,
) -> Result<Outcome, MagicError> {
    let check_frame = |frame: &Option<String>| match frame {
        Some(name) => rustmaker_magics::frames::check_name(name),
        None => Ok(()),
    };
    match command {
        MonitorCommand::Baseline {
            data,
            output,
            csv,
            schema,
        } => {
            let schema = Schema::parse_option(schema.as_deref()).map_err(MagicError::from)?;
            let scratch = Scratch::new("monitor")?;
            let src = source(&data, csv.given(), store, &scratch, ctx)?;
            let result =
                crate::baseline(&src, schema.as_ref(), &output).map_err(MagicError::from)?;
            Ok(Outcome::Baseline {
                source: src.describe(),
                header: src.header_choice().cloned(),
                output,
                result,
            })
        }
        MonitorCommand::Report { dir } => {
            let html = crate::report::write(&dir).map_err(MagicError::from)?;
            Ok(Outcome::Report { dir, html })
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
            check_frame(&frame)?;
            let hour = |t: Option<String>| {
                crate::capture::parse_hour_option(t.as_deref()).map_err(MagicError::from)
            };
            let scratch = Scratch::new("monitor")?;
            let text = prefix.to_string_lossy().into_owned();
            let prefix = if text.starts_with("s3://") {
                store.fetch(&text, scratch.path(), Some(&*ctx))?
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
            .map_err(MagicError::from)?;
            Ok(Outcome::Capture { runs, frame })
        }
        MonitorCommand::Check {
            data,
            baseline,
            output,
            csv,
            schema,
            frame,
            ..
        } => {
            let schema = Schema::parse_option(schema.as_deref()).map_err(MagicError::from)?;
            check_frame(&frame)?;
            let data = data.ok_or_else(|| {
                MagicError::usage("monitor", "give --data SOURCE or --capture PREFIX")
            })?;
            let scratch = Scratch::new("monitor")?;
            let src = source(&data, csv.given(), store, &scratch, ctx)?;
            let outcome = crate::check(&src, schema.as_ref(), &baseline, &output)
                .map_err(MagicError::from)?;
            Ok(Outcome::Check {
                source: src.describe(),
                header: src.header_choice().cloned(),
                baseline,
                output,
                outcome,
                frame,
            })
        }
    }
}
