//! The notebook side: `%train` / `%%train`, `%predict` and `%experiments`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use polars::prelude::*;
use regex::Regex;
use rustmaker_magics::csv_header::{self, HeaderArgs};
use rustmaker_magics::data::{self, DataArg, ObjectStore, SharedObjectStore};
use rustmaker_magics::scratch::Scratch;
use rustmaker_magics::table::frame_bundle;
use rustmaker_magics::{
    parse_args, Magic, MagicCall, MagicContext, MagicError, MagicForm, MimeBundle,
};
use serde_json::json;

use crate::algorithms::Algorithm;
use crate::definition::{
    ChannelConfig, DataSource, MetricDefinition, S3DataSource, StoppingCondition,
    TrainingDefinition,
};
use crate::job::{self, Channel, JobKind, JobSpec, Validation, Watcher};
use crate::metrics::lower_is_better;
use crate::prep::ProblemType;
use crate::render;
use crate::store::{self, Component, Status, Store};
use crate::MlError;

pub(crate) use rustmaker_magics::failed;

impl From<MlError> for MagicError {
    fn from(e: MlError) -> MagicError {
        MagicError::Failed(e.to_string())
    }
}

/// A CSV whose rows do not all have the first line's number of fields is refused with the line.
fn check_csv_shape(path: &Path, header: bool) -> Result<(), MagicError> {
    let first = if header {
        "the header"
    } else {
        "the first line"
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_path(path)
        .map_err(|e| failed(format!("cannot read {}: {e}", path.display())))?;
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let detail = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("line {line} has {len} fields where {first} has {expected_len}")
                    }
                    _ => format!("line {line}: {e}"),
                };
                return Err(failed(format!(
                    "{} is a malformed CSV: {detail}; fix that row (or quote a field that holds commas)",
                    path.display()
                )));
            }
        }
    }
}

/// Reads a .csv or .parquet file. A CSV's header is `header` when given, else sniffed; the
/// choice is told on `ctx` when sniffed. A CSV without header has columns `_c0`, `_c1`, ….
fn read_file(
    path: &Path,
    header: Option<bool>,
    ctx: &mut dyn MagicContext,
) -> Result<DataFrame, MagicError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let frame = match ext.as_str() {
        "csv" => {
            let choice = csv_header::choose(path, header).map_err(failed)?;
            check_csv_shape(path, choice.header)?;
            if !choice.forced {
                ctx.stdout(&format!("{}: {choice}.\n", path.display()));
            }
            CsvReadOptions::default()
                .with_has_header(choice.header)
                .with_infer_schema_length(Some(10_000))
                .try_into_reader_with_file_path(Some(path.to_owned()))
                .and_then(|r| r.finish())
                .and_then(|mut frame| {
                    if !choice.header {
                        let names: Vec<String> =
                            (0..frame.width()).map(|i| format!("_c{i}")).collect();
                        frame.set_column_names(&names)?;
                    }
                    Ok(frame)
                })
        }
        "parquet" => std::fs::File::open(path)
            .map_err(PolarsError::from)
            .and_then(|f| ParquetReader::new(f).finish()),
        _ => {
            return Err(failed(format!(
                "{} is neither .csv nor .parquet",
                path.display()
            )))
        }
    };
    frame.map_err(|e| failed(format!("cannot read {}: {e}", path.display())))
}

/// A data source: a frame of the kernel, a .csv or .parquet file, or an s3:// object; with the
/// URI the experiment store records for it.
fn load(
    source: &str,
    header: Option<bool>,
    store: &dyn ObjectStore,
    scratch: &Scratch,
    ctx: &mut dyn MagicContext,
) -> Result<(DataFrame, String), MagicError> {
    match data::resolve(source, store, scratch.path(), ctx, ".csv or .parquet")? {
        DataArg::Frame { name, frame } => Ok((frame, format!("frame:{name}"))),
        DataArg::File { path, uri } => Ok((read_file(&path, header, ctx)?, uri)),
    }
}

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

/// The notebook's name, which is the default experiment (Jupyter tells kernels it).
pub(crate) fn default_experiment() -> String {
    if let Ok(e) = std::env::var("RUSTMAKER_EXPERIMENT") {
        if !e.is_empty() {
            return e;
        }
    }
    std::env::var("JPY_SESSION_NAME")
        .ok()
        .and_then(|p| {
            Path::new(&p)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into())
}

pub(crate) fn open_store() -> Result<Store, MagicError> {
    Store::open(&store::default_path()).map_err(MagicError::from)
}

pub struct TrainMagic {
    pub store: SharedObjectStore,
}

const TRAIN_HELP: &str = "\
%train NAME --algorithm ALGO --data SOURCE --target COLUMN [--validation FRACTION|SOURCE]
       [--header|--no-header]
       [--hp KEY=VALUE …] [--problem-type binary|multiclass|regression] [--experiment E]
       [--trial T] [--output DIR|s3://…] [--seed N] [--replace]
%%train NAME --algorithm ALGO --data SOURCE --target COLUMN …   (the cell: hyperparameters as JSON)
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
        let args: TrainArgs = parse_args("train", argv)?;
        let mut hp: BTreeMap<String, String> = BTreeMap::new();
        if call.form == MagicForm::Cell && !call.body.trim().is_empty() {
            let body: serde_json::Value = serde_json::from_str(&call.body).map_err(|e| {
                MagicError::usage(
                    "train",
                    format!("the cell must be the hyperparameters as a JSON object: {e}"),
                )
            })?;
            let serde_json::Value::Object(map) = body else {
                return Err(MagicError::usage(
                    "train",
                    "the cell must be a JSON object of hyperparameters",
                ));
            };
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
    let mut definition = TrainingDefinition {
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
            Algorithm::parse(algorithm)?.resolve(&definition.static_hyper_parameters)?;
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
        watcher.finish(
            result.status,
            result.failure_reason.as_deref(),
            model.as_deref(),
        );
        match result.status {
            Status::Completed => Ok(()),
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

/// What a stop request did: `it` names what the running kernel stops.
pub(crate) fn stop_message(name: &str, status: Status, it: &str) -> String {
    if status == Status::Stopping {
        format!("{name}: Stopping (the kernel running it stops {it} within a second)\n")
    } else {
        format!("{name}: already {}\n", status.as_str())
    }
}

fn param(c: &Component, name: &str) -> Option<String> {
    c.parameters
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn elapsed(c: &Component) -> Option<f64> {
    Some(c.end_time? - c.start_time?)
}

fn component(store: &Store, name: &str) -> Result<Component, MagicError> {
    store.component(name)?.ok_or_else(|| {
        failed(format!(
            "there is no training job `{name}` (`%train list` lists them)"
        ))
    })
}

/// One display for a running job, redrawn at most every 0.25 s: status, the latest metrics
/// and a curve of the main one. A script's output streams into the cell as it comes.
struct LiveJob<'a> {
    ctx: &'a mut dyn MagicContext,
    name: String,
    id: String,
    started: Instant,
    shown: Option<Instant>,
    latest: BTreeMap<String, (u64, f64)>,
    history: BTreeMap<String, Vec<(u64, f64)>>,
    logs: String,
    logs_sent: Instant,
}

impl<'a> LiveJob<'a> {
    fn new(name: &str, ctx: &'a mut dyn MagicContext) -> LiveJob<'a> {
        LiveJob {
            ctx,
            name: name.to_owned(),
            id: rustmaker_magics::long_work::unique_display_id("train", name),
            started: Instant::now(),
            shown: None,
            latest: BTreeMap::new(),
            history: BTreeMap::new(),
            logs: String::new(),
            logs_sent: Instant::now(),
        }
    }

    fn main_metric(&self) -> Option<&String> {
        let keys: Vec<&String> = self.history.keys().collect();
        ["validation:", "train:", ""].iter().find_map(|p| {
            keys.iter()
                .copied()
                .filter(|k| k.starts_with(p) && self.history[*k].len() > 1)
                .find(|k| lower_is_better(k))
                .or_else(|| {
                    keys.iter()
                        .copied()
                        .find(|k| k.starts_with(p) && self.history[*k].len() > 1)
                })
        })
    }

    fn bundle(&self, status: &str, extra: &[(String, String)]) -> MimeBundle {
        let mut rows = vec![
            ("status".to_owned(), status.to_owned()),
            (
                "elapsed".into(),
                format!("{:.1} s", self.started.elapsed().as_secs_f64()),
            ),
        ];
        rows.extend(extra.iter().cloned());
        for (k, (step, v)) in &self.latest {
            rows.push((k.clone(), format!("{} (step {step})", render::short(*v))));
        }
        let text = format!(
            "{}: {}",
            self.name,
            rows.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("  ")
        );
        let mut html = render::pairs(&format!("training job {}", self.name), &rows);
        if let Some(metric) = self.main_metric() {
            html.push_str(&render::curves(
                metric,
                &[(metric.clone(), self.history[metric].clone())],
            ));
        }
        MimeBundle::text(text).with("text/html", json!(html))
    }

    fn redraw(&mut self, force: bool) {
        if !force
            && self
                .shown
                .is_some_and(|t| t.elapsed() < Duration::from_millis(250))
        {
            return;
        }
        self.flush_logs();
        let bundle = self.bundle("InProgress", &[]);
        match self.shown {
            None => self.ctx.display(bundle, Some(&self.id.clone())),
            Some(_) => self.ctx.update_display(bundle, &self.id.clone()),
        }
        self.shown = Some(Instant::now());
    }

    fn flush_logs(&mut self) {
        if !self.logs.is_empty() {
            let text = std::mem::take(&mut self.logs);
            self.ctx.stdout(&text);
        }
        self.logs_sent = Instant::now();
    }

    fn finish(&mut self, status: Status, reason: Option<&str>, model: Option<&Path>) {
        self.flush_logs();
        let mut extra = Vec::new();
        if let Some(r) = reason {
            extra.push(("reason".to_owned(), r.to_owned()));
        }
        if let Some(m) = model {
            extra.push(("model".to_owned(), m.display().to_string()));
        }
        let bundle = self.bundle(status.as_str(), &extra);
        match self.shown {
            None => self.ctx.display(bundle, Some(&self.id.clone())),
            Some(_) => self.ctx.update_display(bundle, &self.id.clone()),
        }
    }
}

impl Watcher for LiveJob<'_> {
    fn metrics(&mut self, step: u64, values: &[(String, f64)]) {
        for (k, v) in values {
            self.latest.insert(k.clone(), (step, *v));
            self.history.entry(k.clone()).or_default().push((step, *v));
        }
        self.redraw(false);
    }

    fn log(&mut self, line: &str) {
        self.logs.push_str(line);
        self.logs.push('\n');
        // Coalesce a flood of lines into few stream messages.
        if self.logs_sent.elapsed() > Duration::from_millis(100) || self.logs.len() > 64 * 1024 {
            self.flush_logs();
        }
    }

    fn should_stop(&mut self) -> bool {
        if self.shown.is_none() && self.started.elapsed() > Duration::from_millis(300) {
            self.redraw(true);
        }
        if self.logs_sent.elapsed() > Duration::from_millis(100) {
            self.flush_logs();
        }
        self.ctx.is_interrupted()
    }
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct PredictArgs {
    /// A training job's name, or a model.tar.gz (local or s3://).
    #[arg(long)]
    model: String,
    #[arg(long)]
    data: String,
    #[arg(short = 'o')]
    frame: String,
    #[command(flatten)]
    csv: HeaderArgs,
}

pub struct PredictMagic {
    pub store: SharedObjectStore,
}

impl Magic for PredictMagic {
    fn name(&self) -> &str {
        "predict"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line]
    }
    fn summary(&self) -> &str {
        "Score data with a trained model (a job's, or a model.tar.gz) into a frame."
    }
    fn help(&self) -> String {
        "%predict --model JOB|PATH/model.tar.gz|s3://…/model.tar.gz --data SOURCE -o NAME [--header|--no-header]\n\n\
         Adds the model's answer to each row of SOURCE (a frame, .csv, .parquet or s3:// object)\n\
         and keeps the result as the frame NAME. The columns are SageMaker's: predicted_label and\n\
         probability (classification), score (regression), closest_cluster and\n\
         distance_to_cluster (k-means). The data is prepared with the model's recorded schema; a\n\
         missing column, or text where the model had numbers, is refused with the column named.\n\n\
         Example:\n    %predict --model iris-forest --data iris_new -o scored"
            .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let args: PredictArgs = parse_args("predict", call.argv()?)?;
        rustmaker_magics::frames::check_name(&args.frame)?;
        let scratch = Scratch::new("ml")?;
        let model = if args.model.starts_with("s3://") {
            self.store.fetch(&args.model, scratch.path(), Some(&*ctx))?
        } else if args.model.ends_with(".tar.gz") || Path::new(&args.model).is_file() {
            PathBuf::from(&args.model)
        } else {
            let store = open_store()?;
            let c = component(&store, &args.model)?;
            if c.status != Status::Completed {
                return Err(failed(format!(
                    "training job {} is {}, so it has no model",
                    c.name,
                    c.status.as_str()
                )));
            }
            let uri = c
                .outputs
                .iter()
                .find(|(k, _)| k == "SageMaker.ModelArtifact")
                .map(|(_, v)| v.clone())
                .ok_or_else(|| failed(format!("training job {} has no model artifact", c.name)))?;
            if uri.starts_with("s3://") {
                self.store.fetch(&uri, scratch.path(), Some(&*ctx))?
            } else {
                PathBuf::from(uri)
            }
        };
        if !model.is_file() {
            return Err(failed(format!("there is no model at {}", model.display())));
        }
        let (data, _) = load(&args.data, args.csv.given(), &*self.store, &scratch, ctx)?;
        let scored = job::predict(&model, &data)?;
        ctx.display(frame_bundle(&scored, 10), None);
        ctx.frames().insert(&args.frame, scored)?;
        Ok(())
    }
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct ExperimentsArgs {
    #[command(subcommand)]
    command: ExperimentsCommand,
}

#[derive(Subcommand, Debug)]
enum ExperimentsCommand {
    List,
    Show {
        experiment: String,
        #[arg(short = 'o')]
        frame: Option<String>,
    },
    Leaderboard {
        experiment: String,
        #[arg(long)]
        sort: String,
        #[arg(long, conflicts_with = "desc")]
        asc: bool,
        #[arg(long)]
        desc: bool,
        #[arg(long)]
        top: Option<usize>,
        #[arg(short = 'o')]
        frame: Option<String>,
    },
    Compare {
        #[arg(required = true, num_args = 2..)]
        components: Vec<String>,
    },
    Delete {
        experiment: String,
        #[arg(short = 'f')]
        force: bool,
    },
}

pub struct ExperimentsMagic;

/// SageMaker's ExperimentAnalytics columns for one component's metric summaries.
const SUMMARY_COLUMNS: [&str; 6] = ["Min", "Max", "Avg", "StdDev", "Last", "Count"];

impl Magic for ExperimentsMagic {
    fn name(&self) -> &str {
        "experiments"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line]
    }
    fn summary(&self) -> &str {
        "Experiments and their trials: list, show, leaderboard, compare, delete."
    }
    fn help(&self) -> String {
        format!(
            "%experiments list\n\
             %experiments show EXPERIMENT [-o NAME]\n\
             %experiments leaderboard EXPERIMENT --sort METRIC [--asc|--desc] [--top N] [-o NAME]\n\
             %experiments compare JOB1 JOB2 …\n\
             %experiments delete EXPERIMENT -f\n\n\
             The store is SQLite at {} ($RUSTMAKER_EXPERIMENTS_DB moves it). `show` gives each trial\n\
             component with its parameters and, per metric, SageMaker Experiments' summaries\n\
             (METRIC - Min, - Max, - Avg, - StdDev, - Last, - Count). `leaderboard` ranks the\n\
             components by a metric's last value (best first: highest, or lowest for losses such\n\
             as rmse, logloss, mse, mae, msd; --asc/--desc say otherwise). `compare` shows\n\
             parameters and metrics side by side with each shared metric's curves. `delete`\n\
             removes the experiment's records (not the jobs' files) and wants -f.",
            store::default_path().display()
        )
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let args: ExperimentsArgs = parse_args("experiments", call.argv()?)?;
        let store = open_store()?;
        match args.command {
            ExperimentsCommand::List => {
                let rows = store.experiments()?;
                let df = df!(
                    "ExperimentName" => rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
                    "CreationTime" => rows.iter().map(|r| render::timestamp(Some(r.created))).collect::<Vec<_>>(),
                    "Trials" => rows.iter().map(|r| r.trials).collect::<Vec<_>>(),
                    "TrialComponents" => rows.iter().map(|r| r.components).collect::<Vec<_>>()
                )
                .map_err(failed)?;
                ctx.display(frame_bundle(&df, 200), None);
                Ok(())
            }
            ExperimentsCommand::Show { experiment, frame } => {
                let components = components_of(&store, &experiment)?;
                let df = analytics(&components)?;
                ctx.display(frame_bundle(&df, 200), None);
                if let Some(name) = frame {
                    ctx.frames().insert(&name, df)?;
                }
                Ok(())
            }
            ExperimentsCommand::Leaderboard {
                experiment,
                sort,
                asc,
                desc,
                top,
                frame,
            } => {
                let components = components_of(&store, &experiment)?;
                let df = leaderboard(&components, &sort, asc, desc, top)?;
                ctx.display(frame_bundle(&df, 500), None);
                if let Some(name) = frame {
                    ctx.frames().insert(&name, df)?;
                }
                Ok(())
            }
            ExperimentsCommand::Compare { components } => {
                let mut found = Vec::new();
                for name in &components {
                    found.push(component(&store, name)?);
                }
                compare(&store, &found, ctx)
            }
            ExperimentsCommand::Delete { experiment, force } => {
                if !store.experiment_exists(&experiment)? {
                    return Err(no_experiment(&store, &experiment));
                }
                if !force {
                    let n = store.component_names(Some(&experiment))?.len();
                    return Err(MagicError::usage(
                        "experiments",
                        format!("this deletes the experiment `{experiment}` and its {n} trial components for good; add -f to go ahead"),
                    ));
                }
                let n = store.delete_experiment(&experiment)?;
                ctx.stdout(&format!(
                    "deleted the experiment {experiment} ({n} trial components)\n"
                ));
                Ok(())
            }
        }
    }
}

fn no_experiment(store: &Store, name: &str) -> MagicError {
    let known: Vec<String> = store
        .experiments()
        .map(|r| r.into_iter().map(|e| e.name).collect())
        .unwrap_or_default();
    failed(format!(
        "there is no experiment `{name}`; the experiments are: {}",
        if known.is_empty() {
            "(none yet)".into()
        } else {
            known.join(", ")
        }
    ))
}

fn components_of(store: &Store, experiment: &str) -> Result<Vec<Component>, MagicError> {
    if !store.experiment_exists(experiment)? {
        return Err(no_experiment(store, experiment));
    }
    let mut out = Vec::new();
    for name in store.component_names(Some(experiment))? {
        if let Some(c) = store.component(&name)? {
            out.push(c);
        }
    }
    Ok(out)
}

fn union<'a>(lists: impl Iterator<Item = &'a [(String, String)]>) -> Vec<String> {
    let mut names: Vec<String> = lists
        .flat_map(|l| l.iter().map(|(k, _)| k.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn metric_names(components: &[Component]) -> Vec<String> {
    let mut names: Vec<String> = components
        .iter()
        .flat_map(|c| c.metrics.iter().map(|m| m.name.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn text_or_number(values: Vec<Option<String>>, name: &str) -> Column {
    let numbers: Option<Vec<Option<f64>>> = values
        .iter()
        .map(|v| match v {
            None => Some(None),
            Some(s) => s.parse::<f64>().ok().map(Some),
        })
        .collect();
    match numbers {
        Some(n) if values.iter().any(Option::is_some) => Column::new(name.into(), n),
        _ => Column::new(name.into(), values),
    }
}

/// ExperimentAnalytics' frame: one row per trial component.
fn analytics(components: &[Component]) -> Result<DataFrame, MagicError> {
    let mut columns = vec![
        Column::new(
            "TrialComponentName".into(),
            components
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "Trial".into(),
            components
                .iter()
                .map(|c| c.trial.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "Status".into(),
            components
                .iter()
                .map(|c| c.status.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "StartTime".into(),
            components
                .iter()
                .map(|c| render::timestamp(c.start_time))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "EndTime".into(),
            components
                .iter()
                .map(|c| render::timestamp(c.end_time))
                .collect::<Vec<_>>(),
        ),
    ];
    for p in union(components.iter().map(|c| c.parameters.as_slice())) {
        let values = components.iter().map(|c| param(c, &p)).collect();
        columns.push(text_or_number(values, &p));
    }
    for m in metric_names(components) {
        for (i, stat) in SUMMARY_COLUMNS.iter().enumerate() {
            let values: Vec<Option<f64>> = components
                .iter()
                .map(|c| {
                    c.metrics.iter().find(|s| s.name == m).map(|s| match i {
                        0 => s.min,
                        1 => s.max,
                        2 => s.avg,
                        3 => s.std_dev,
                        4 => s.last,
                        _ => s.count as f64,
                    })
                })
                .collect();
            columns.push(Column::new(format!("{m} - {stat}").into(), values));
        }
    }
    DataFrame::new(components.len(), columns).map_err(failed)
}

fn leaderboard(
    components: &[Component],
    sort: &str,
    asc: bool,
    desc: bool,
    top: Option<usize>,
) -> Result<DataFrame, MagicError> {
    let metrics = metric_names(components);
    if !metrics.iter().any(|m| m == sort) {
        return Err(failed(format!(
            "no trial component of this experiment has the metric `{sort}`; its metrics are: {}",
            if metrics.is_empty() {
                "(none)".into()
            } else {
                metrics.join(", ")
            }
        )));
    }
    let ascending = asc || (!desc && lower_is_better(sort));
    let value = |c: &Component| c.metrics.iter().find(|m| m.name == sort).map(|m| m.last);
    // Components without the metric (failed, stopped early) rank last.
    let mut ranked: Vec<&Component> = components.iter().collect();
    ranked.sort_by(|a, b| match (value(a), value(b)) {
        (Some(x), Some(y)) => {
            if ascending {
                x.total_cmp(&y)
            } else {
                y.total_cmp(&x)
            }
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    if let Some(n) = top {
        ranked.truncate(n);
    }
    let mut columns = vec![
        Column::new("rank".into(), (1..=ranked.len() as u32).collect::<Vec<_>>()),
        Column::new(
            "TrialComponentName".into(),
            ranked.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "Status".into(),
            ranked.iter().map(|c| c.status.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            sort.into(),
            ranked.iter().map(|c| value(c)).collect::<Vec<_>>(),
        ),
    ];
    for m in metrics.iter().filter(|m| *m != sort) {
        columns.push(Column::new(
            m.as_str().into(),
            ranked
                .iter()
                .map(|c| c.metrics.iter().find(|s| &s.name == m).map(|s| s.last))
                .collect::<Vec<_>>(),
        ));
    }
    let owned: Vec<Component> = ranked.iter().map(|c| (*c).clone()).collect();
    for p in union(owned.iter().map(|c| c.parameters.as_slice())) {
        let values = owned.iter().map(|c| param(c, &p)).collect();
        columns.push(text_or_number(values, &p));
    }
    columns.push(Column::new(
        "TrainingElapsedTimeSeconds".into(),
        owned.iter().map(elapsed).collect::<Vec<_>>(),
    ));
    DataFrame::new(owned.len(), columns).map_err(failed)
}

fn compare(
    store: &Store,
    components: &[Component],
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    let mut header = vec!["".to_owned()];
    header.extend(components.iter().map(|c| c.name.clone()));
    let mut rows = vec![{
        let mut r = vec!["Status".to_owned()];
        r.extend(components.iter().map(|c| c.status.as_str().to_owned()));
        r
    }];
    for p in union(components.iter().map(|c| c.parameters.as_slice())) {
        let mut r = vec![p.clone()];
        r.extend(components.iter().map(|c| param(c, &p).unwrap_or_default()));
        rows.push(r);
    }
    let metrics = metric_names(components);
    for m in &metrics {
        let mut r = vec![format!("{m} (last)")];
        r.extend(components.iter().map(|c| {
            c.metrics
                .iter()
                .find(|s| &s.name == m)
                .map(|s| render::short(s.last))
                .unwrap_or_default()
        }));
        rows.push(r);
    }
    let mut html = render::grid(&header, &rows);
    for m in &metrics {
        let mut series = Vec::new();
        for c in components {
            let points = store.series(&c.name, m)?;
            if !points.is_empty() {
                series.push((c.name.clone(), points));
            }
        }
        if series.len() >= 2 || series.iter().any(|(_, p)| p.len() > 1) {
            html.push_str(&render::curves(m, &series));
        }
    }
    let text = rows
        .iter()
        .map(|r| r.join("\t"))
        .collect::<Vec<_>>()
        .join("\n");
    ctx.display(
        MimeBundle::text(format!("{}\n{text}", header.join("\t"))).with("text/html", json!(html)),
        None,
    );
    Ok(())
}
