//! AWS Glue from the notebook: `%glue` (jobs and the Data Catalog), `%%glue` (statements in an
//! interactive session), `%%glue_script`, and the session magics in the names of AWS Glue's own
//! Jupyter magics (`%iam_role`, `%worker_type`, `%status`, …).
//!
//! - [`jobs`]: job definitions, runs, and scripts uploaded to the account's Glue assets bucket.
//! - [`catalog`]: databases, tables and partitions as tables.
//! - [`sessions`]: the interactive session: its settings, its life, and statements run in it.

pub mod catalog;
pub mod jobs;
pub mod sessions;

use std::sync::{Arc, Mutex};

use clap::{Parser, Subcommand};
use rustmaker_magics::{parse_args, Magic, MagicCall, MagicContext, MagicError, MagicForm};

use crate::client::{failed, Aws};

/// Glue versions that run Spark jobs and interactive sessions.
pub const GLUE_VERSIONS: [&str; 4] = ["2.0", "3.0", "4.0", "5.0"];

/// A Glue client on the kernel's AWS settings; `region` overrides theirs (`%region`).
pub(crate) fn client(
    aws: &mut Aws,
    region: Option<&str>,
) -> Result<aws_sdk_glue::Client, MagicError> {
    let sdk = aws.sdk_for_region(region)?;
    Ok(aws_sdk_glue::Client::new(&sdk))
}

pub(crate) fn check_glue_version(v: &str) -> Result<(), MagicError> {
    if GLUE_VERSIONS.contains(&v) {
        Ok(())
    } else {
        Err(failed(format!(
            "Glue version `{v}` is not one of {}",
            GLUE_VERSIONS.join(", ")
        )))
    }
}

pub(crate) fn check_worker_type(t: &str) -> Result<(), MagicError> {
    let known = aws_sdk_glue::types::WorkerType::values();
    if known.contains(&t) {
        Ok(())
    } else {
        Err(failed(format!(
            "worker type `{t}` is not one of {}",
            known.join(", ")
        )))
    }
}

pub(crate) fn check_workers(n: i32) -> Result<(), MagicError> {
    if n >= 2 {
        Ok(())
    } else {
        Err(failed(format!(
            "number of workers {n}: Glue needs at least 2 (one driver, one executor)"
        )))
    }
}

/// `K=V` pairs as Glue job arguments, whose keys start with `--`.
pub(crate) fn job_arguments(
    magic: &str,
    pairs: &[String],
) -> Result<std::collections::HashMap<String, String>, MagicError> {
    pairs
        .iter()
        .map(|pair| {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                MagicError::usage(magic, format!("--arg {pair}: write it as KEY=VALUE"))
            })?;
            let k = k.trim_start_matches('-');
            if k.is_empty() {
                return Err(MagicError::usage(
                    magic,
                    format!("--arg {pair}: the key is empty"),
                ));
            }
            Ok((format!("--{k}"), v.to_owned()))
        })
        .collect()
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct GlueArgs {
    #[command(subcommand)]
    command: GlueCommand,
}

#[derive(Subcommand, Debug)]
enum GlueCommand {
    /// Every job: name, role, version, workers, script.
    Jobs {
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
    },
    /// One job: create, start, runs, status, wait, stop, delete.
    Job {
        #[command(subcommand)]
        command: jobs::JobCommand,
    },
    Databases {
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
    },
    Tables {
        database: String,
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
    },
    Table {
        /// DATABASE.TABLE
        name: String,
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
    },
}

/// `%glue …` (jobs and catalog) and `%%glue` (a statement in the interactive session).
pub struct GlueMagic {
    pub aws: Arc<Mutex<Aws>>,
    pub session: Arc<sessions::Session>,
}

impl Magic for GlueMagic {
    fn name(&self) -> &str {
        "glue"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line, MagicForm::Cell]
    }
    fn summary(&self) -> &str {
        "AWS Glue: `%glue jobs|job …|databases|tables|table`; `%%glue` runs the cell in an interactive session."
    }
    fn help(&self) -> String {
        "%%glue                      the cell's code runs as a statement in the Glue interactive session
                            (started on first use with the session magics' settings: %status shows them)
%glue jobs [-o NAME]
%glue job create NAME --script PATH_OR_S3 --role ROLE [--glue-version 5.0] [--worker-type G.1X]
                 [--number-of-workers 2] [--timeout MINUTES] [--max-retries N] [--arg KEY=VALUE …]
                 (a local script is uploaded to s3://aws-glue-assets-ACCOUNT-REGION/scripts/NAME.py)
%glue job start NAME [--arg KEY=VALUE …] [--wait]
%glue job runs NAME [-o NAME]
%glue job status NAME RUN_ID
%glue job wait NAME RUN_ID [--stop]   live state until the run ends; interrupt stops waiting
                                      (with --stop it stops the run too)
%glue job stop NAME RUN_ID
%glue job delete NAME
%glue databases [-o NAME]
%glue tables DATABASE [-o NAME]
%glue table DATABASE.TABLE [-o NAME]  columns, location, format and partitions

%%glue_script NAME replaces a job's script with the cell. Region, credentials and endpoint come
from `%aws config` and the standard AWS chain; `%region` overrides the region for Glue.

Example:
  %glue job create nightly --script etl.py --role GlueJobRole --arg input=s3://data/in
  %glue job start nightly --wait"
            .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        if call.form == MagicForm::Cell {
            if !call.args.trim().is_empty() {
                return Err(MagicError::usage(
                    "glue",
                    format!(
                        "`%%glue` takes no options (got `{}`); configure the session with %%configure or the session magics",
                        call.args
                    ),
                ));
            }
            return self.session.run_statement(&self.aws, &call.body, ctx);
        }
        let args: GlueArgs = parse_args("glue", call.argv()?)?;
        let region = self.session.region();
        let mut aws = self.aws.lock().unwrap_or_else(|p| p.into_inner());
        let glue = client(&mut aws, region.as_deref())?;
        match args.command {
            GlueCommand::Jobs { output } => jobs::list(&aws, &glue, output.as_deref(), ctx),
            GlueCommand::Job { command } => {
                jobs::run(&mut aws, &glue, region.as_deref(), command, ctx)
            }
            GlueCommand::Databases { output } => {
                catalog::databases(&aws, &glue, output.as_deref(), ctx)
            }
            GlueCommand::Tables { database, output } => {
                catalog::tables(&aws, &glue, &database, output.as_deref(), ctx)
            }
            GlueCommand::Table { name, output } => {
                catalog::table(&aws, &glue, &name, output.as_deref(), ctx)
            }
        }
    }
    fn shutdown(&self) {
        self.session.shutdown(&self.aws);
    }
}
