//! The store's tables, as numbered migrations. `PRAGMA user_version` records how many have
//! run, so a store written by an older rustmaker is brought up to date when it is opened, and
//! one written by a newer rustmaker is refused rather than damaged.

/// Migration `i + 1` is `MIGRATIONS[i]`. Append; never edit a released one.
pub const MIGRATIONS: &[&str] = &[
    // 1: experiments, trials, trial components with parameters, artifacts and metric series.
    "CREATE TABLE experiments (
         name TEXT PRIMARY KEY,
         description TEXT,
         created REAL NOT NULL
     );
     CREATE TABLE trials (
         name TEXT PRIMARY KEY,
         experiment TEXT NOT NULL REFERENCES experiments(name) ON DELETE CASCADE,
         created REAL NOT NULL
     );
     CREATE TABLE trial_components (
         name TEXT PRIMARY KEY,
         trial TEXT NOT NULL REFERENCES trials(name) ON DELETE CASCADE,
         status TEXT NOT NULL,
         failure_reason TEXT,
         start_time REAL,
         end_time REAL,
         created REAL NOT NULL
     );
     CREATE TABLE parameters (
         component TEXT NOT NULL REFERENCES trial_components(name) ON DELETE CASCADE,
         name TEXT NOT NULL,
         number REAL,
         text TEXT,
         PRIMARY KEY (component, name)
     );
     CREATE TABLE artifacts (
         component TEXT NOT NULL REFERENCES trial_components(name) ON DELETE CASCADE,
         direction TEXT NOT NULL CHECK (direction IN ('input', 'output')),
         name TEXT NOT NULL,
         uri TEXT NOT NULL,
         PRIMARY KEY (component, direction, name)
     );
     CREATE TABLE metrics (
         component TEXT NOT NULL REFERENCES trial_components(name) ON DELETE CASCADE,
         name TEXT NOT NULL,
         step INTEGER NOT NULL,
         value REAL NOT NULL,
         timestamp REAL NOT NULL
     );
     CREATE INDEX metrics_by_component ON metrics (component, name, step);",
    // 2: what made a component (training job, later tuning), where its job directory is (logs),
    // a stop request another kernel can make, and artifacts' media types.
    "ALTER TABLE trial_components ADD COLUMN source TEXT NOT NULL DEFAULT 'training-job';
     ALTER TABLE trial_components ADD COLUMN job_dir TEXT;
     ALTER TABLE trial_components ADD COLUMN stop_requested INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE artifacts ADD COLUMN media_type TEXT;",
    // 3: tuning jobs and their trials (each trial is also a training job's component).
    "CREATE TABLE tuning_jobs (
         name TEXT PRIMARY KEY,
         experiment TEXT NOT NULL,
         strategy TEXT NOT NULL,
         objective_type TEXT NOT NULL,
         objective_metric TEXT NOT NULL,
         request TEXT NOT NULL,
         status TEXT NOT NULL,
         failure_reason TEXT,
         completion_reason TEXT,
         best_training_job TEXT,
         created REAL NOT NULL,
         ended REAL,
         stop_requested INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE tuning_trials (
         tuning_job TEXT NOT NULL REFERENCES tuning_jobs(name) ON DELETE CASCADE,
         training_job TEXT NOT NULL,
         seq INTEGER NOT NULL,
         definition TEXT NOT NULL,
         tuned TEXT NOT NULL,
         status TEXT NOT NULL,
         objective REAL,
         failure_reason TEXT,
         created REAL NOT NULL,
         start_time REAL,
         end_time REAL,
         PRIMARY KEY (tuning_job, training_job)
     );",
];
