//! The experiment store: experiments hold trials, trials hold trial components (one per
//! training job), and a component has parameters, input and output artifacts, and metric
//! series summarised as SageMaker Experiments reports them (Min, Max, Avg, StdDev, Last,
//! Count). One SQLite file in WAL mode: several kernels write at once and each write is one
//! transaction, so nothing is lost.

mod schema;
mod tuning;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::MlError;

pub use schema::MIGRATIONS;
pub use tuning::{no_tuning_job, NewTuningJob, TrialRow, TuningRow};

pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn err(e: impl std::fmt::Display) -> MlError {
    MlError::Store(format!("experiment store: {e}"))
}

/// Where rustmaker keeps its data: `$RUSTMAKER_DATA_DIR`, else `$XDG_DATA_HOME/rustmaker`,
/// else `~/.local/share/rustmaker`.
pub fn data_dir() -> PathBuf {
    rustmaker_process::data_dir()
}

/// Makes way for a new row named `name` in `table`: a name in use is refused unless `replace`
/// is set and that row has ended, as SageMaker refuses a job name twice.
fn claim_name(
    tx: &rusqlite::Transaction,
    table: &str,
    name: &str,
    replace: bool,
    what: &str,
    hint: &str,
) -> Result<(), MlError> {
    let existing: Option<String> = tx
        .query_row(
            &format!("SELECT status FROM {table} WHERE name = ?1"),
            [name],
            |r| r.get(0),
        )
        .optional()
        .map_err(err)?;
    let Some(status) = existing else {
        return Ok(());
    };
    let ended = Status::parse(&status).is_final();
    if !replace || !ended {
        return Err(MlError::Input(format!(
            "a {what} named `{name}` exists ({status}); pick another name{}",
            if ended {
                format!(", or {hint}")
            } else {
                String::new()
            }
        )));
    }
    tx.execute(&format!("DELETE FROM {table} WHERE name = ?1"), [name])
        .map_err(err)?;
    Ok(())
}

/// `$RUSTMAKER_EXPERIMENTS_DB`, else `experiments.db` in the data directory.
pub fn default_path() -> PathBuf {
    std::env::var_os("RUSTMAKER_EXPERIMENTS_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir().join("experiments.db"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
    Failed,
    Stopping,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "InProgress",
            Status::Completed => "Completed",
            Status::Failed => "Failed",
            Status::Stopping => "Stopping",
            Status::Stopped => "Stopped",
        }
    }

    fn parse(text: &str) -> Status {
        match text {
            "Completed" => Status::Completed,
            "Failed" => Status::Failed,
            "Stopping" => Status::Stopping,
            "Stopped" => Status::Stopped,
            _ => Status::InProgress,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Stopped)
    }
}

/// A component about to start.
pub struct NewComponent<'a> {
    pub experiment: &'a str,
    pub trial: &'a str,
    pub name: &'a str,
    pub source: &'a str,
    pub job_dir: Option<&'a Path>,
    pub parameters: &'a [(String, String)],
    pub inputs: &'a [(String, String)],
    /// Replace a finished component of the same name instead of refusing.
    pub replace: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricSummary {
    pub name: String,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub std_dev: f64,
    pub last: f64,
    pub count: u64,
}

#[derive(Debug, Clone)]
pub struct Component {
    pub name: String,
    pub trial: String,
    pub experiment: String,
    pub source: String,
    pub status: Status,
    pub failure_reason: Option<String>,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub job_dir: Option<PathBuf>,
    pub parameters: Vec<(String, String)>,
    pub inputs: Vec<(String, String)>,
    pub outputs: Vec<(String, String)>,
    pub metrics: Vec<MetricSummary>,
}

#[derive(Debug, Clone)]
pub struct ExperimentRow {
    pub name: String,
    pub created: f64,
    pub trials: u64,
    pub components: u64,
}

pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, MlError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| err(format!("cannot make {}: {e}", parent.display())))?;
        }
        let conn = Connection::open(path)
            .map_err(|e| err(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| {
                err(format!(
                    "{} is not an experiment store ({e})",
                    path.display()
                ))
            })?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        let store = Store {
            conn: Mutex::new(conn),
            path: path.to_owned(),
        };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the migrations this file has not had, in one transaction.
    fn migrate(&self) -> Result<(), MlError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let version: usize = tx
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .map_err(err)? as usize;
        if version > MIGRATIONS.len() {
            return Err(err(format!(
                "{} was written by a newer rustmaker (schema {version}, this one knows {}); upgrade rustmaker",
                self.path.display(),
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql)
                .map_err(|e| err(format!("migration {}: {e}", i + 1)))?;
        }
        tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)
            .map_err(err)?;
        tx.commit().map_err(err)
    }

    pub fn schema_version(&self) -> Result<usize, MlError> {
        self.conn()
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .map(|v| v as usize)
            .map_err(err)
    }

    /// Records a component as InProgress (creating its experiment and trial as needed).
    pub fn start(&self, c: &NewComponent) -> Result<(), MlError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        claim_name(
            &tx,
            "trial_components",
            c.name,
            c.replace,
            "training job",
            "pass --replace to train it again",
        )?;
        let t = now();
        tx.execute(
            "INSERT OR IGNORE INTO experiments (name, created) VALUES (?1, ?2)",
            params![c.experiment, t],
        )
        .map_err(err)?;
        let trial_experiment: Option<String> = tx
            .query_row(
                "SELECT experiment FROM trials WHERE name = ?1",
                [c.trial],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        match trial_experiment {
            Some(e) if e != c.experiment => {
                return Err(MlError::Input(format!(
                    "the trial `{}` belongs to the experiment `{e}`, not `{}`",
                    c.trial, c.experiment
                )))
            }
            Some(_) => {}
            None => {
                tx.execute(
                    "INSERT INTO trials (name, experiment, created) VALUES (?1, ?2, ?3)",
                    params![c.trial, c.experiment, t],
                )
                .map_err(err)?;
            }
        }
        tx.execute(
            "INSERT INTO trial_components (name, trial, status, start_time, created, source, job_dir)
             VALUES (?1, ?2, 'InProgress', ?3, ?3, ?4, ?5)",
            params![
                c.name,
                c.trial,
                t,
                c.source,
                c.job_dir.map(|p| p.display().to_string())
            ],
        )
        .map_err(err)?;
        for (k, v) in c.parameters {
            tx.execute(
                "INSERT INTO parameters (component, name, number, text) VALUES (?1, ?2, ?3, ?4)",
                params![
                    c.name,
                    k,
                    v.parse::<f64>().ok().filter(|x| x.is_finite()),
                    v
                ],
            )
            .map_err(err)?;
        }
        for (k, uri) in c.inputs {
            tx.execute(
                "INSERT INTO artifacts (component, direction, name, uri) VALUES (?1, 'input', ?2, ?3)",
                params![c.name, k, uri],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    pub fn log_metrics(
        &self,
        component: &str,
        step: u64,
        values: &[(String, f64)],
    ) -> Result<(), MlError> {
        self.log_steps(component, [(step, values)])
    }

    /// The metrics of several steps in one transaction: a learner that reports faster than
    /// the disk commits waits for one commit, not one a step.
    pub fn log_steps<'v>(
        &self,
        component: &str,
        steps: impl IntoIterator<Item = (u64, &'v [(String, f64)])>,
    ) -> Result<(), MlError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let t = now();
        for (step, values) in steps {
            for (name, value) in values.iter().filter(|(_, v)| v.is_finite()) {
                tx.execute(
                    "INSERT INTO metrics (component, name, step, value, timestamp) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![component, name, step as i64, value, t],
                )
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    pub fn add_output(
        &self,
        component: &str,
        name: &str,
        uri: &str,
        media_type: &str,
    ) -> Result<(), MlError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO artifacts (component, direction, name, uri, media_type)
                 VALUES (?1, 'output', ?2, ?3, ?4)",
                params![component, name, uri, media_type],
            )
            .map(|_| ())
            .map_err(err)
    }

    pub fn finish(
        &self,
        component: &str,
        status: Status,
        reason: Option<&str>,
    ) -> Result<(), MlError> {
        self.conn()
            .execute(
                "UPDATE trial_components SET status = ?2, failure_reason = ?3, end_time = ?4 WHERE name = ?1",
                params![component, status.as_str(), reason, now()],
            )
            .map(|_| ())
            .map_err(err)
    }

    /// Asks the process running a component to stop it (it checks while it trains).
    pub fn request_stop(&self, component: &str) -> Result<Status, MlError> {
        let c = self.component(component)?.ok_or_else(|| {
            MlError::Input(format!(
                "there is no training job `{component}` (`%train list` lists them)"
            ))
        })?;
        if c.status.is_final() {
            return Ok(c.status);
        }
        self.conn()
            .execute(
                "UPDATE trial_components SET stop_requested = 1, status = 'Stopping' WHERE name = ?1",
                [component],
            )
            .map_err(err)?;
        Ok(Status::Stopping)
    }

    pub fn stop_requested(&self, component: &str) -> bool {
        self.conn()
            .query_row(
                "SELECT stop_requested FROM trial_components WHERE name = ?1",
                [component],
                |r| r.get::<_, i64>(0),
            )
            .map(|v| v != 0)
            .unwrap_or(false)
    }

    pub fn experiments(&self) -> Result<Vec<ExperimentRow>, MlError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT e.name, e.created,
                        (SELECT count(*) FROM trials t WHERE t.experiment = e.name),
                        (SELECT count(*) FROM trial_components c JOIN trials t ON c.trial = t.name
                          WHERE t.experiment = e.name)
                 FROM experiments e ORDER BY e.created, e.name",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ExperimentRow {
                    name: r.get(0)?,
                    created: r.get(1)?,
                    trials: r.get::<_, i64>(2)? as u64,
                    components: r.get::<_, i64>(3)? as u64,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    pub fn experiment_exists(&self, name: &str) -> Result<bool, MlError> {
        self.conn()
            .query_row("SELECT 1 FROM experiments WHERE name = ?1", [name], |_| {
                Ok(())
            })
            .optional()
            .map(|r| r.is_some())
            .map_err(err)
    }

    /// Names of the components of an experiment (all experiments when `None`), oldest first.
    pub fn component_names(&self, experiment: Option<&str>) -> Result<Vec<String>, MlError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT c.name FROM trial_components c JOIN trials t ON c.trial = t.name
                 WHERE ?1 IS NULL OR t.experiment = ?1 ORDER BY c.created, c.name",
            )
            .map_err(err)?;
        let rows = stmt.query_map([experiment], |r| r.get(0)).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    pub fn component(&self, name: &str) -> Result<Option<Component>, MlError> {
        let conn = self.conn();
        let head = conn
            .query_row(
                "SELECT c.name, c.trial, t.experiment, c.source, c.status, c.failure_reason,
                        c.start_time, c.end_time, c.job_dir
                 FROM trial_components c JOIN trials t ON c.trial = t.name WHERE c.name = ?1",
                [name],
                |r| {
                    Ok(Component {
                        name: r.get(0)?,
                        trial: r.get(1)?,
                        experiment: r.get(2)?,
                        source: r.get(3)?,
                        status: Status::parse(&r.get::<_, String>(4)?),
                        failure_reason: r.get(5)?,
                        start_time: r.get(6)?,
                        end_time: r.get(7)?,
                        job_dir: r.get::<_, Option<String>>(8)?.map(PathBuf::from),
                        parameters: Vec::new(),
                        inputs: Vec::new(),
                        outputs: Vec::new(),
                        metrics: Vec::new(),
                    })
                },
            )
            .optional()
            .map_err(err)?;
        let Some(mut c) = head else { return Ok(None) };
        let pairs = |sql: &str| -> Result<Vec<(String, String)>, MlError> {
            let mut stmt = conn.prepare(sql).map_err(err)?;
            let rows = stmt
                .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)
        };
        c.parameters =
            pairs("SELECT name, text FROM parameters WHERE component = ?1 ORDER BY name")?;
        c.inputs = pairs(
            "SELECT name, uri FROM artifacts WHERE component = ?1 AND direction = 'input' ORDER BY name",
        )?;
        c.outputs = pairs(
            "SELECT name, uri FROM artifacts WHERE component = ?1 AND direction = 'output' ORDER BY name",
        )?;
        let mut stmt = conn
            .prepare(
                // Each series' mean once (a CTE), not once per point: long series stay linear.
                "WITH means AS (SELECT name, avg(value) AS mean FROM metrics
                                WHERE component = ?1 GROUP BY name)
                 SELECT m.name, min(m.value), max(m.value), means.mean, count(*),
                        sum((m.value - means.mean) * (m.value - means.mean)),
                        (SELECT m3.value FROM metrics m3 WHERE m3.component = ?1
                          AND m3.name = m.name ORDER BY m3.step DESC, m3.rowid DESC LIMIT 1)
                 FROM metrics m JOIN means ON means.name = m.name
                 WHERE m.component = ?1 GROUP BY m.name ORDER BY m.name",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([name], |r| {
                let count = r.get::<_, i64>(4)? as u64;
                let squares: f64 = r.get(5)?;
                Ok(MetricSummary {
                    name: r.get(0)?,
                    min: r.get(1)?,
                    max: r.get(2)?,
                    avg: r.get(3)?,
                    // The sample standard deviation, as SageMaker Experiments reports it.
                    std_dev: if count > 1 {
                        (squares / (count - 1) as f64).sqrt()
                    } else {
                        0.0
                    },
                    last: r.get(6)?,
                    count,
                })
            })
            .map_err(err)?;
        c.metrics = rows.collect::<Result<_, _>>().map_err(err)?;
        Ok(Some(c))
    }

    pub fn series(&self, component: &str, metric: &str) -> Result<Vec<(u64, f64)>, MlError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT step, value FROM metrics WHERE component = ?1 AND name = ?2 ORDER BY step, rowid",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([component, metric], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Deletes an experiment with its trials and components; returns how many components went.
    pub fn delete_experiment(&self, name: &str) -> Result<usize, MlError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let components: i64 = tx
            .query_row(
                "SELECT count(*) FROM trial_components c JOIN trials t ON c.trial = t.name WHERE t.experiment = ?1",
                [name],
                |r| r.get(0),
            )
            .map_err(err)?;
        tx.execute("DELETE FROM experiments WHERE name = ?1", [name])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(components as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component<'a>(name: &'a str, params: &'a [(String, String)]) -> NewComponent<'a> {
        NewComponent {
            experiment: "exp",
            trial: name,
            name,
            source: "training-job",
            job_dir: None,
            parameters: params,
            inputs: &[],
            replace: false,
        }
    }

    #[test]
    fn summaries_equal_a_direct_computation() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("e.db")).unwrap();
        store
            .start(&component("a", &[("eta".into(), "0.1".into())]))
            .unwrap();
        let values = [0.5, 0.25, 0.75, 0.125, 0.6];
        for (i, v) in values.iter().enumerate() {
            store
                .log_metrics("a", i as u64, &[("validation:rmse".into(), *v)])
                .unwrap();
        }
        store.finish("a", Status::Completed, None).unwrap();
        let c = store.component("a").unwrap().unwrap();
        let m = &c.metrics[0];
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert_eq!((m.min, m.max, m.last, m.count), (0.125, 0.75, 0.6, 5));
        assert!((m.avg - mean).abs() < 1e-12 && (m.std_dev - sd).abs() < 1e-12);
        assert_eq!(c.status, Status::Completed);
        assert_eq!(c.parameters, vec![("eta".to_owned(), "0.1".to_owned())]);
        // A finished name is refused, unless replaced.
        let err = store.start(&component("a", &[])).unwrap_err().to_string();
        assert!(err.contains("--replace"), "{err}");
        let mut again = component("a", &[]);
        again.replace = true;
        store.start(&again).unwrap();
        assert!(store.component("a").unwrap().unwrap().metrics.is_empty());
    }

    #[test]
    fn steps_logged_together_read_back_as_steps_logged_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("e.db")).unwrap();
        store.start(&component("a", &[])).unwrap();
        let steps: Vec<(u64, Vec<(String, f64)>)> = (1..=3)
            .map(|s| {
                let loss = if s == 2 { f64::NAN } else { 1.0 / s as f64 };
                (s, vec![("loss".into(), loss), ("r2".into(), s as f64)])
            })
            .collect();
        store
            .log_steps("a", steps.iter().map(|(s, v)| (*s, v.as_slice())))
            .unwrap();
        // A value that is not finite is left out, as one step at a time leaves it out.
        assert_eq!(
            store.series("a", "loss").unwrap(),
            [(1, 1.0), (3, 1.0 / 3.0)]
        );
        assert_eq!(
            store.series("a", "r2").unwrap(),
            [(1, 1.0), (2, 2.0), (3, 3.0)]
        );
    }

    #[test]
    fn deleting_an_experiment_removes_its_components() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("e.db")).unwrap();
        store.start(&component("a", &[])).unwrap();
        store.log_metrics("a", 0, &[("m".into(), 1.0)]).unwrap();
        assert_eq!(store.delete_experiment("exp").unwrap(), 1);
        assert!(store.component("a").unwrap().is_none());
        assert!(store.experiments().unwrap().is_empty());
    }
}
