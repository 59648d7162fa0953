//! rustmaker-monitor: data-quality monitoring in SageMaker Model Monitor's formats.
//!
//! - [`format`]: `statistics.json`, `constraints.json`, `constraint_violations.json`.
//! - [`sketch`]: the KLL quantile sketch and HyperLogLog behind the statistics.
//! - [`profile`] and [`source`]: one streaming pass over CSV, JSON Lines, Parquet or a frame.
//! - [`suggest`] and [`check`]: constraints from a baseline, violations of them.
//! - [`magic`]: `%monitor` for the kernel. The `rustmaker monitor` command calls [`baseline`]
//!   and [`check`] directly, so the same runs can be scheduled outside a notebook.

pub mod capture;
pub mod check;
pub mod cli;
pub mod command;
pub mod format;
pub mod magic;
pub mod profile;
pub mod report;
pub mod sketch;
pub mod source;
pub mod suggest;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use format::{Constraints, Statistics, Violation, Violations};
pub use source::{Schema, Source};

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The data or a file is not what it should be; the message names the file, line or column.
    #[error("{0}")]
    Input(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl MonitorError {
    pub fn io(path: &Path, source: std::io::Error) -> MonitorError {
        MonitorError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Bad data reaches the notebook as a data error, a file that cannot be read or written as
/// the work failing.
impl From<MonitorError> for rustmaker_magics::MagicError {
    fn from(e: MonitorError) -> rustmaker_magics::MagicError {
        match e {
            MonitorError::Input(_) => rustmaker_magics::data_error(e),
            MonitorError::Io { .. } => rustmaker_magics::failed(e),
        }
    }
}

/// Writes a file whole or not at all: into a temporary file beside it, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MonitorError> {
    rustmaker_process::write_atomic(path, bytes, None).map_err(|e| MonitorError::io(path, e))
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), MonitorError> {
    let text = serde_json::to_string_pretty(value).expect("the formats serialize");
    write_atomic(path, text.as_bytes())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, MonitorError> {
    let text = std::fs::read_to_string(path).map_err(|e| MonitorError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        MonitorError::Input(format!(
            "{} is not a valid {} (line {}, column {}): {e}; rewrite it with `%monitor baseline` or fix it by hand",
            path.display(),
            path.file_name().map(|f| f.to_string_lossy()).unwrap_or_default(),
            e.line(),
            e.column()
        ))
    })
}

/// What a baseline run produced.
pub struct Baseline {
    pub statistics: Statistics,
    pub constraints: Constraints,
}

/// Profiles `source` and writes `statistics.json` and suggested `constraints.json` to `output`.
pub fn baseline(
    source: &Source,
    schema: Option<&source::Schema>,
    output: &Path,
) -> Result<Baseline, MonitorError> {
    let profile = source.profile(&HashMap::new(), schema)?;
    let statistics = profile.statistics();
    let constraints = suggest::suggest(&statistics);
    write_json(&output.join("statistics.json"), &statistics)?;
    write_json(&output.join("constraints.json"), &constraints)?;
    Ok(Baseline {
        statistics,
        constraints,
    })
}

/// A baseline read back from its directory (constraints may have been edited by hand).
pub fn read_baseline(dir: &Path) -> Result<Baseline, MonitorError> {
    read_baseline_files(&dir.join("statistics.json"), &dir.join("constraints.json"))
}

/// A baseline from its two files, as a monitoring schedule names them
/// (`BaselineConfig.StatisticsResource` and `ConstraintsResource`).
pub fn read_baseline_files(
    statistics: &Path,
    constraints: &Path,
) -> Result<Baseline, MonitorError> {
    Ok(Baseline {
        statistics: read_json(statistics)?,
        constraints: read_json(constraints)?,
    })
}

/// What the hosting engine's monitoring schedules run: one execution over a window of
/// captured traffic (the composition root hands it to `rustmaker serve`).
pub struct ScheduledCheck;

impl rustmaker_magics::services::CaptureMonitor for ScheduledCheck {
    fn check(
        &self,
        window: &rustmaker_magics::services::MonitorWindow,
    ) -> Result<rustmaker_magics::services::MonitorRun, rustmaker_magics::MagicError> {
        let base = read_baseline_files(&window.statistics, &window.constraints)?;
        let run = capture::check_window(
            &window.capture,
            &base,
            &window.output,
            window.first_hour,
            window.last_hour,
        )?;
        Ok(rustmaker_magics::services::MonitorRun {
            status: run.status.as_str().to_owned(),
            records: run.records,
            violations: run.violations,
            failure_reason: run.failure_reason,
        })
    }
}

/// A monitoring execution's outcome, named as SageMaker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionStatus {
    Completed,
    CompletedWithViolations,
    Failed,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Completed => "Completed",
            ExecutionStatus::CompletedWithViolations => "CompletedWithViolations",
            ExecutionStatus::Failed => "Failed",
        }
    }
}

pub struct CheckOutcome {
    pub statistics: Statistics,
    pub violations: Vec<Violation>,
    /// Per compared feature: (name, distance, threshold).
    pub drift: Vec<(String, f64, f64)>,
    pub status: ExecutionStatus,
}

/// Per string feature with a domain: the domain (values are counted against it while profiling).
pub fn domains(constraints: &Constraints) -> HashMap<String, Vec<String>> {
    constraints
        .features
        .iter()
        .filter_map(|f| {
            f.string_constraints
                .as_ref()
                .map(|s| (f.name.clone(), s.domains.clone()))
        })
        .collect()
}

/// Checks `source` against the baseline in `baseline_dir`; writes the current
/// `statistics.json` and `constraint_violations.json` to `output` (and the baseline's
/// statistics as `baseline_statistics.json`, so the report can be drawn from `output` alone).
pub fn check(
    source: &Source,
    schema: Option<&source::Schema>,
    baseline_dir: &Path,
    output: &Path,
) -> Result<CheckOutcome, MonitorError> {
    let base = read_baseline(baseline_dir)?;
    let profile = source.profile(&domains(&base.constraints), schema)?;
    check_profile(&base, profile, output)
}

/// The check of an already built profile (one hour of captured traffic, say).
pub fn check_profile(
    base: &Baseline,
    profile: profile::Profile,
    output: &Path,
) -> Result<CheckOutcome, MonitorError> {
    let violations = check::violations(&base.statistics, &base.constraints, &profile);
    let drift = profile
        .columns
        .iter()
        .filter_map(|c| {
            check::drift_distance(&base.statistics, &base.constraints, &c.name, c)
                .map(|(d, t, _)| (c.name.clone(), d, t))
        })
        .collect();
    let statistics = profile.statistics();
    write_json(&output.join("statistics.json"), &statistics)?;
    write_json(&output.join("baseline_statistics.json"), &base.statistics)?;
    write_json(
        &output.join("constraint_violations.json"),
        &Violations {
            violations: violations.clone(),
        },
    )?;
    let status = if violations.is_empty() {
        ExecutionStatus::Completed
    } else {
        ExecutionStatus::CompletedWithViolations
    };
    Ok(CheckOutcome {
        statistics,
        violations,
        drift,
        status,
    })
}
