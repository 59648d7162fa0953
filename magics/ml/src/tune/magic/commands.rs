//! `%tune list|describe|stop|analytics`: a tuning job as DescribeHyperParameterTuningJob
//! shows it, its trials as a frame, and stop requests.

use super::*;

fn tuning_row(store: &Store, name: &str) -> Result<TuningRow, MagicError> {
    store
        .tuning_job(name)?
        .ok_or_else(|| no_tuning_job(name).into())
}

/// SageMaker's ObjectiveStatus of a trial: its objective was read, is still to come, or never came.
fn objective_status(t: &TrialRow) -> &'static str {
    match (t.status, t.objective) {
        (_, Some(_)) => "Succeeded",
        (Status::InProgress | Status::Stopping, None) => "Pending",
        _ => "Failed",
    }
}

/// SageMaker's HyperParameterTrainingJobSummary of a trial.
fn summary(row: &TuningRow, t: &TrialRow, multi: bool) -> Json {
    let mut s = json!({
        "TrainingJobName": t.training_job,
        "TuningJobName": row.name,
        "CreationTime": t.created,
        "TrainingStartTime": t.start_time,
        "TrainingEndTime": t.end_time,
        "TrainingJobStatus": t.status.as_str(),
        "TunedHyperParameters": t.tuned,
        "ObjectiveStatus": objective_status(t),
    });
    if let Some(v) = t.objective {
        s["FinalHyperParameterTuningJobObjectiveMetric"] =
            json!({"Type": row.objective_type, "MetricName": row.objective_metric, "Value": v});
    }
    if let Some(r) = &t.failure_reason {
        s["FailureReason"] = json!(r);
    }
    if multi {
        s["TrainingJobDefinitionName"] = json!(t.definition);
    }
    s
}

pub(super) fn describe(store: &Store, row: &TuningRow) -> Result<Json, MagicError> {
    let trials = store.tuning_trials(&row.name)?;
    let multi = row.request.get("TrainingJobDefinitions").is_some();
    let c = counts(trials.iter().map(|t| t.status));
    let objective_count = |status: &str| {
        trials
            .iter()
            .filter(|t| objective_status(t) == status)
            .count()
    };
    let mut d = json!({
        "HyperParameterTuningJobName": row.name,
        "HyperParameterTuningJobConfig": row.request.get("HyperParameterTuningJobConfig"),
        "HyperParameterTuningJobStatus": row.status.as_str(),
        "CreationTime": row.created,
        "HyperParameterTuningEndTime": row.ended,
        "TrainingJobStatusCounters": {
            "Completed": c["Completed"], "InProgress": c["InProgress"],
            "RetryableError": 0, "NonRetryableError": c["Failed"], "Stopped": c["Stopped"],
        },
        "ObjectiveStatusCounters": {
            "Succeeded": objective_count("Succeeded"),
            "Pending": objective_count("Pending"),
            "Failed": objective_count("Failed"),
        },
        "ConsumedResources": {"RuntimeInSeconds": (row.ended.unwrap_or_else(store::now) - row.created).round() as i64},
        "Experiment": row.experiment,
    });
    for key in [
        "TrainingJobDefinition",
        "TrainingJobDefinitions",
        "WarmStartConfig",
    ] {
        if let Some(v) = row.request.get(key) {
            d[key] = v.clone();
        }
    }
    if let Some(r) = &row.failure_reason {
        d["FailureReason"] = json!(r);
    }
    if let Some(r) = &row.completion_reason {
        d["TuningJobCompletionDetails"] = json!({"Reason": r});
    }
    if let Some(best) = row
        .best_training_job
        .as_ref()
        .and_then(|b| trials.iter().find(|t| &t.training_job == b))
    {
        d["BestTrainingJob"] = summary(row, best, multi);
        d["OverallBestTrainingJob"] = summary(row, best, multi);
    }
    // The overall best also looks at the warm-start parents.
    if let Some(Json::Array(parents)) = row
        .request
        .get("WarmStartConfig")
        .and_then(|w| w.get("ParentHyperParameterTuningJobs"))
    {
        let maximize = row.objective_type == "Maximize";
        let loss = |v: f64| if maximize { -v } else { v };
        let mut overall: Option<(TuningRow, TrialRow)> = row
            .best_training_job
            .as_ref()
            .and_then(|b| trials.iter().find(|t| &t.training_job == b))
            .map(|t| (row.clone(), t.clone()));
        for p in parents
            .iter()
            .filter_map(|p| p.get("HyperParameterTuningJobName").and_then(Json::as_str))
        {
            let (Some(prow), Ok(ptrials)) = (store.tuning_job(p)?, store.tuning_trials(p)) else {
                continue;
            };
            for t in ptrials
                .into_iter()
                .filter(|t| t.status == Status::Completed && t.objective.is_some())
            {
                let v = t.objective.expect("filtered");
                if overall
                    .as_ref()
                    .is_none_or(|(_, b)| loss(v) < loss(b.objective.unwrap_or(f64::NAN)))
                {
                    overall = Some((prow.clone(), t));
                }
            }
        }
        if let Some((r, t)) = overall {
            d["OverallBestTrainingJob"] = summary(&r, &t, multi);
        }
    }
    Ok(d)
}

/// SageMaker's HyperparameterTuningJobAnalytics.dataframe(): the tuned values (numbers where
/// they parse), then the job's name, status, final objective, times and (multi-algorithm)
/// definition.
fn analytics(row: &TuningRow, trials: &[TrialRow]) -> Result<DataFrame, MagicError> {
    let multi = row.request.get("TrainingJobDefinitions").is_some();
    let mut names: Vec<String> = Vec::new();
    for t in trials {
        for k in t.tuned.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let mut columns: Vec<Column> = Vec::new();
    for n in &names {
        let values = trials.iter().map(|t| t.tuned.get(n).cloned()).collect();
        columns.push(crate::magic::experiments::text_or_number(values, n));
    }
    columns.push(Column::new(
        "TrainingJobName".into(),
        trials
            .iter()
            .map(|t| t.training_job.clone())
            .collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "TrainingJobStatus".into(),
        trials.iter().map(|t| t.status.as_str()).collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "FinalObjectiveValue".into(),
        trials.iter().map(|t| t.objective).collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "TrainingStartTime".into(),
        trials
            .iter()
            .map(|t| t.start_time.map(|s| render::timestamp(Some(s))))
            .collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "TrainingEndTime".into(),
        trials
            .iter()
            .map(|t| t.end_time.map(|s| render::timestamp(Some(s))))
            .collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "TrainingElapsedTimeSeconds".into(),
        trials
            .iter()
            .map(|t| Some(t.end_time? - t.start_time?))
            .collect::<Vec<_>>(),
    ));
    if multi {
        columns.push(Column::new(
            "TrainingJobDefinitionName".into(),
            trials
                .iter()
                .map(|t| t.definition.clone())
                .collect::<Vec<_>>(),
        ));
    }
    DataFrame::new(trials.len(), columns).map_err(failed)
}

pub(super) fn command(command: TuneCommand, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
    let store = open_store()?;
    match command {
        TuneCommand::List => {
            let rows = store.tuning_jobs()?;
            let mut table = Vec::new();
            for r in &rows {
                let trials = store.tuning_trials(&r.name)?;
                let best = r
                    .best_training_job
                    .as_ref()
                    .and_then(|b| trials.iter().find(|t| &t.training_job == b));
                table.push(vec![
                    r.name.clone(),
                    r.status.as_str().to_owned(),
                    r.strategy.clone(),
                    format!("{} {}", r.objective_type, r.objective_metric),
                    trials.len().to_string(),
                    best.map(|b| b.training_job.clone()).unwrap_or_default(),
                    best.and_then(|b| b.objective)
                        .map(render::short)
                        .unwrap_or_default(),
                    render::timestamp(Some(r.created)),
                ]);
            }
            let header: Vec<String> = [
                "HyperParameterTuningJobName",
                "Status",
                "Strategy",
                "Objective",
                "TrainingJobs",
                "BestTrainingJob",
                "BestObjective",
                "CreationTime",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let text = if table.is_empty() {
                "no tuning jobs yet".to_owned()
            } else {
                table
                    .iter()
                    .map(|r| r.join("  "))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            ctx.display(
                MimeBundle::text(text).with("text/html", json!(render::grid(&header, &table))),
                None,
            );
            Ok(())
        }
        TuneCommand::Describe { name } => {
            let row = tuning_row(&store, &name)?;
            let d = describe(&store, &row)?;
            let mut rows = vec![
                (
                    "HyperParameterTuningJobStatus".to_owned(),
                    row.status.as_str().to_owned(),
                ),
                ("Strategy".into(), row.strategy.clone()),
                (
                    "Objective".into(),
                    format!("{} {}", row.objective_type, row.objective_metric),
                ),
                (
                    "TrainingJobStatusCounters".into(),
                    d["TrainingJobStatusCounters"].to_string(),
                ),
                (
                    "ObjectiveStatusCounters".into(),
                    d["ObjectiveStatusCounters"].to_string(),
                ),
            ];
            if let Some(b) = d.get("BestTrainingJob") {
                rows.push((
                    "BestTrainingJob".into(),
                    format!(
                        "{} = {}",
                        b["TrainingJobName"].as_str().unwrap_or_default(),
                        b["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
                    ),
                ));
            }
            if let Some(b) = d.get("OverallBestTrainingJob") {
                rows.push((
                    "OverallBestTrainingJob".into(),
                    b["TrainingJobName"].as_str().unwrap_or_default().to_owned(),
                ));
            }
            if let Some(r) = &row.completion_reason {
                rows.push(("CompletionReason".into(), r.clone()));
            }
            if let Some(r) = &row.failure_reason {
                rows.push(("FailureReason".into(), r.clone()));
            }
            let text = rows
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("\n");
            ctx.display(
                MimeBundle::text(text)
                    .with("text/html", json!(render::pairs(&name, &rows)))
                    .with("application/json", d),
                None,
            );
            Ok(())
        }
        TuneCommand::Stop { name } => {
            let status = store.request_tuning_stop(&name)?;
            ctx.stdout(&stop_message(&name, status, "it and its training jobs"));
            Ok(())
        }
        TuneCommand::Analytics { name, frame } => {
            let row = tuning_row(&store, &name)?;
            let trials = store.tuning_trials(&name)?;
            let df = analytics(&row, &trials)?;
            ctx.display(frame_bundle(&df, 500), None);
            if let Some(f) = frame {
                ctx.frames().insert(&f, df)?;
            }
            Ok(())
        }
    }
}
