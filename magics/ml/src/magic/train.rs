//! `%train` / `%%train`: built-in algorithms and script mode as tracked jobs, and the job
//! commands; a running job shows its metrics live.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};
use polars::prelude::*;
use regex::Regex;
use rustmaker_magics::csv_header::HeaderArgs;
use rustmaker_magics::data::{ObjectStore, SharedObjectStore};
use rustmaker_magics::scratch::Scratch;
use rustmaker_magics::table::frame_bundle;
use rustmaker_magics::{
    parse_args, Magic, MagicCall, MagicContext, MagicError, MagicForm, MimeBundle,
};
use serde_json::json;

use crate::algorithms::Algorithm;
use crate::debugger::{self, DebugHookConfig, DebugRuleConfiguration};
use crate::definition::{
    ChannelConfig, DataSource, MetricDefinition, S3DataSource, StoppingCondition,
    TrainingDefinition,
};
use crate::job::{self, Channel, JobKind, JobSpec, Validation};
use crate::prep::ProblemType;
use crate::render;
use crate::store::{self, Status};

use super::inputs::load;
use super::live_job::LiveJob;
use super::{component, default_experiment, elapsed, open_store, param, stop_message};
pub(crate) use rustmaker_magics::failed;

fn key_value(text: &str, what: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("{what} must be KEY=VALUE, got `{text}`")),
    }
}

fn hp_arg(text: &str) -> Result<(String, String), String> {
    key_value(text, "--hp")
}

fn channel_arg(text: &str) -> Result<(String, String), String> {
    key_value(text, "--channel")
}

fn metric_arg(text: &str) -> Result<(String, String), String> {
    key_value(text, "--metric-definition")
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct TrainArgs {
    /// The training job's name (letters, digits, hyphens).
    name: String,
    #[arg(long, conflicts_with = "entry_point")]
    algorithm: Option<String>,
    #[arg(long, requires = "algorithm")]
    data: Option<String>,
    #[arg(long)]
    target: Option<String>,
    /// A share of the rows to hold out (0 to 1), or a separate data source.
    #[arg(long)]
    validation: Option<String>,
    #[arg(long = "problem-type")]
    problem_type: Option<String>,
    #[arg(long = "hp", value_parser = hp_arg)]
    hp: Vec<(String, String)>,
    #[arg(long = "entry-point")]
    entry_point: Option<PathBuf>,
    #[arg(long = "channel", value_parser = channel_arg)]
    channel: Vec<(String, String)>,
    #[arg(long = "metric-definition", value_parser = metric_arg)]
    metric_definition: Vec<(String, String)>,
    /// Script mode: stop the job after this many seconds (MaxRuntimeInSeconds).
    #[arg(long = "max-run")]
    max_run: Option<u64>,
    #[arg(long)]
    experiment: Option<String>,
    #[arg(long)]
    trial: Option<String>,
    /// Where the job's directory goes: a folder, or an s3:// prefix for the model artifact.
    #[arg(long)]
    output: Option<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Train again under a name whose earlier job has ended.
    #[arg(long)]
    replace: bool,
    #[command(flatten)]
    csv: HeaderArgs,
    /// Debugger: save the job's tensors in smdebug's format (implied by the flags below).
    #[arg(long)]
    debugger: bool,
    #[arg(long = "save-interval")]
    save_interval: Option<u64>,
    #[arg(long, value_delimiter = ',')]
    collections: Vec<String>,
    /// The scalars also for TensorBoard (smdebug's export_tensorboard), in JOB/tensorboard/.
    #[arg(long)]
    tensorboard: bool,
    /// A built-in rule: NAME, NAME(key=value,…), with :stop for the StopTraining action.
    #[arg(long = "rule")]
    rule: Vec<String>,
    /// `%%train`'s cell may carry these beside the hyperparameters.
    #[arg(skip)]
    debug_hook: Option<DebugHookConfig>,
    #[arg(skip)]
    debug_rules: Vec<DebugRuleConfiguration>,
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct JobCommandArgs {
    #[command(subcommand)]
    command: JobCommand,
}

#[derive(Subcommand, Debug)]
enum JobCommand {
    List {
        #[arg(long)]
        experiment: Option<String>,
        #[arg(short = 'o')]
        frame: Option<String>,
    },
    Describe {
        name: String,
    },
    Logs {
        name: String,
        /// Only the last N lines.
        #[arg(long)]
        tail: Option<usize>,
    },
    Stop {
        name: String,
    },
}

pub struct TrainMagic {
    pub store: SharedObjectStore,
}

const TRAIN_HELP: &str = "\
%train NAME --algorithm ALGO --data SOURCE --target COLUMN [--validation FRACTION|SOURCE]
       [--header|--no-header]
       [--hp KEY=VALUE …] [--problem-type binary|multiclass|regression] [--experiment E]
       [--trial T] [--output DIR|s3://…] [--seed N] [--replace]
       [--debugger] [--save-interval N] [--collections a,b,…] [--rule NAME[(key=value,…)][:stop] …]
       [--tensorboard]
%%train NAME --algorithm ALGO --data SOURCE --target COLUMN …   (the cell: hyperparameters as JSON,
       with DebugHookConfig and DebugRuleConfigurations beside them if wanted)
%train NAME --entry-point train.py|./train [--channel NAME=SOURCE …] [--hp KEY=VALUE …]
       [--metric-definition NAME=REGEX …] [--max-run SECONDS] [--experiment E] [--output …]
%train list [--experiment E] [-o NAME]
%train describe NAME
%train logs NAME [--tail N]
%train stop NAME

SOURCE is a frame (`%frames`), a .csv or .parquet file, or an s3:// object. Whether a CSV's
first line names the columns is sniffed (a header when its values do not fit the types of the
rest of each column) and told; --header / --no-header say it. Without a header the columns
are _c0, _c1, ….

Built-in algorithms (`%train NAME --algorithm ALGO?` lists each one's hyperparameters below):
ALGORITHMS

Data preparation: each column is numeric or categorical (text); categorical columns are
one-hot encoded (50 most frequent levels, the rest as __other__); missing numbers become the
training mean and missing text its own level (the job's log and manifest record each choice);
numbers are standardised. The problem type comes from the target (two values: binary; up to 20
integer values or text: multiclass; else regression) unless --problem-type says. --validation
defaults to 0.2 of the rows, shuffled with --seed.

Script mode runs any program the way SageMaker's training toolkit does, in
JOB/{input/config/hyperparameters.json, input/data/CHANNEL/, model/, output/, code/} with
SM_MODEL_DIR, SM_CHANNEL_<NAME>, SM_CHANNELS, SM_HPS, SM_HP_<NAME>, SM_OUTPUT_DATA_DIR, and
the hyperparameters also as --KEY VALUE arguments (.py runs with $RUSTMAKER_PYTHON,
$VIRTUAL_ENV/bin/python or python3). Its output streams into the cell; each
--metric-definition regex's first group is a metric value. A program that fails leaves the
job Failed with output/failure's text or its last log lines.

Debugger: --debugger (or any of the flags after it) saves the job's tensors in smdebug's
format under JOB/debug-output (every 10th step; `%debugger tensors|plot|rules JOB` shows them)
and runs the built-in rules on each saved step; `:stop` is the StopTraining action.

Each job is a trial component in the experiment store (default experiment: the notebook's
name) and leaves JOB/output/model.tar.gz (model.json + manifest.json). Jobs go under
$RUSTMAKER_DATA_DIR/training-jobs/ unless --output says. Interrupting the kernel, or
`%train stop NAME` from any notebook, stops a job and marks it Stopped.";

impl Magic for TrainMagic {
    fn name(&self) -> &str {
        "train"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line, MagicForm::Cell]
    }
    fn summary(&self) -> &str {
        "Train a model (built-in algorithm or your script) as a tracked job; list, describe, logs, stop."
    }
    fn help(&self) -> String {
        let mut algorithms = String::new();
        for (a, name) in crate::algorithms::ALGORITHMS {
            algorithms.push_str(&format!("  {name}:\n"));
            for hp in a.hyperparameters() {
                algorithms.push_str(&format!(
                    "    {} = {} ({}): {}\n",
                    hp.name, hp.default, hp.range, hp.doc
                ));
            }
        }
        TRAIN_HELP.replace("ALGORITHMS", algorithms.trim_end())
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let argv = call.argv()?;
        if call.form == MagicForm::Line
            && matches!(
                argv.first().map(String::as_str),
                Some("list" | "describe" | "logs" | "stop")
            )
        {
            let args: JobCommandArgs = parse_args("train", argv)?;
            return self.command(args.command, ctx);
        }
        let mut args: TrainArgs = parse_args("train", argv)?;
        let mut hp: BTreeMap<String, String> = BTreeMap::new();
        if call.form == MagicForm::Cell && !call.body.trim().is_empty() {
            let body: serde_json::Value = serde_json::from_str(&call.body).map_err(|e| {
                MagicError::usage(
                    "train",
                    format!("the cell must be the hyperparameters as a JSON object: {e}"),
                )
            })?;
            let serde_json::Value::Object(mut map) = body else {
                return Err(MagicError::usage(
                    "train",
                    "the cell must be a JSON object of hyperparameters",
                ));
            };
            // SageMaker's debugger fields may sit beside the hyperparameters.
            if let Some(v) = map.remove("DebugHookConfig") {
                args.debug_hook =
                    Some(serde_json::from_value(v).map_err(|e| {
                        MagicError::usage("train", format!("DebugHookConfig: {e}"))
                    })?);
            }
            if let Some(v) = map.remove("DebugRuleConfigurations") {
                args.debug_rules = serde_json::from_value(v).map_err(|e| {
                    MagicError::usage("train", format!("DebugRuleConfigurations: {e}"))
                })?;
            }
            for (k, v) in map {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                hp.insert(k, text);
            }
        }
        hp.extend(args.hp.iter().cloned());
        self.train(args, hp, ctx)
    }
}

/// The SageMaker-shaped definition of what `%train`'s arguments ask for.
fn definition_of(
    args: &TrainArgs,
    hp: BTreeMap<String, String>,
) -> Result<TrainingDefinition, MagicError> {
    let channel = |name: &str, source: &str| ChannelConfig {
        channel_name: name.to_owned(),
        data_source: DataSource {
            s3_data_source: S3DataSource {
                s3_uri: source.to_owned(),
                s3_data_type: None,
            },
        },
    };
    let flagged = args.debugger
        || args.tensorboard
        || args.save_interval.is_some()
        || !args.collections.is_empty()
        || !args.rule.is_empty();
    let mut debug_hook = args.debug_hook.clone();
    if flagged {
        let short = debugger::config::hook_from_flags(args.save_interval, &args.collections);
        let hook = debug_hook.get_or_insert_with(DebugHookConfig::default);
        hook.hook_parameters.extend(short.hook_parameters);
        if args.tensorboard {
            hook.hook_parameters
                .insert("export_tensorboard".into(), "true".into());
        }
        hook.collection_configurations
            .extend(short.collection_configurations);
    }
    let mut debug_rules = args.debug_rules.clone();
    for text in &args.rule {
        debug_rules.push(debugger::config::rule_from_flag(text, &args.name)?);
    }
    let mut definition = TrainingDefinition {
        debug_hook_config: debug_hook,
        debug_rule_configurations: debug_rules,
        static_hyper_parameters: hp,
        target_attribute_name: args.target.clone(),
        problem_type: args.problem_type.clone(),
        seed: Some(args.seed),
        ..TrainingDefinition::default()
    };
    match (&args.algorithm, &args.entry_point) {
        (Some(algorithm), _) => {
            definition.algorithm_specification.algorithm_name = Some(algorithm.clone());
            let source = args
                .data
                .as_deref()
                .ok_or_else(|| MagicError::usage("train", "--algorithm needs --data SOURCE"))?;
            definition.input_data_config.push(channel("train", source));
            match args.validation.as_deref().map(|v| (v, v.parse::<f64>())) {
                None => {}
                Some((_, Ok(f))) => definition.validation_fraction = Some(f),
                Some((v, Err(_))) => definition.input_data_config.push(channel("validation", v)),
            }
        }
        (None, Some(entry_point)) => {
            definition.algorithm_specification.training_image =
                Some(entry_point.display().to_string());
            definition.algorithm_specification.metric_definitions = args
                .metric_definition
                .iter()
                .map(|(name, regex)| MetricDefinition {
                    name: name.clone(),
                    regex: regex.clone(),
                })
                .collect();
            for (name, source) in &args.channel {
                definition.input_data_config.push(channel(name, source));
            }
            definition.stopping_condition = args.max_run.map(|s| StoppingCondition {
                max_runtime_in_seconds: Some(s),
            });
        }
        (None, None) => return Err(MagicError::usage(
            "train",
            "say what to train: --algorithm ALGO (built-in) or --entry-point SCRIPT (script mode)",
        )),
    }
    Ok(definition)
}

/// Loads a definition's data and makes the job it describes.
pub(crate) fn job_kind(
    definition: &TrainingDefinition,
    header: Option<bool>,
    store: &dyn ObjectStore,
    scratch: &Scratch,
    ctx: &mut dyn MagicContext,
) -> Result<JobKind, MagicError> {
    let spec = &definition.algorithm_specification;
    match (&spec.algorithm_name, &spec.training_image) {
        (Some(_), Some(_)) => Err(failed(
            "AlgorithmSpecification: give AlgorithmName (a built-in algorithm) or TrainingImage (a script), not both",
        )),
        (Some(algorithm), None) => {
            let algorithm = Algorithm::parse(algorithm)?;
            let source = definition.channel("train").ok_or_else(|| {
                failed("a built-in algorithm needs a `train` channel (--data SOURCE)")
            })?;
            let (train, train_uri) = load(source, header, store, scratch, ctx)?;
            let validation = match (definition.channel("validation"), definition.validation_fraction) {
                (Some(v), _) => {
                    let (frame, uri) = load(v, header, store, scratch, ctx)?;
                    Validation::Data(frame, uri)
                }
                (None, Some(f)) if (0.0..1.0).contains(&f) => Validation::Fraction(f),
                (None, Some(f)) => {
                    return Err(failed(format!(
                        "validation share {f}: a share must be at least 0 and below 1"
                    )))
                }
                (None, None) => Validation::Fraction(0.2),
            };
            Ok(JobKind::Builtin {
                algorithm,
                train,
                train_uri,
                validation,
                target: definition.target_attribute_name.clone(),
                problem: definition
                    .problem_type
                    .as_deref()
                    .map(ProblemType::parse)
                    .transpose()?,
            })
        }
        (None, Some(entry_point)) => {
            let mut channels = Vec::new();
            for c in &definition.input_data_config {
                let (name, source) = (&c.channel_name, &c.data_source.s3_data_source.s3_uri);
                let channel = if source.starts_with("s3://") {
                    let path = store.fetch(source, &scratch.path().join(name), Some(&*ctx))?;
                    (Channel::Path(path), source.clone())
                } else if let Ok(frame) = ctx.frames().get(source) {
                    (Channel::Frame(frame.clone()), format!("frame:{source}"))
                } else if Path::new(source).exists() {
                    (Channel::Path(PathBuf::from(source)), source.clone())
                } else {
                    return Err(failed(format!(
                        "channel {name}: `{source}` is neither a frame nor a file or folder"
                    )));
                };
                channels.push((name.clone(), channel.0, channel.1));
            }
            let mut metric_definitions = Vec::new();
            for m in &spec.metric_definitions {
                metric_definitions.push((m.name.clone(), metric_regex(&m.name, &m.regex)?));
            }
            Ok(JobKind::Script {
                entry_point: PathBuf::from(entry_point),
                channels,
                metric_definitions,
                max_runtime: definition
                    .stopping_condition
                    .as_ref()
                    .and_then(|s| s.max_runtime_in_seconds)
                    .map(Duration::from_secs),
            })
        }
        (None, None) => Err(failed(
            "AlgorithmSpecification needs AlgorithmName (a built-in algorithm) or TrainingImage (a script)",
        )),
    }
}

/// A metric definition's regex, which must capture the value in a group.
pub(crate) fn metric_regex(name: &str, pattern: &str) -> Result<Regex, MagicError> {
    let re = Regex::new(pattern).map_err(|e| failed(format!("metric definition {name}: {e}")))?;
    if re.captures_len() < 2 {
        return Err(failed(format!(
            "metric definition {name}: the regex must capture the value in a group, e.g. loss=([0-9.]+)"
        )));
    }
    Ok(re)
}

impl TrainMagic {
    fn train(
        &self,
        args: TrainArgs,
        hp: BTreeMap<String, String>,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        job::check_name(&args.name)?;
        let definition = definition_of(&args, hp)?;
        let scratch = Scratch::new("ml")?;
        let experiment = args.experiment.clone().unwrap_or_else(default_experiment);
        let s3_output = args.output.as_deref().filter(|o| o.starts_with("s3://"));
        let root = match args.output.as_deref() {
            Some(o) if !o.starts_with("s3://") => PathBuf::from(o),
            _ => store::data_dir().join("training-jobs"),
        };
        let dir = root.join(&args.name);
        if let Some(algorithm) = &definition.algorithm_specification.algorithm_name {
            // Hyperparameters are checked before any data is read.
            let algorithm = Algorithm::parse(algorithm)?;
            algorithm.resolve(&definition.static_hyper_parameters)?;
            // So is the debugger's configuration.
            debugger::config::resolve(
                definition.debug_hook_config.as_ref(),
                &definition.debug_rule_configurations,
                &dir,
                Some(algorithm.debug_collections()),
            )?;
        }
        let kind = job_kind(&definition, args.csv.given(), &*self.store, &scratch, ctx)?;
        let store = open_store()?;
        let spec = JobSpec {
            name: args.name.clone(),
            experiment,
            trial: args.trial.clone(),
            hyperparameters: definition.static_hyper_parameters.clone(),
            dir: dir.clone(),
            seed: args.seed,
            replace: args.replace,
            definition: Some(definition.clone()),
        };
        let mut watcher = LiveJob::new(&args.name, ctx);
        let result = job::run(spec, kind, &store, &mut watcher)?;
        let mut model = result.model.clone();
        if let (Some(prefix), Some(local)) = (s3_output, &result.model) {
            let url = format!(
                "{}/{}/output/model.tar.gz",
                prefix.trim_end_matches('/'),
                args.name
            );
            self.store.put(local, &url, watcher.ctx)?;
            store.add_output(
                &args.name,
                "SageMaker.ModelArtifact",
                &url,
                "application/x-tar",
            )?;
            model = Some(PathBuf::from(url));
        }
        let debug_s3 = definition
            .debug_hook_config
            .as_ref()
            .and_then(|h| h.s3_output_path.clone())
            .filter(|s| s.starts_with("s3://"));
        let local_debug = debugger::output_dir(&dir);
        if let (Some(s3), true) = (debug_s3, local_debug.exists()) {
            // Where SageMaker puts it: S3OutputPath/JOB/debug-output/.
            let prefix = format!("{}/{}/debug-output", s3.trim_end_matches('/'), args.name);
            for (file, rel) in debugger::files(&local_debug)? {
                self.store
                    .put(&file, &format!("{prefix}/{rel}"), watcher.ctx)?;
            }
            store.add_output(
                &args.name,
                "SageMaker.DebugOutput",
                &prefix,
                "application/x-directory",
            )?;
        }
        watcher.finish(
            result.status,
            result.failure_reason.as_deref(),
            model.as_deref(),
        );
        match result.status {
            Status::Completed => Ok(()),
            // A rule's StopTraining is the job's outcome, not the user's interrupt: the cell
            // ends well, as SageMaker's fit() does for a Stopped job.
            Status::Stopped if result.rule_stop.is_some() => {
                // As SageMaker's: a job a rule stopped is Stopped, not failed.
                watcher.ctx.stdout(&format!(
                    "training job {} was {}; `%debugger rules {}` shows the rules\n",
                    args.name,
                    result.failure_reason.unwrap_or_default(),
                    args.name
                ));
                Ok(())
            }
            Status::Stopped => Err(rustmaker_magics::long_work::interrupted(
                format!("training job {} was stopped", args.name),
                "its logs and metrics so far are kept; `--replace` trains it again",
            )),
            _ => Err(failed(format!(
                "training job {} failed: {}",
                args.name,
                result.failure_reason.unwrap_or_default()
            ))),
        }
    }

    fn command(&self, command: JobCommand, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let store = open_store()?;
        match command {
            JobCommand::List { experiment, frame } => {
                let names = store.component_names(experiment.as_deref())?;
                let mut rows = Vec::new();
                for n in names {
                    if let Some(c) = store.component(&n)? {
                        rows.push(c);
                    }
                }
                let df = df!(
                    "TrainingJobName" => rows.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
                    "Experiment" => rows.iter().map(|c| c.experiment.as_str()).collect::<Vec<_>>(),
                    "TrainingJobStatus" => rows.iter().map(|c| c.status.as_str()).collect::<Vec<_>>(),
                    "Algorithm" => rows.iter().map(|c| param(c, "algorithm").or(param(c, "entry_point")).unwrap_or_default()).collect::<Vec<_>>(),
                    "CreationTime" => rows.iter().map(|c| render::timestamp(c.start_time)).collect::<Vec<_>>(),
                    "TrainingElapsedTimeSeconds" => rows.iter().map(elapsed).collect::<Vec<_>>(),
                    "FailureReason" => rows.iter().map(|c| c.failure_reason.clone().unwrap_or_default()).collect::<Vec<_>>()
                )
                .map_err(failed)?;
                ctx.display(frame_bundle(&df, 100), None);
                if let Some(name) = frame {
                    ctx.frames().insert(&name, df)?;
                }
                Ok(())
            }
            JobCommand::Describe { name } => {
                let c = component(&store, &name)?;
                let mut rows = vec![
                    ("TrainingJobName".to_owned(), c.name.clone()),
                    ("TrainingJobStatus".into(), c.status.as_str().into()),
                    ("Experiment".into(), c.experiment.clone()),
                    ("Trial".into(), c.trial.clone()),
                    ("TrainingStartTime".into(), render::timestamp(c.start_time)),
                    ("TrainingEndTime".into(), render::timestamp(c.end_time)),
                ];
                if let Some(e) = elapsed(&c) {
                    rows.push(("TrainingElapsedTimeSeconds".into(), format!("{e:.1}")));
                }
                if let Some(r) = &c.failure_reason {
                    rows.push(("FailureReason".into(), r.clone()));
                }
                for (k, v) in &c.parameters {
                    rows.push((format!("HyperParameters.{k}"), v.clone()));
                }
                for (k, v) in &c.inputs {
                    rows.push((format!("InputDataConfig.{k}"), v.clone()));
                }
                for (k, v) in &c.outputs {
                    rows.push((k.clone(), v.clone()));
                }
                for m in &c.metrics {
                    rows.push((format!("FinalMetric.{}", m.name), render::short(m.last)));
                }
                let definition = c
                    .job_dir
                    .as_deref()
                    .and_then(|d| TrainingDefinition::load(d).ok());
                let hook = definition.and_then(|d| d.debug_hook_config);
                let statuses = c.job_dir.as_deref().and_then(debugger::load_statuses);
                if let Some(h) = &hook {
                    rows.push((
                        "DebugHookConfig".into(),
                        serde_json::to_string(h).unwrap_or_default(),
                    ));
                }
                for s in statuses
                    .iter()
                    .flat_map(|s| s.as_array().cloned().unwrap_or_default())
                {
                    rows.push((
                        format!(
                            "DebugRule.{}",
                            s["RuleConfigurationName"].as_str().unwrap_or("?")
                        ),
                        format!(
                            "{}{}",
                            s["RuleEvaluationStatus"].as_str().unwrap_or("?"),
                            s["StatusDetails"]
                                .as_str()
                                .map(|d| format!(": {d}"))
                                .unwrap_or_default()
                        ),
                    ));
                }
                let text = rows
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("\n");
                let description = json!({
                    "TrainingJobName": c.name,
                    "TrainingJobStatus": c.status.as_str(),
                    "FailureReason": c.failure_reason,
                    "HyperParameters": c.parameters.iter().cloned().collect::<BTreeMap<_, _>>(),
                    "FinalMetricDataList": c.metrics.iter().map(|m| json!({"MetricName": m.name, "Value": m.last})).collect::<Vec<_>>(),
                    "ModelArtifacts": c.outputs.iter().find(|(k, _)| k == "SageMaker.ModelArtifact").map(|(_, v)| json!({"S3ModelArtifacts": v})),
                    "DebugHookConfig": hook,
                    "DebugRuleEvaluationStatuses": statuses,
                });
                ctx.display(
                    MimeBundle::text(text)
                        .with("text/html", json!(render::pairs(&name, &rows)))
                        .with("application/json", description),
                    None,
                );
                Ok(())
            }
            JobCommand::Logs { name, tail } => {
                let c = component(&store, &name)?;
                let dir = c
                    .job_dir
                    .ok_or_else(|| failed(format!("{name} has no job directory on record")))?;
                let path = job::log_path(&dir);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| failed(format!("cannot read {}: {e}", path.display())))?;
                let lines: Vec<&str> = text.lines().collect();
                let from = tail.map_or(0, |t| lines.len().saturating_sub(t));
                let mut shown = lines[from..].join("\n");
                shown.push('\n');
                ctx.stdout(&shown);
                Ok(())
            }
            JobCommand::Stop { name } => {
                let status = store.request_stop(&name)?;
                ctx.stdout(&stop_message(&name, status, "it"));
                Ok(())
            }
        }
    }
}
