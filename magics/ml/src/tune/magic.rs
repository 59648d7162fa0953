//! `%%tune NAME` (the request as JSON or YAML), `%tune NAME --job JOB …` (the short form),
//! and `%tune list|describe|stop|analytics`.

mod commands;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, Subcommand};
use polars::prelude::*;
use rustmaker_magics::scratch::Scratch;
use rustmaker_magics::table::frame_bundle;
use rustmaker_magics::{
    parse_args, Magic, MagicCall, MagicContext, MagicError, MagicForm, MimeBundle,
};
use serde_json::{json, Value as Json};

use super::config::{self, TuningConfig, WarmStartType};
use super::runner::{self, Trial, TrialTemplate, TuneWatcher};
use super::strategy::Observation;
use crate::definition::TrainingDefinition;
use crate::magic::{default_experiment, failed, job_kind, open_store, stop_message};
use crate::metrics::lower_is_better;
use crate::render;
use crate::store::{self, no_tuning_job, NewTuningJob, Status, Store, TrialRow, TuningRow};
use rustmaker_magics::data::SharedObjectStore;

use commands::{command, describe};

pub struct TuneMagic {
    pub store: SharedObjectStore,
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct TuneArgs {
    /// The tuning job's name (1 to 32 letters, digits, hyphens).
    name: String,
    /// The request in a JSON or YAML file instead of the cell.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Short form: tune the training job JOB's definition.
    #[arg(long)]
    job: Option<String>,
    #[arg(long)]
    objective: Option<String>,
    #[arg(long, conflicts_with = "minimize")]
    maximize: bool,
    #[arg(long)]
    minimize: bool,
    #[arg(long = "max")]
    max_jobs: Option<u64>,
    #[arg(long, default_value_t = 1)]
    parallel: u64,
    /// NAME=MIN:MAX[:linear|log|reverselog|auto] or NAME=A,B,C (categorical).
    #[arg(long = "range")]
    ranges: Vec<String>,
    #[arg(long, default_value = "Bayesian")]
    strategy: String,
    #[arg(long = "early-stopping")]
    early_stopping: bool,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    experiment: Option<String>,
    /// Run again under the name of a tuning job that has ended.
    #[arg(long)]
    replace: bool,
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct TuneCommandArgs {
    #[command(subcommand)]
    command: TuneCommand,
}

#[derive(Subcommand, Debug)]
enum TuneCommand {
    List,
    Describe {
        name: String,
    },
    Stop {
        name: String,
    },
    Analytics {
        name: String,
        #[arg(short = 'o')]
        frame: Option<String>,
    },
}

const HELP: &str = "\
%%tune NAME [--experiment E] [--replace]
  (the cell: CreateHyperParameterTuningJob's request as JSON or YAML:
   HyperParameterTuningJobConfig {Strategy, HyperParameterTuningJobObjective, ResourceLimits,
   ParameterRanges, TrainingJobEarlyStoppingType, TuningJobCompletionCriteria, RandomSeed,
   StrategyConfig}, TrainingJobDefinition or TrainingJobDefinitions, WarmStartConfig)
%tune NAME --config FILE.json|FILE.yaml
%tune NAME --job TRAINING_JOB --objective METRIC [--maximize|--minimize] --max N
      [--parallel N] --range NAME=MIN:MAX[:log|linear|reverselog] --range NAME=A,B,C …
      [--strategy Bayesian|Random|Hyperband|Grid] [--early-stopping] [--seed N]
%tune list
%tune describe NAME
%tune stop NAME
%tune analytics NAME [-o FRAME]

A TrainingJobDefinition names a built-in algorithm (AlgorithmSpecification.AlgorithmName, with
TargetAttributeName) or a script (AlgorithmSpecification.TrainingImage: train.py, with its
MetricDefinitions); each InputDataConfig channel's S3Uri is a frame, a file or an s3:// object.
Every trial is a training job NAME-001, NAME-002, … in the experiment store.

Bayesian is a Gaussian process (Matérn 5/2, fitted length scales) with expected improvement,
starting from a Latin hypercube; Random draws each range with its scaling from RandomSeed;
Grid runs every combination of categorical ranges in order; Hyperband deals trials to
brackets and stops them at rungs (MinResource × 3^k) unless they are in the best third there.
TrainingJobEarlyStoppingType Auto applies the median stopping rule. Interrupt, or
`%tune stop NAME` from any notebook, stops the tuning job and its running trials.";

impl Magic for TuneMagic {
    fn name(&self) -> &str {
        "tune"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line, MagicForm::Cell]
    }
    fn summary(&self) -> &str {
        "Automatic model tuning (Bayesian, Random, Hyperband, Grid) of training jobs; list, describe, stop, analytics."
    }
    fn help(&self) -> String {
        HELP.into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let argv = call.argv()?;
        if call.form == MagicForm::Line
            && matches!(
                argv.first().map(String::as_str),
                Some("list" | "describe" | "stop" | "analytics")
            )
        {
            let args: TuneCommandArgs = parse_args("tune", argv)?;
            return command(args.command, ctx);
        }
        let args: TuneArgs = parse_args("tune", argv)?;
        config::check_name(&args.name)?;
        let request = match (&args.job, &args.config, call.form) {
            (Some(_), _, _) => short_form(&args)?,
            (None, Some(path), _) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| failed(format!("cannot read {}: {e}", path.display())))?;
                config::parse_text(&text)?
            }
            (None, None, MagicForm::Cell) => config::parse_text(&call.body)?,
            (None, None, MagicForm::Line) => {
                return Err(MagicError::usage(
                    "tune",
                    "give the tuning configuration: %%tune NAME with the request in the cell, --config FILE, or --job TRAINING_JOB --objective … --range …",
                ))
            }
        };
        self.tune(&args, request, ctx)
    }
}

/// `NAME=MIN:MAX[:SCALING]` or `NAME=A,B,C`.
fn range_entry(text: &str) -> Result<(&'static str, Json), MagicError> {
    let (name, spec) = text.split_once('=').ok_or_else(|| {
        MagicError::usage(
            "tune",
            format!("--range {text}: write NAME=MIN:MAX[:log] or NAME=A,B,C"),
        )
    })?;
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() >= 2 && parts[0].parse::<f64>().is_ok() && parts[1].parse::<f64>().is_ok() {
        let scaling = match parts.get(2).map(|s| s.to_ascii_lowercase()) {
            None => "Auto",
            Some(s) if s == "log" || s == "logarithmic" => "Logarithmic",
            Some(s) if s == "linear" => "Linear",
            Some(s) if s == "reverselog" || s == "reverselogarithmic" => "ReverseLogarithmic",
            Some(s) if s == "auto" => "Auto",
            Some(s) => {
                return Err(MagicError::usage(
                    "tune",
                    format!(
                    "--range {text}: the scaling `{s}` is none of linear, log, reverselog, auto"
                ),
                ))
            }
        };
        let integral = parts[..2].iter().all(|p| p.parse::<i64>().is_ok());
        let list = if integral {
            "IntegerParameterRanges"
        } else {
            "ContinuousParameterRanges"
        };
        return Ok((
            list,
            json!({"Name": name, "MinValue": parts[0], "MaxValue": parts[1], "ScalingType": scaling}),
        ));
    }
    let values: Vec<&str> = spec.split(',').map(str::trim).collect();
    Ok((
        "CategoricalParameterRanges",
        json!({"Name": name, "Values": values}),
    ))
}

/// The short form as a full request, so both forms take one path.
fn short_form(args: &TuneArgs) -> Result<Json, MagicError> {
    let job = args.job.as_deref().expect("the short form names a job");
    let store = open_store()?;
    let component = store.component(job)?.ok_or_else(|| {
        failed(format!(
            "--job {job}: there is no training job `{job}` (`%train list` lists them)"
        ))
    })?;
    let dir = component
        .job_dir
        .ok_or_else(|| failed(format!("--job {job}: the job has no directory on record")))?;
    let definition = TrainingDefinition::load(&dir).map_err(|e| {
        failed(format!("--job {job}: its definition cannot be read ({e}); train it again with %train to tune it"))
    })?;
    let metric = args.objective.clone().ok_or_else(|| {
        MagicError::usage(
            "tune",
            "--job needs --objective METRIC (e.g. validation:accuracy)",
        )
    })?;
    let maximize = if args.maximize || args.minimize {
        args.maximize
    } else {
        !lower_is_better(&metric)
    };
    let mut ranges: BTreeMap<&str, Vec<Json>> = BTreeMap::new();
    for r in &args.ranges {
        let (list, entry) = range_entry(r)?;
        ranges.entry(list).or_default().push(entry);
    }
    let mut definition = serde_json::to_value(&definition).expect("a definition serialises");
    // A tuned hyperparameter is no longer static.
    if let Some(Json::Object(statics)) = definition.get_mut("StaticHyperParameters") {
        for entries in ranges.values() {
            for e in entries {
                if let Some(name) = e.get("Name").and_then(Json::as_str) {
                    statics.remove(name);
                }
            }
        }
    }
    let mut limits = json!({"MaxParallelTrainingJobs": args.parallel});
    if let Some(n) = args.max_jobs {
        limits["MaxNumberOfTrainingJobs"] = json!(n);
    }
    let mut config = json!({
        "Strategy": args.strategy,
        "HyperParameterTuningJobObjective": {"Type": if maximize {"Maximize"} else {"Minimize"}, "MetricName": metric},
        "ResourceLimits": limits,
        "ParameterRanges": ranges,
        "TrainingJobEarlyStoppingType": if args.early_stopping {"Auto"} else {"Off"},
    });
    if let Some(seed) = args.seed {
        config["RandomSeed"] = json!(seed);
    }
    Ok(json!({"HyperParameterTuningJobConfig": config, "TrainingJobDefinition": definition}))
}

fn definitions_of(config: &TuningConfig) -> Vec<(String, Json)> {
    config
        .definitions
        .iter()
        .map(|d| {
            (
                d.name.clone(),
                json!({
                    "AlgorithmSpecification": d.training.algorithm_specification.algorithm_name
                        .clone().or(d.training.algorithm_specification.training_image.clone()),
                    "InputDataConfig": d.training.input_data_config.iter()
                        .map(|c| (c.channel_name.clone(), c.data_source.s3_data_source.s3_uri.clone()))
                        .collect::<BTreeMap<_, _>>(),
                    "Hyperparameters": d.space.params.len() + d.training.static_hyper_parameters.len(),
                }),
            )
        })
        .collect()
}

/// Checks the warm-start parents and reads their trials as prior observations.
fn warm_start(store: &Store, config: &TuningConfig) -> Result<Vec<Observation>, MagicError> {
    let Some(w) = &config.warm_start else {
        return Ok(Vec::new());
    };
    let ours = definitions_of(config);
    let mut priors = Vec::new();
    let objective = &config.definitions[0].objective;
    for parent in &w.parents {
        let p = "WarmStartConfig.ParentHyperParameterTuningJobs";
        let row = store.tuning_job(parent)?.ok_or_else(|| {
            failed(format!(
                "{p}: there is no tuning job `{parent}` (`%tune list` lists them)"
            ))
        })?;
        if !row.status.is_final() {
            return Err(failed(format!(
                "{p}: `{parent}` is {}; a parent must have ended (Completed, Stopped or Failed)",
                row.status.as_str()
            )));
        }
        let parent_config = config::parse(row.request.clone()).map_err(|e| {
            failed(format!(
                "{p}: `{parent}`'s request cannot be read back ({e})"
            ))
        })?;
        let theirs = definitions_of(&parent_config);
        let parent_objective = &parent_config.definitions[0].objective;
        if parent_objective != objective {
            return Err(failed(format!(
                "WarmStartConfig: the parent `{parent}` {}s {}, and this job {}s {}; a warm start keeps the objective",
                parent_objective.type_str(), parent_objective.metric, objective.type_str(), objective.metric
            )));
        }
        for (name, mine) in &ours {
            let Some((_, their)) = theirs.iter().find(|(n, _)| n == name).or(theirs
                .first()
                .filter(|_| theirs.len() == 1 && ours.len() == 1))
            else {
                continue;
            };
            if mine["Hyperparameters"] != their["Hyperparameters"] {
                return Err(failed(format!(
                    "WarmStartConfig: `{parent}` has {} static plus tuned hyperparameters and this job {}; a warm start keeps their number",
                    their["Hyperparameters"], mine["Hyperparameters"]
                )));
            }
            if w.kind == WarmStartType::IdenticalDataAndAlgorithm {
                for key in ["AlgorithmSpecification", "InputDataConfig"] {
                    if mine[key] != their[key] {
                        return Err(failed(format!(
                            "WarmStartConfig.WarmStartType IdenticalDataAndAlgorithm: the {key} differs from `{parent}`'s ({} here, {} there); use TransferLearning to change it",
                            mine[key], their[key]
                        )));
                    }
                }
            }
        }
        for t in store.tuning_trials(parent)? {
            let Some(v) = t.objective else { continue };
            let def = config
                .definitions
                .iter()
                .position(|d| d.name == t.definition)
                .or((config.definitions.len() == 1).then_some(0));
            let Some(def) = def else { continue };
            if let Some(point) = config.definitions[def].space.parse(&t.tuned) {
                priors.push(Observation {
                    definition: def,
                    point,
                    loss: objective.loss(v),
                });
            }
        }
    }
    Ok(priors)
}

/// A tuning job checked, its data loaded and its row recorded: ready to run. `%tune` and
/// Autopilot both start one here, so both check and record a request alike.
pub struct Tuning {
    pub name: String,
    pub config: TuningConfig,
    pub store: Store,
    template: TrialTemplate,
    priors: Vec<Observation>,
    // Holds what the definitions' data was fetched into while the trials read it.
    _scratch: Scratch,
}

/// Checks `request` (CreateHyperParameterTuningJob's), loads every definition's data and
/// records the job `name` In Progress in the experiment store under `experiment` (the
/// notebook's when `None`).
pub fn start(
    name: &str,
    request: Json,
    experiment: Option<String>,
    replace: bool,
    object_store: &dyn rustmaker_magics::data::ObjectStore,
    ctx: &mut dyn MagicContext,
) -> Result<Tuning, MagicError> {
    config::check_name(name)?;
    let config = config::parse(request)?;
    let store = open_store()?;
    let priors = warm_start(&store, &config)?;
    // Every definition's data is loaded (and checked) before the first trial.
    let scratch = Scratch::new("tune")?;
    let mut kinds = Vec::new();
    for d in &config.definitions {
        kinds.push(
            job_kind(&d.training, None, object_store, &scratch, ctx)
                .map_err(|e| failed(format!("definition {}: {e}", d.name)))?,
        );
    }
    let experiment = experiment.unwrap_or_else(default_experiment);
    let objective = &config.definitions[0].objective;
    store.start_tuning(&NewTuningJob {
        name,
        experiment: &experiment,
        strategy: config.strategy.as_str(),
        objective_type: objective.type_str(),
        objective_metric: &objective.metric,
        request: &config.request,
        replace,
    })?;
    let template = TrialTemplate {
        kinds,
        definitions: config
            .definitions
            .iter()
            .map(|d| d.training.clone())
            .collect(),
        jobs_root: store::data_dir().join("training-jobs"),
        experiment,
        replace,
    };
    Ok(Tuning {
        name: name.to_owned(),
        config,
        store,
        template,
        priors,
        _scratch: scratch,
    })
}

impl Tuning {
    /// Runs the trials to the job's end, showing them on `watcher`; a job that cannot go on is
    /// recorded Failed with the reason.
    pub fn run(
        &mut self,
        watcher: &mut dyn TuneWatcher,
    ) -> Result<runner::TuningOutcome, MagicError> {
        let template = TrialTemplate {
            kinds: std::mem::take(&mut self.template.kinds),
            definitions: std::mem::take(&mut self.template.definitions),
            jobs_root: self.template.jobs_root.clone(),
            experiment: self.template.experiment.clone(),
            replace: self.template.replace,
        };
        let priors = std::mem::take(&mut self.priors);
        runner::run(
            &self.name,
            &self.config,
            template,
            priors,
            &self.store,
            watcher,
        )
        .map_err(|e| {
            let _ =
                self.store
                    .finish_tuning(&self.name, Status::Failed, Some(&e.to_string()), None);
            e.into()
        })
    }
}

impl TuneMagic {
    fn tune(
        &self,
        args: &TuneArgs,
        request: Json,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let mut tuning = start(
            &args.name,
            request,
            args.experiment.clone(),
            args.replace,
            &*self.store,
            ctx,
        )?;
        let config = tuning.config.clone();
        let objective = &config.definitions[0].objective;
        let mut live = LiveTuning {
            ctx,
            name: args.name.clone(),
            id: rustmaker_magics::long_work::unique_display_id("tune", &args.name),
            shown: false,
            started: Instant::now(),
            config: &config,
        };
        let outcome = tuning.run(&mut live)?;
        let store = &tuning.store;
        let ctx = live.ctx;
        let mut summary = format!("tuning job {}: {}", args.name, outcome.status.as_str());
        if let Some(b) = &outcome.best {
            summary.push_str(&format!(
                "; best training job {} with {} = {}",
                b.name,
                objective.metric,
                b.objective.map(render::short).unwrap_or_default()
            ));
        }
        if config.warm_start.is_some() {
            // DescribeHyperParameterTuningJob's OverallBestTrainingJob looks at the parents too.
            let row = store.tuning_job(&args.name)?;
            let overall = row.map(|r| describe(store, &r)).transpose()?;
            let overall = overall
                .as_ref()
                .and_then(|d| d.get("OverallBestTrainingJob"));
            if let Some(o) = overall.filter(|o| {
                outcome
                    .best
                    .as_ref()
                    .is_none_or(|b| o["TrainingJobName"] != b.name.as_str())
            }) {
                summary.push_str(&format!(
                    "; overall best (with the warm-start parents) {} = {}",
                    o["TrainingJobName"].as_str().unwrap_or_default(),
                    o["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
                ));
            }
        }
        if let Some(r) = outcome
            .completion_reason
            .as_deref()
            .or(outcome.failure_reason.as_deref())
        {
            summary.push_str(&format!(" ({r})"));
        }
        ctx.stdout(&format!(
            "{summary}\noptimiser time: {:.1} ms over {} suggestions\n",
            outcome.suggestion_seconds * 1000.0,
            outcome.trials.len()
        ));
        match outcome.status {
            Status::Stopped => Err(rustmaker_magics::long_work::interrupted(
                format!(
                    "tuning job {} was stopped with its running trials",
                    args.name
                ),
                "finished trials and the best so far are kept (`%tune describe`)",
            )),
            Status::Failed => Err(failed(format!(
                "tuning job {} failed: {}",
                args.name,
                outcome.failure_reason.unwrap_or_default()
            ))),
            _ => Ok(()),
        }
    }
}

/// The display of a running tuning job, redrawn in place.
struct LiveTuning<'a, 'c> {
    ctx: &'a mut dyn MagicContext,
    name: String,
    id: String,
    shown: bool,
    started: Instant,
    config: &'c TuningConfig,
}

fn counts(statuses: impl Iterator<Item = Status>) -> BTreeMap<&'static str, usize> {
    let mut out: BTreeMap<&'static str, usize> = ["Completed", "InProgress", "Failed", "Stopped"]
        .into_iter()
        .map(|k| (k, 0))
        .collect();
    for s in statuses {
        let key = match s {
            Status::Stopping => "InProgress",
            other => other.as_str(),
        };
        *out.entry(key).or_default() += 1;
    }
    out
}

impl TuneWatcher for LiveTuning<'_, '_> {
    fn progress(&mut self, trials: &[Trial], best: Option<&Trial>, status: Status) {
        let objective = &self.config.definitions[0].objective;
        let c = counts(trials.iter().map(|t| t.status));
        let mut rows = vec![
            ("status".to_owned(), status.as_str().to_owned()),
            ("strategy".into(), self.config.strategy.as_str().into()),
            (
                "objective".into(),
                format!("{} {}", objective.type_str(), objective.metric),
            ),
            (
                "training jobs".into(),
                c.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "elapsed".into(),
                format!("{:.1} s", self.started.elapsed().as_secs_f64()),
            ),
        ];
        if let Some(b) = best {
            rows.push((
                "best".into(),
                format!(
                    "{} = {}",
                    b.name,
                    b.objective.map(render::short).unwrap_or_default()
                ),
            ));
        }
        let mut html = render::pairs(&format!("tuning job {}", self.name), &rows);
        // Best so far against the number of trials that ended with a value.
        let mut best_so_far: Vec<(u64, f64)> = Vec::new();
        let mut each: Vec<(u64, f64)> = Vec::new();
        let mut current: Option<f64> = None;
        for t in trials {
            if let (Some(v), true) = (t.objective, t.status == Status::Completed) {
                current = Some(match current {
                    Some(b) if objective.loss(b) <= objective.loss(v) => b,
                    _ => v,
                });
                each.push((t.seq as u64, v));
                best_so_far.push((t.seq as u64, current.expect("just set")));
            }
        }
        if !each.is_empty() {
            html.push_str(&render::curves(
                &format!("{} by training job", objective.metric),
                &[
                    ("best so far".into(), best_so_far),
                    ("each job".into(), each),
                ],
            ));
        }
        let params: Vec<String> = {
            let mut names: Vec<String> = self
                .config
                .definitions
                .iter()
                .flat_map(|d| d.space.params.iter().map(|p| p.name.clone()))
                .collect();
            names.dedup();
            names
        };
        let mut header = vec![
            "TrainingJobName".to_owned(),
            "Status".into(),
            objective.metric.clone(),
        ];
        if self.config.multi {
            header.push("Definition".into());
        }
        header.extend(params.iter().cloned());
        header.push("Reason".into());
        let table: Vec<Vec<String>> = trials
            .iter()
            .map(|t| {
                let mut row = vec![
                    t.name.clone(),
                    t.status.as_str().to_owned(),
                    t.objective.map(render::short).unwrap_or_default(),
                ];
                if self.config.multi {
                    row.push(self.config.definitions[t.definition].name.clone());
                }
                row.extend(
                    params
                        .iter()
                        .map(|p| t.tuned.get(p).cloned().unwrap_or_default()),
                );
                row.push(t.reason.clone().unwrap_or_default());
                row
            })
            .collect();
        html.push_str(&render::grid(&header, &table));
        let text = format!("{}: {} ({})", self.name, status.as_str(), rows[3].1);
        let bundle = MimeBundle::text(text).with("text/html", json!(html));
        if self.shown {
            self.ctx.update_display(bundle, &self.id.clone());
        } else {
            self.ctx.display(bundle, Some(&self.id.clone()));
            self.shown = true;
        }
    }

    fn should_stop(&mut self) -> bool {
        self.ctx.is_interrupted()
    }
}
