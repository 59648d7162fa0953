//! Tuning jobs in the store: the request, the status and why it ended, and one row per trial
//! (its training job, tuned values, status and final objective). A trial's metrics live with
//! its training job's component, like any other job's.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

use super::{err, now, Status, Store};
use crate::MlError;

#[derive(Debug, Clone)]
pub struct TuningRow {
    pub name: String,
    pub experiment: String,
    pub strategy: String,
    pub objective_type: String,
    pub objective_metric: String,
    pub request: serde_json::Value,
    pub status: Status,
    pub failure_reason: Option<String>,
    pub completion_reason: Option<String>,
    pub best_training_job: Option<String>,
    pub created: f64,
    pub ended: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct TrialRow {
    pub training_job: String,
    pub seq: u64,
    pub definition: String,
    pub tuned: BTreeMap<String, String>,
    pub status: Status,
    pub objective: Option<f64>,
    pub failure_reason: Option<String>,
    pub created: f64,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
}

pub struct NewTuningJob<'a> {
    pub name: &'a str,
    pub experiment: &'a str,
    pub strategy: &'a str,
    pub objective_type: &'a str,
    pub objective_metric: &'a str,
    pub request: &'a serde_json::Value,
    pub replace: bool,
}

fn tuning_row(r: &Row) -> rusqlite::Result<TuningRow> {
    let request: String = r.get(5)?;
    Ok(TuningRow {
        name: r.get(0)?,
        experiment: r.get(1)?,
        strategy: r.get(2)?,
        objective_type: r.get(3)?,
        objective_metric: r.get(4)?,
        request: serde_json::from_str(&request).unwrap_or(serde_json::Value::Null),
        status: Status::parse(&r.get::<_, String>(6)?),
        failure_reason: r.get(7)?,
        completion_reason: r.get(8)?,
        best_training_job: r.get(9)?,
        created: r.get(10)?,
        ended: r.get(11)?,
    })
}

const TUNING_COLUMNS: &str = "name, experiment, strategy, objective_type, objective_metric, request, status, failure_reason, completion_reason, best_training_job, created, ended";

impl Store {
    /// Records a tuning job as InProgress. A name in use is refused unless `replace` is set
    /// and that job has ended (its trial rows go; its training jobs stay in the experiment).
    pub fn start_tuning(&self, job: &NewTuningJob) -> Result<(), MlError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        super::claim_name(
            &tx,
            "tuning_jobs",
            job.name,
            job.replace,
            "tuning job",
            "add --replace",
        )?;
        tx.execute(
            "INSERT INTO tuning_jobs (name, experiment, strategy, objective_type, objective_metric, request, status, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'InProgress', ?7)",
            params![
                job.name,
                job.experiment,
                job.strategy,
                job.objective_type,
                job.objective_metric,
                job.request.to_string(),
                now()
            ],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    pub fn add_trial(
        &self,
        tuning_job: &str,
        training_job: &str,
        seq: u64,
        definition: &str,
        tuned: &BTreeMap<String, String>,
    ) -> Result<(), MlError> {
        let t = now();
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO tuning_trials (tuning_job, training_job, seq, definition, tuned, status, created, start_time)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'InProgress', ?6, ?6)",
                params![
                    tuning_job,
                    training_job,
                    seq as i64,
                    definition,
                    serde_json::to_string(tuned).expect("a map serialises"),
                    t
                ],
            )
            .map(|_| ())
            .map_err(err)
    }

    pub fn finish_trial(
        &self,
        tuning_job: &str,
        training_job: &str,
        status: Status,
        objective: Option<f64>,
        reason: Option<&str>,
    ) -> Result<(), MlError> {
        self.conn()
            .execute(
                "UPDATE tuning_trials SET status = ?3, objective = ?4, failure_reason = ?5, end_time = ?6
                 WHERE tuning_job = ?1 AND training_job = ?2",
                params![
                    tuning_job,
                    training_job,
                    status.as_str(),
                    objective,
                    reason,
                    now()
                ],
            )
            .map(|_| ())
            .map_err(err)
    }

    pub fn set_best(&self, tuning_job: &str, training_job: &str) -> Result<(), MlError> {
        self.conn()
            .execute(
                "UPDATE tuning_jobs SET best_training_job = ?2 WHERE name = ?1",
                params![tuning_job, training_job],
            )
            .map(|_| ())
            .map_err(err)
    }

    pub fn set_tuning_status(&self, name: &str, status: Status) -> Result<(), MlError> {
        self.conn()
            .execute(
                "UPDATE tuning_jobs SET status = ?2 WHERE name = ?1",
                params![name, status.as_str()],
            )
            .map(|_| ())
            .map_err(err)
    }

    pub fn finish_tuning(
        &self,
        name: &str,
        status: Status,
        failure_reason: Option<&str>,
        completion_reason: Option<&str>,
    ) -> Result<(), MlError> {
        self.conn()
            .execute(
                "UPDATE tuning_jobs SET status = ?2, failure_reason = ?3, completion_reason = ?4, ended = ?5
                 WHERE name = ?1",
                params![name, status.as_str(), failure_reason, completion_reason, now()],
            )
            .map(|_| ())
            .map_err(err)
    }

    /// Asks the kernel running a tuning job to stop it (it checks between events).
    pub fn request_tuning_stop(&self, name: &str) -> Result<Status, MlError> {
        let job = self.tuning_job(name)?.ok_or_else(|| no_tuning_job(name))?;
        if job.status.is_final() {
            return Ok(job.status);
        }
        self.conn()
            .execute(
                "UPDATE tuning_jobs SET stop_requested = 1, status = 'Stopping' WHERE name = ?1",
                [name],
            )
            .map_err(err)?;
        Ok(Status::Stopping)
    }

    pub fn tuning_stop_requested(&self, name: &str) -> bool {
        self.conn()
            .query_row(
                "SELECT stop_requested FROM tuning_jobs WHERE name = ?1",
                [name],
                |r| r.get::<_, i64>(0),
            )
            .map(|v| v != 0)
            .unwrap_or(false)
    }

    pub fn tuning_job(&self, name: &str) -> Result<Option<TuningRow>, MlError> {
        self.conn()
            .query_row(
                &format!("SELECT {TUNING_COLUMNS} FROM tuning_jobs WHERE name = ?1"),
                [name],
                tuning_row,
            )
            .optional()
            .map_err(err)
    }

    /// Every tuning job, newest first.
    pub fn tuning_jobs(&self) -> Result<Vec<TuningRow>, MlError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {TUNING_COLUMNS} FROM tuning_jobs ORDER BY created DESC"
            ))
            .map_err(err)?;
        let rows = stmt.query_map([], tuning_row).map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    /// A tuning job's trials in the order they were started.
    pub fn tuning_trials(&self, name: &str) -> Result<Vec<TrialRow>, MlError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT training_job, seq, definition, tuned, status, objective, failure_reason, created, start_time, end_time
                 FROM tuning_trials WHERE tuning_job = ?1 ORDER BY seq",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([name], |r| {
                let tuned: String = r.get(3)?;
                Ok(TrialRow {
                    training_job: r.get(0)?,
                    seq: r.get::<_, i64>(1)? as u64,
                    definition: r.get(2)?,
                    tuned: serde_json::from_str(&tuned).unwrap_or_default(),
                    status: Status::parse(&r.get::<_, String>(4)?),
                    objective: r.get(5)?,
                    failure_reason: r.get(6)?,
                    created: r.get(7)?,
                    start_time: r.get(8)?,
                    end_time: r.get(9)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }
}

pub fn no_tuning_job(name: &str) -> MlError {
    MlError::Input(format!(
        "there is no tuning job `{name}` (`%tune list` lists them)"
    ))
}
