//! `%debugger`: a training job's saved tensors, plots of them over the steps, and its rules'
//! statuses. The reading and reducing live in [`crate::debugger`]; this only parses and
//! renders.

use clap::{Parser, Subcommand};
use polars::prelude::*;
use rustmaker_magics::table::frame_bundle;
use rustmaker_magics::{
    parse_args, Magic, MagicCall, MagicContext, MagicError, MagicForm, MimeBundle,
};
use serde_json::json;

use crate::debugger::summary::{self, Reduction};
use crate::debugger::{self, Mode, Trial};
use crate::render;

use super::{component, open_store};
pub(crate) use rustmaker_magics::failed;

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct DebuggerArgs {
    #[command(subcommand)]
    command: DebuggerCommand,
}

#[derive(Subcommand, Debug)]
enum DebuggerCommand {
    /// The tensors a job saved.
    Tensors {
        job: String,
        #[arg(long)]
        collection: Option<String>,
        /// Also keep every saved value as a frame (one row a tensor and step).
        #[arg(short = 'o')]
        frame: Option<String>,
    },
    /// A tensor over the steps, as an SVG chart.
    Plot {
        job: String,
        #[arg(long)]
        tensor: String,
        #[arg(long)]
        reduction: Option<String>,
        #[arg(long)]
        mode: Option<String>,
    },
    /// The job's rules: status, the step that fired them, why.
    Rules { job: String },
}

const HELP: &str = "\
%debugger tensors JOB [--collection C] [-o FRAME]
%debugger plot JOB --tensor NAME [--reduction min|max|mean|std|variance|sum|prod|l1|l2|norm] [--mode train|eval]
%debugger rules JOB

A job saves tensors when its definition has a DebugHookConfig (or %train --debugger,
--save-interval N, --collections a,b, --rule NAME[(key=value,…)][:stop]). They are in
smdebug's format under the hook's LocalPath or JOB/debug-output, so
`smdebug.trials.create_trial(path)` reads them too. `plot` draws a scalar as a line, a
tensor reduced when --reduction says how, otherwise its min, quartiles and max at each step;
with --mode the x axis is that mode's own step. `rules` shows each rule's
RuleEvaluationStatus (InProgress, NoIssuesFound, IssuesFound, Error, Stopped).";

pub struct DebuggerMagic;

fn trial_of(job: &str) -> Result<Trial, MagicError> {
    let store = open_store()?;
    let c = component(&store, job)?;
    let dir = c
        .job_dir
        .ok_or_else(|| failed(format!("{job} has no job directory on record")))?;
    let out = debugger::output_dir(&dir);
    if !out.exists() {
        return Err(failed(format!(
            "{job} saved no tensors: train it with a DebugHookConfig or --debugger"
        )));
    }
    let mut trial = Trial::open(&out);
    trial.refresh()?;
    Ok(trial)
}

fn mode_arg(text: Option<&str>) -> Result<Option<Mode>, MagicError> {
    text.map(|m| {
        Mode::parse(m).ok_or_else(|| {
            MagicError::usage(
                "debugger",
                format!("--mode {m}: use train, eval, predict or global"),
            )
        })
    })
    .transpose()
}

impl Magic for DebuggerMagic {
    fn name(&self) -> &str {
        "debugger"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line]
    }
    fn summary(&self) -> &str {
        "A training job's saved tensors (smdebug's format), plots of them, and its rules' statuses."
    }
    fn help(&self) -> String {
        HELP.into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let args: DebuggerArgs = parse_args("debugger", call.argv()?)?;
        match args.command {
            DebuggerCommand::Tensors {
                job,
                collection,
                frame,
            } => {
                let trial = trial_of(&job)?;
                let rows = summary::tensor_rows(&trial, collection.as_deref())?;
                let header = [
                    "tensor",
                    "collections",
                    "steps",
                    "modes",
                    "shape",
                    "last (mean)",
                ];
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            r.collections.join(", "),
                            r.steps.to_string(),
                            r.modes.join(", "),
                            format!("{:?}", r.shape),
                            render::short(r.last),
                        ]
                    })
                    .collect();
                let title = format!("{job}: {} tensors", rows.len());
                ctx.display(table(&title, &header, &cells), None);
                if let Some(name) = frame {
                    let df = values_frame(&trial, &rows)?;
                    ctx.display(frame_bundle(&df, 10), None);
                    ctx.frames().insert(&name, df)?;
                }
                Ok(())
            }
            DebuggerCommand::Plot {
                job,
                tensor,
                reduction,
                mode,
            } => {
                let trial = trial_of(&job)?;
                let reduction = reduction.as_deref().map(Reduction::parse).transpose()?;
                let mode = mode_arg(mode.as_deref())?;
                let lines = summary::lines(&trial, &tensor, mode, reduction)?;
                let svg = render::curves(&format!("{job}: {tensor}"), &lines);
                let text = lines
                    .iter()
                    .map(|(label, points)| {
                        let last = points.last().map_or(f64::NAN, |p| p.1);
                        format!(
                            "{label}: {} steps, last {}",
                            points.len(),
                            render::short(last)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                ctx.display(
                    MimeBundle::text(text).with("image/svg+xml", json!(svg)),
                    None,
                );
                Ok(())
            }
            DebuggerCommand::Rules { job } => {
                let store = open_store()?;
                let c = component(&store, &job)?;
                let statuses = c
                    .job_dir
                    .as_deref()
                    .and_then(debugger::load_statuses)
                    .and_then(|s| s.as_array().cloned())
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        failed(format!(
                            "{job} ran no rules: add DebugRuleConfigurations or --rule NAME"
                        ))
                    })?;
                let header = ["rule", "status", "step", "details"];
                let cells: Vec<Vec<String>> = statuses
                    .iter()
                    .map(|s| {
                        vec![
                            s["RuleConfigurationName"].as_str().unwrap_or("").to_owned(),
                            s["RuleEvaluationStatus"].as_str().unwrap_or("").to_owned(),
                            s["FiredAtStep"]
                                .as_u64()
                                .map(|v| v.to_string())
                                .unwrap_or_default(),
                            s["StatusDetails"].as_str().unwrap_or("").to_owned(),
                        ]
                    })
                    .collect();
                let bundle = table(&format!("{job}: rules"), &header, &cells).with(
                    "application/json",
                    json!({"DebugRuleEvaluationStatuses": statuses}),
                );
                ctx.display(bundle, None);
                Ok(())
            }
        }
    }
}

/// A table as text (a title line, then a line a row) and HTML.
fn table(title: &str, header: &[&str], cells: &[Vec<String>]) -> MimeBundle {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let lines: Vec<String> = cells.iter().map(|c| c.join("  ")).collect();
    MimeBundle::text(format!("{title}\n{}", lines.join("\n")))
        .with("text/html", json!(render::grid(&header, cells)))
}

/// Every saved value of the listed tensors, one row a tensor and step (non-scalars by
/// their mean, with their size).
fn values_frame(trial: &Trial, rows: &[summary::TensorRow]) -> Result<DataFrame, MagicError> {
    let (mut names, mut steps, mut modes, mut mode_steps, mut values, mut sizes) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for r in rows {
        for (step, s, t) in trial.series(&r.name, None) {
            names.push(r.name.clone());
            steps.push(step);
            modes.push(s.mode.name());
            mode_steps.push(s.mode_step);
            values.push(Reduction::Mean.apply(&t.values));
            sizes.push(t.values.len() as u64);
        }
    }
    let height = names.len();
    DataFrame::new(
        height,
        vec![
            Column::new("tensor".into(), names),
            Column::new("step".into(), steps),
            Column::new("mode".into(), modes),
            Column::new("mode_step".into(), mode_steps),
            Column::new("value".into(), values),
            Column::new("size".into(), sizes),
        ],
    )
    .map_err(|e| failed(format!("cannot make the tensors' frame: {e}")))
}
