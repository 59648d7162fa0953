//! `%experiments`: the experiment store's experiments, trial components, leaderboards and
//! comparisons.

use clap::{Parser, Subcommand};
use polars::prelude::*;
use rustmaker_magics::table::frame_bundle;
use rustmaker_magics::{
    parse_args, Magic, MagicCall, MagicContext, MagicError, MagicForm, MimeBundle,
};
use serde_json::json;

use crate::metrics::lower_is_better;
use crate::render;
use crate::store::{self, Component, Store};

use super::{component, elapsed, open_store, param};
pub(crate) use rustmaker_magics::failed;

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

pub(crate) fn text_or_number(values: Vec<Option<String>>, name: &str) -> Column {
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
