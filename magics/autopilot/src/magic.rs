//! `%autopilot` and `%%autopilot`: the adapter that parses a call, hands the job to
//! [`crate::job`] and renders the record; `describe`, `candidates`, `best`, `stop`, `list`
//! read the job store, and `rank` scores a tuning job's trials as the job scores its own
//! (the candidate notebook's leaderboard).

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use polars::prelude::*;
use rustmaker_magics::data::SharedObjectStore;
use rustmaker_magics::long_work::LiveDisplay;
use rustmaker_magics::table::frame_bundle;
use rustmaker_magics::{
    parse_args, Magic, MagicCall, MagicContext, MagicError, MagicForm, MagicRegistry, MimeBundle,
};
use rustmaker_ml::render;
use rustmaker_ml::tune::runner::Trial;
use serde_json::{json, Value};

use crate::charts::escape;
use crate::job::{self, Live};
use crate::objective::{Objective, Problem};
use crate::record::{self, CandidateRecord, JobRecord};
use crate::request::{JobSpec, Mode};

pub struct AutopilotMagic {
    pub store: SharedObjectStore,
}

/// Registers `%autopilot` (the one line of the composition root).
pub fn register(registry: &mut MagicRegistry, store: &SharedObjectStore) -> Result<(), MagicError> {
    registry.register(Arc::new(AutopilotMagic {
        store: store.clone(),
    }))
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct RunArgs {
    name: String,
    #[arg(long)]
    data: Option<String>,
    #[arg(long)]
    target: Option<String>,
    #[arg(long = "problem-type")]
    problem_type: Option<String>,
    #[arg(long)]
    objective: Option<String>,
    #[arg(long = "max-candidates")]
    max_candidates: Option<usize>,
    #[arg(long = "max-runtime")]
    max_runtime: Option<u64>,
    #[arg(long = "max-runtime-per-job")]
    max_runtime_per_job: Option<u64>,
    #[arg(long = "validation-fraction", conflicts_with = "validation")]
    validation_fraction: Option<f64>,
    #[arg(long)]
    validation: Option<String>,
    #[arg(long)]
    mode: Option<String>,
    #[arg(long, value_delimiter = ',')]
    algorithms: Vec<String>,
    #[arg(long = "candidates-only")]
    candidates_only: bool,
    #[arg(long)]
    output: Option<String>,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long = "max-candidates-not-improving")]
    max_candidates_not_improving: Option<usize>,
    /// The request in a JSON or YAML file instead of the cell.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct CommandArgs {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    List,
    Describe {
        name: String,
    },
    Candidates {
        name: String,
        #[arg(short = 'o')]
        frame: Option<String>,
        #[arg(long = "sort-by", default_value = "FinalObjectiveMetricValue")]
        sort_by: String,
        #[arg(long)]
        status: Option<String>,
    },
    Best {
        name: String,
    },
    Stop {
        name: String,
    },
    Rank {
        name: String,
        #[arg(long = "tuning-job")]
        tuning_job: String,
        #[arg(long = "save-best")]
        save_best: Option<PathBuf>,
        /// Add the trials' weighted ensemble, as ENSEMBLING does.
        #[arg(long)]
        ensemble: bool,
        #[arg(short = 'o')]
        frame: Option<String>,
    },
}

const HELP: &str = "\
%autopilot NAME --data SOURCE --target COLUMN [--problem-type BinaryClassification|MulticlassClassification|Regression]
      [--objective METRIC] [--max-candidates N] [--max-runtime SECONDS] [--max-runtime-per-job SECONDS]
      [--validation-fraction F | --validation SOURCE] [--mode auto|ensembling|hyperparameter-tuning]
      [--algorithms xgboost,lightgbm,linear-learner,randomforest,extra-trees,mlp,gaussian-process] [--candidates-only]
      [--output DIR|s3://…] [--seed N] [--max-candidates-not-improving N (default 5 per definition; 0: to the limits)]
%%autopilot NAME            (the cell: CreateAutoMLJob's request, JSON or YAML)
%autopilot NAME --config FILE.json|FILE.yaml
%autopilot list
%autopilot describe NAME    (DescribeAutoMLJob's fields)
%autopilot candidates NAME [-o FRAME] [--sort-by FinalObjectiveMetricValue|CreationTime] [--status Completed|Failed|Stopped]
%autopilot best NAME
%autopilot stop NAME
%autopilot rank NAME --tuning-job TUNING_JOB [--save-best DIR] [--ensemble] [-o FRAME]

SOURCE is a frame, a .csv or .parquet file (.gz with CompressionType Gzip) or an s3:// object.
The job analyses the table, splits it (seeded, classes stratified), writes
SageMakerAutopilotDataExplorationNotebook.ipynb and SageMakerAutopilotCandidateDefinitionNotebook.ipynb
under OUTPUT/NAME/sagemaker-automl-candidates/NAME-pr-1/notebooks/, tunes the candidates
(dpp0-xgboost, dpp1-lightgbm, dpp2-linear-learner, dpp3-randomforest, dpp4-extra-trees, and on
tables of at most 5,000 rows dpp5-mlp and, for regression, dpp6-gaussian-process) as one multi-algorithm tuning job NAME, scores every candidate on the validation rows with the objective, adds their
weighted ensemble NAME-ensemble in ENSEMBLING mode (AUTO's choice for tables under 100 MB), and
saves the best one as OUTPUT/NAME/best-candidate/model.tar.gz (`%predict --model` takes it, or the best
candidate's name). Objectives: Regression MSE (MAE, RMSE, R2); BinaryClassification F1 (Accuracy,
AUC, BalancedAccuracy, Precision, Recall, LogLoss); MulticlassClassification Accuracy
(BalancedAccuracy, F1macro, PrecisionMacro, RecallMacro, LogLoss). Interrupt, or `%autopilot stop
NAME` from any notebook, stops the job and keeps the candidates that finished.";

impl Magic for AutopilotMagic {
    fn name(&self) -> &str {
        "autopilot"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line, MagicForm::Cell]
    }
    fn summary(&self) -> &str {
        "AutoML as SageMaker Autopilot: analysis, candidate notebooks, tuned candidates, leaderboard, best model."
    }
    fn help(&self) -> String {
        HELP.into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let argv = call.argv()?;
        if call.form == MagicForm::Line
            && matches!(
                argv.first().map(String::as_str),
                Some("list" | "describe" | "candidates" | "best" | "stop" | "rank")
            )
        {
            let args: CommandArgs = parse_args("autopilot", argv)?;
            return command(args.command, ctx);
        }
        let args: RunArgs = parse_args("autopilot", argv)?;
        let spec = spec_of(&args, call)?;
        let mut live = LiveJob {
            ctx,
            display: LiveDisplay::new("autopilot", &spec.name),
            started: std::time::Instant::now(),
        };
        let job = job::run(&spec, &*self.store, &mut live)?;
        let ctx = live.ctx;
        ctx.stdout(&summary(&job));
        Ok(())
    }
}

fn usage(message: impl Into<String>) -> MagicError {
    MagicError::usage("autopilot", message)
}

/// The settings, from the flags or from the request (the cell or `--config`).
fn spec_of(args: &RunArgs, call: &MagicCall) -> Result<JobSpec, MagicError> {
    let request = match (&args.config, call.form) {
        (Some(path), _) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| MagicError::Data(format!("cannot read {}: {e}", path.display())))?,
        ),
        (None, MagicForm::Cell) => Some(call.body.clone()),
        (None, MagicForm::Line) => None,
    };
    if let Some(text) = request {
        let mut spec = JobSpec::from_request(&args.name, &text)?;
        // A seed or an output given on the line still counts.
        spec.seed = args.seed.or(spec.seed);
        spec.max_candidates_not_improving = args
            .max_candidates_not_improving
            .or(spec.max_candidates_not_improving);
        if args.output.is_some() {
            spec.output = args.output.clone();
        }
        return Ok(spec);
    }
    let (Some(data), Some(target)) = (&args.data, &args.target) else {
        return Err(usage(
            "give the table and its target: %autopilot NAME --data SOURCE --target COLUMN (or the request in a %%autopilot cell)",
        ));
    };
    let mut spec = JobSpec::new(&args.name, data, target);
    spec.validation = args.validation.clone();
    spec.output = args.output.clone();
    spec.problem = args
        .problem_type
        .as_deref()
        .map(Problem::parse)
        .transpose()?;
    spec.objective = args.objective.clone();
    if let Some(n) = args.max_candidates {
        spec.max_candidates = n;
    }
    spec.max_runtime = args.max_runtime;
    spec.max_runtime_per_job = args.max_runtime_per_job;
    spec.validation_fraction = args.validation_fraction;
    spec.mode = args
        .mode
        .as_deref()
        .map(Mode::parse)
        .transpose()?
        .unwrap_or_default();
    spec.algorithms = args.algorithms.clone();
    spec.candidates_only = args.candidates_only;
    spec.seed = args.seed;
    spec.max_candidates_not_improving = args.max_candidates_not_improving;
    spec.check()?;
    Ok(spec)
}

fn summary(job: &JobRecord) -> String {
    let mut s = format!(
        "Autopilot job {}: {} ({})",
        job.name,
        job.status.as_str(),
        job.secondary.as_str()
    );
    if let Some(best) = job
        .best
        .as_ref()
        .and_then(|b| job.candidates.iter().find(|c| &c.name == b))
    {
        s.push_str(&format!(
            "; best candidate {} ({}) with {} = {}",
            best.name,
            best.definition,
            job.objective.as_deref().unwrap_or_default(),
            best.objective
                .map(crate::charts::number)
                .unwrap_or_default()
        ));
    }
    s.push('\n');
    for (what, path) in [
        ("data exploration notebook", &job.exploration_notebook),
        ("candidate definition notebook", &job.candidate_notebook),
    ] {
        if let Some(p) = path {
            s.push_str(&format!("{what}: {p}\n"));
        }
    }
    if job.best.is_some() {
        s.push_str(&format!(
            "best model: {}/best-candidate/model.tar.gz\n",
            job.output_uri.as_deref().unwrap_or(&job.output_dir)
        ));
    }
    if let Some(top) = job.feature_importance.as_deref().and_then(importance) {
        s.push_str(&format!("most important features: {top}\n"));
    }
    s
}

/// The best candidate's five most important features, from its `analysis.json` (local).
fn importance(path: &str) -> Option<String> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let values = doc.pointer("/explanations/permutation/label/global_importance")?;
    let mut pairs: Vec<(&String, f64)> = values
        .as_object()?
        .iter()
        .filter_map(|(k, v)| Some((k, v.as_f64()?)))
        .collect();
    pairs.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    Some(
        pairs
            .iter()
            .take(5)
            .map(|(k, v)| format!("{k} ({})", crate::charts::number(*v)))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// The one live display of a running job.
struct LiveJob<'a> {
    ctx: &'a mut dyn MagicContext,
    display: LiveDisplay,
    started: std::time::Instant,
}

impl Live for LiveJob<'_> {
    fn ctx(&mut self) -> &mut dyn MagicContext {
        self.ctx
    }

    fn show(&mut self, job: &JobRecord, trials: &[Trial]) {
        let mut rows = vec![
            ("AutoMLJobStatus".to_owned(), job.status.as_str().to_owned()),
            (
                "AutoMLJobSecondaryStatus".into(),
                job.secondary.as_str().into(),
            ),
            (
                "elapsed".into(),
                format!("{:.1} s", self.started.elapsed().as_secs_f64()),
            ),
        ];
        if let Some(p) = &job.problem {
            rows.push((
                "ProblemType".into(),
                format!("{p} ({})", job.problem_reason.clone().unwrap_or_default()),
            ));
        }
        if let Some(o) = &job.objective {
            rows.push(("objective".into(), o.clone()));
        }
        if let Some(m) = &job.mode {
            rows.push(("mode".into(), m.clone()));
        }
        rows.push(("candidates".into(), job.candidates.len().to_string()));
        if let Some(r) = &job.failure_reason {
            rows.push(("FailureReason".into(), r.clone()));
        }
        let mut html = render::pairs(&format!("Autopilot job {}", job.name), &rows);
        let header = [
            "CandidateName",
            "Definition",
            "Status",
            "tuning metric",
            "Reason",
        ]
        .map(str::to_owned);
        let table: Vec<Vec<String>> = if trials.is_empty() {
            record::ranked(job)
                .iter()
                .map(|c| candidate_row(c))
                .collect()
        } else {
            trials
                .iter()
                .map(|t| {
                    let definition = job
                        .candidates
                        .iter()
                        .find(|c| c.name == t.name)
                        .map(|c| c.definition.clone())
                        .unwrap_or_default();
                    vec![
                        t.name.clone(),
                        definition,
                        t.status.as_str().to_owned(),
                        t.objective.map(crate::charts::number).unwrap_or_default(),
                        t.reason.clone().unwrap_or_default(),
                    ]
                })
                .collect()
        };
        let scored: Vec<(u64, f64)> = trials
            .iter()
            .filter_map(|t| Some((t.seq as u64, t.objective?)))
            .collect();
        if !scored.is_empty() {
            html.push_str(&render::curves(
                "tuning metric by candidate",
                &[("each candidate".into(), scored)],
            ));
        }
        if !table.is_empty() {
            let header = if trials.is_empty() {
                [
                    "CandidateName",
                    "Definition",
                    "Status",
                    job.objective.as_deref().unwrap_or("objective"),
                    "Reason",
                ]
                .map(str::to_owned)
            } else {
                header
            };
            html.push_str(&render::grid(&header, &table));
        }
        let text = format!(
            "{}: {} ({}), {} candidates",
            job.name,
            job.status.as_str(),
            job.secondary.as_str(),
            job.candidates.len()
        );
        let bundle = MimeBundle::text(text).with("text/html", json!(html));
        if job.status.is_final() || trials.is_empty() {
            self.display.finish(self.ctx, bundle);
        } else {
            self.display.update(self.ctx, bundle);
        }
    }
}

fn candidate_row(c: &CandidateRecord) -> Vec<String> {
    vec![
        c.name.clone(),
        c.definition.clone(),
        c.status.clone(),
        c.objective.map(crate::charts::number).unwrap_or_default(),
        c.failure_reason.clone().unwrap_or_default(),
    ]
}

/// A leaderboard as a frame: a row a candidate, best first.
fn leaderboard(job: &JobRecord, candidates: &[&CandidateRecord]) -> Result<DataFrame, MagicError> {
    let col = |f: &dyn Fn(&CandidateRecord) -> String| -> Vec<String> {
        candidates.iter().map(|c| f(c)).collect()
    };
    let metric = job.objective.clone().unwrap_or_else(|| "objective".into());
    DataFrame::new(
        candidates.len(),
        vec![
            Column::new("CandidateName".into(), col(&|c| c.name.clone())),
            Column::new("CandidateDefinition".into(), col(&|c| c.definition.clone())),
            Column::new("CandidateStatus".into(), col(&|c| c.status.clone())),
            Column::new(
                metric.into(),
                candidates.iter().map(|c| c.objective).collect::<Vec<_>>(),
            ),
            Column::new(
                "TunedHyperParameters".into(),
                col(&|c| serde_json::to_string(&c.tuned).unwrap_or_default()),
            ),
            Column::new(
                "ModelDataUrl".into(),
                col(&|c| c.model.clone().unwrap_or_default()),
            ),
        ],
    )
    .map_err(|e| MagicError::Failed(e.to_string()))
}

fn show_json(ctx: &mut dyn MagicContext, title: &str, value: Value) {
    let text = serde_json::to_string_pretty(&value).unwrap_or_default();
    ctx.display(
        MimeBundle::text(text)
            .with("text/html", json!(format!("<b>{}</b>", escape(title))))
            .with("application/json", value),
        None,
    );
}

fn command(command: Command, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
    let root = record::root();
    match command {
        Command::List => {
            let jobs = record::list(&root)?;
            if jobs.is_empty() {
                ctx.stdout("no Autopilot jobs yet: %autopilot NAME --data SOURCE --target COLUMN starts one\n");
                return Ok(());
            }
            let header = [
                "AutoMLJobName",
                "AutoMLJobStatus",
                "AutoMLJobSecondaryStatus",
                "ProblemType",
                "BestCandidate",
            ]
            .map(str::to_owned);
            let rows: Vec<Vec<String>> = jobs
                .iter()
                .map(|j| {
                    vec![
                        j.name.clone(),
                        j.status.as_str().to_owned(),
                        j.secondary.as_str().to_owned(),
                        j.problem.clone().unwrap_or_default(),
                        j.best.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            let text = rows
                .iter()
                .map(|r| r.join("  "))
                .collect::<Vec<_>>()
                .join("\n");
            ctx.display(
                MimeBundle::text(text).with("text/html", json!(render::grid(&header, &rows))),
                None,
            );
            Ok(())
        }
        Command::Describe { name } => {
            let job = record::get(&root, &name)?;
            show_json(
                ctx,
                &format!("Autopilot job {name}"),
                record::describe(&job),
            );
            Ok(())
        }
        Command::Candidates {
            name,
            frame,
            sort_by,
            status,
        } => {
            let by_objective = match sort_by.as_str() {
                "FinalObjectiveMetricValue" => true,
                "CreationTime" => false,
                other => {
                    return Err(usage(format!(
                        "--sort-by {other}: use FinalObjectiveMetricValue or CreationTime"
                    )))
                }
            };
            let job = record::get(&root, &name)?;
            let listed = record::list_candidates(&job, status.as_deref(), by_objective);
            let names: Vec<&str> = listed["Candidates"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["CandidateName"].as_str())
                .collect();
            let chosen: Vec<&CandidateRecord> = names
                .iter()
                .filter_map(|n| job.candidates.iter().find(|c| c.name == *n))
                .collect();
            let df = leaderboard(&job, &chosen)?;
            ctx.display(
                frame_bundle(&df, 500).with("application/json", listed),
                None,
            );
            if let Some(f) = frame {
                ctx.frames().insert(&f, df)?;
            }
            Ok(())
        }
        Command::Best { name } => {
            let job = record::get(&root, &name)?;
            let d = record::describe(&job);
            let Some(best) = d.get("BestCandidate").cloned() else {
                return Err(MagicError::Data(format!(
                    "Autopilot job {name} has no best candidate ({}, {}){}",
                    job.status.as_str(),
                    job.secondary.as_str(),
                    job.failure_reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                )));
            };
            show_json(ctx, &format!("best candidate of {name}"), best);
            Ok(())
        }
        Command::Stop { name } => {
            let status = record::request_stop(&root, &name)?;
            if let Ok(store) =
                rustmaker_ml::store::Store::open(&rustmaker_ml::store::default_path())
            {
                // The job's tuning job stops with it (the kernel running it is told both ways).
                let _ = store.request_tuning_stop(&name);
            }
            ctx.stdout(&match status {
                record::JobStatus::Stopping => format!(
                    "{name}: Stopping (the kernel running it stops it within a second, keeping the candidates that finished)\n"
                ),
                s => format!("{name}: already {}\n", s.as_str()),
            });
            Ok(())
        }
        Command::Rank {
            name,
            tuning_job,
            save_best,
            ensemble,
            frame,
        } => rank(
            &root,
            &name,
            &tuning_job,
            Ranking {
                save_best,
                ensemble,
                frame,
            },
            ctx,
        ),
    }
}

/// What `rank` does besides ranking.
struct Ranking {
    save_best: Option<PathBuf>,
    ensemble: bool,
    frame: Option<String>,
}

/// Scores `tuning_job`'s trials on job `name`'s validation rows with its objective: the
/// candidate notebook's leaderboard.
fn rank(
    root: &std::path::Path,
    name: &str,
    tuning_job: &str,
    Ranking {
        save_best,
        ensemble,
        frame,
    }: Ranking,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    let job = record::get(root, name)?;
    let (Some(validation), Some(problem), Some(objective)) =
        (&job.validation_data, &job.problem, &job.objective)
    else {
        return Err(MagicError::Data(format!(
            "Autopilot job {name} stopped before it split its data ({}): it has no validation rows to rank on",
            job.secondary.as_str()
        )));
    };
    let objective = Objective::parse(objective, Problem::parse(problem)?)?;
    let store = rustmaker_ml::store::Store::open(&rustmaker_ml::store::default_path())?;
    if store.tuning_job(tuning_job)?.is_none() {
        return Err(MagicError::Data(format!(
            "there is no tuning job `{tuning_job}` (`%tune list` lists them)"
        )));
    }
    let trials = store.tuning_trials(tuning_job)?;
    let read = |path: &str, what: &str| {
        std::fs::File::open(path)
            .map_err(PolarsError::from)
            .and_then(|f| ParquetReader::new(f).finish())
            .map_err(|e| MagicError::Data(format!("cannot read the {what} rows {path}: {e}")))
    };
    let rows = read(validation, "validation")?;
    let (mut candidates, mut failures) = job::score_trials(&store, &trials, &rows, objective);
    if ensemble {
        // Recorded again on each run, as the notebook's `%%tune … --replace` tunes again.
        let train = read(job.train_data.as_deref().unwrap_or_default(), "training")?;
        crate::ensemble::add_to(
            &store,
            tuning_job,
            &mut candidates,
            &mut failures,
            &crate::ensemble::Rows {
                train: &train,
                validation: &rows,
                target: &job.target,
                seed: job.request["Seed"]
                    .as_u64()
                    .unwrap_or(crate::job::DEFAULT_SEED),
                // The job's own ensemble was cross-validated to its end unless its time ran
                // out; the notebook's is always.
                deadline: None,
            },
            objective,
            true,
        );
    }
    let mut ranked_job = job.clone();
    ranked_job.candidates = candidates;
    let ranked = record::ranked(&ranked_job);
    let df = leaderboard(&ranked_job, &ranked)?;
    ctx.display(frame_bundle(&df, 500), None);
    for f in failures {
        ctx.stderr(&format!("{f}\n"));
    }
    if let (Some(dir), Some(best)) = (save_best, ranked.first().filter(|c| c.model.is_some())) {
        std::fs::create_dir_all(&dir)
            .and_then(|_| {
                std::fs::copy(
                    best.model.as_deref().unwrap_or_default(),
                    dir.join("model.tar.gz"),
                )
            })
            .map_err(|e| {
                MagicError::Failed(format!(
                    "cannot save the best pipeline in {}: {e}",
                    dir.display()
                ))
            })?;
        ctx.stdout(&format!(
            "best candidate {} ({}) saved as {}\n",
            best.name,
            best.definition,
            dir.join("model.tar.gz").display()
        ));
    }
    if let Some(f) = frame {
        ctx.frames().insert(&f, df)?;
    }
    Ok(())
}
