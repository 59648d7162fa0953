//! Monitoring schedules as SageMaker's data-quality schedules run: at each scheduled hour
//! (`ScheduleExpression` as the SDK's `CronExpressionGenerator` writes it, or `NOW` for one
//! run at once) the captured traffic of the analysis window is checked against the baseline by
//! the monitor, and the reports land in `{S3Output.S3Uri}/{endpoint}/{schedule}/yyyy/mm/dd/hh/`.
//! Each run is a monitoring execution that `ListMonitoringExecutions` shows with its status.
//!
//! The clock is the caller's: the service's timer calls [`Hosting::run_due_schedules`] with
//! the time now, and tests call it with the hour they want.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use rustmaker_magics::services::MonitorWindow;
use serde_json::{json, Value};

use crate::hosting::{arn, name_of, now, Hosting, HostingError, Kind, ACCOUNT, REGION};

const HOUR: i64 = 3600;

/// A schedule's timing that SageMaker's model monitoring would refuse, with what it accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "ScheduleExpression `{0}` is not one SageMaker's monitoring accepts: use \
         cron(0 * ? * * *) (hourly), cron(0 H ? * * *) (daily at hour H), \
         cron(0 H/N ? * * *) (every N hours from H) or NOW"
    )]
    Expression(String),
    #[error("`{0}` is not an offset like -PT1H (hours) or -P1D (days) before the scheduled time")]
    Offset(String),
}

/// When a schedule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// Once, as soon as it is created (`NOW`).
    Now,
    /// At minute 0 of the hours `start, start + every, …` of each day (`cron(0 * ? * * *)` is
    /// every hour, `cron(0 5 ? * * *)` daily at 05:00, `cron(0 1/6 ? * * *)` every 6 hours
    /// from 01:00).
    Hours { every: u32, start: u32 },
}

impl Cadence {
    /// A `ScheduleExpression` as SageMaker accepts it for model monitoring.
    pub fn parse(expression: &str) -> Result<Cadence, ScheduleError> {
        let e = expression.trim();
        if e == "NOW" {
            return Ok(Cadence::Now);
        }
        let refuse = || ScheduleError::Expression(expression.to_owned());
        let inner = e
            .strip_prefix("cron(")
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(refuse)?;
        let fields: Vec<&str> = inner.split_whitespace().collect();
        if fields.len() != 6 || fields[0] != "0" || fields[2..] != ["?", "*", "*", "*"] {
            return Err(refuse());
        }
        let hour = |t: &str| t.parse::<u32>().ok().filter(|h| *h < 24);
        match fields[1].split_once('/') {
            _ if fields[1] == "*" => Ok(Cadence::Hours { every: 1, start: 0 }),
            None => Ok(Cadence::Hours {
                every: 24,
                start: hour(fields[1]).ok_or_else(refuse)?,
            }),
            Some((start, every)) => {
                let start = if start == "*" { Some(0) } else { hour(start) };
                let every = every.parse::<u32>().ok().filter(|n| (1..=24).contains(n));
                match (start, every) {
                    (Some(start), Some(every)) => Ok(Cadence::Hours { every, start }),
                    _ => Err(refuse()),
                }
            }
        }
    }

    /// The hours between two runs (the default analysis window).
    fn interval_hours(self) -> i64 {
        match self {
            Cadence::Now => 1,
            Cadence::Hours { every, .. } => every.into(),
        }
    }

    /// The latest scheduled time at or before `t` (seconds since 1970), if any in two days.
    pub fn latest_at_or_before(self, t: i64) -> Option<i64> {
        let Cadence::Hours { every, start } = self else {
            return None;
        };
        let hour = t.div_euclid(HOUR);
        (0..48).map(|back| hour - back).find_map(|h| {
            let of_day = h.rem_euclid(24) as u32;
            (of_day >= start && (of_day - start).is_multiple_of(every)).then_some(h * HOUR)
        })
    }
}

/// `-PT1H`, `-PT0H`, `-P1D` …: an offset from the scheduled time, in seconds (SageMaker's
/// `DataAnalysisStartTime` and `DataAnalysisEndTime`).
pub fn parse_offset(text: &str) -> Result<i64, ScheduleError> {
    let refuse = || ScheduleError::Offset(text.to_owned());
    let body = text.trim().strip_prefix("-P").ok_or_else(refuse)?;
    let (days, rest) = match body.split_once('T') {
        Some((d, r)) => (d, Some(r)),
        None => (body, None),
    };
    let mut seconds = 0i64;
    if !days.is_empty() {
        seconds += days
            .strip_suffix('D')
            .and_then(|n| n.parse::<i64>().ok())
            .ok_or_else(refuse)?
            * 24
            * HOUR;
    }
    if let Some(rest) = rest {
        seconds += rest
            .strip_suffix('H')
            .and_then(|n| n.parse::<i64>().ok())
            .ok_or_else(refuse)?
            * HOUR;
    }
    Ok(-seconds)
}

fn text<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    v.pointer(path).and_then(Value::as_str)
}

fn local(uri: &str, what: &str) -> Result<PathBuf, HostingError> {
    if uri.starts_with("s3://") {
        return Err(HostingError::Validation(format!(
            "{what} {uri}: give a local path here (s3:// is not served yet)"
        )));
    }
    Ok(PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri)))
}

/// What a schedule's definition names, checked once at creation.
struct Definition {
    endpoint: String,
    statistics: PathBuf,
    constraints: PathBuf,
    output: PathBuf,
    cadence: Cadence,
    start_offset: i64,
    end_offset: i64,
}

fn definition(config: &Value) -> Result<Definition, HostingError> {
    let bad = HostingError::Validation;
    if let Some(t) = config
        .get("MonitoringType")
        .and_then(Value::as_str)
        .filter(|t| *t != "DataQuality")
    {
        return Err(bad(format!(
            "MonitoringType {t} is not served: this service runs DataQuality schedules"
        )));
    }
    let job = config.get("MonitoringJobDefinition").ok_or_else(|| {
        bad("MonitoringScheduleConfig.MonitoringJobDefinition is required".into())
    })?;
    let endpoint = text(job, "/MonitoringInputs/0/EndpointInput/EndpointName")
        .ok_or_else(|| {
            bad("MonitoringJobDefinition.MonitoringInputs[0].EndpointInput.EndpointName is required".into())
        })?
        .to_owned();
    let baseline = |field: &str| -> Result<PathBuf, HostingError> {
        let uri = text(job, &format!("/BaselineConfig/{field}/S3Uri")).ok_or_else(|| {
            bad(format!(
                "MonitoringJobDefinition.BaselineConfig.{field}.S3Uri is required: the baseline's file"
            ))
        })?;
        let path = local(uri, field)?;
        if !path.is_file() {
            return Err(bad(format!(
                "BaselineConfig.{field}: there is no file at {uri}; make the baseline with %monitor baseline"
            )));
        }
        Ok(path)
    };
    let output = text(job, "/MonitoringOutputConfig/MonitoringOutputs/0/S3Output/S3Uri")
        .ok_or_else(|| {
            bad("MonitoringOutputConfig.MonitoringOutputs[0].S3Output.S3Uri is required: where the reports go".into())
        })?;
    let expression = text(config, "/ScheduleConfig/ScheduleExpression")
        .ok_or_else(|| bad("ScheduleConfig.ScheduleExpression is required".into()))?;
    let cadence = Cadence::parse(expression).map_err(|e| bad(e.to_string()))?;
    let offset = |field: &str, default: i64| -> Result<i64, HostingError> {
        text(config, &format!("/ScheduleConfig/{field}"))
            .map(|t| parse_offset(t).map_err(|e| bad(format!("{field}: {e}"))))
            .unwrap_or(Ok(default))
    };
    let start_offset = offset("DataAnalysisStartTime", -cadence.interval_hours() * HOUR)?;
    let end_offset = offset("DataAnalysisEndTime", 0)?;
    if start_offset >= end_offset {
        return Err(bad(
            "DataAnalysisStartTime must come before DataAnalysisEndTime".into(),
        ));
    }
    Ok(Definition {
        endpoint,
        statistics: baseline("StatisticsResource")?,
        constraints: baseline("ConstraintsResource")?,
        output: local(output, "S3Output.S3Uri")?,
        cadence,
        start_offset,
        end_offset,
    })
}

fn hour_folder(t: i64) -> String {
    Utc.timestamp_opt(t, 0)
        .single()
        .map(|d| d.format("%Y/%m/%d/%H").to_string())
        .unwrap_or_default()
}

impl Hosting {
    /// `CreateMonitoringSchedule` (the data-quality kind, its job definition inline). A `NOW`
    /// schedule runs at once; the others at their next scheduled hour.
    pub fn create_monitoring_schedule(
        self: &Arc<Self>,
        input: &Value,
    ) -> Result<Value, HostingError> {
        let name = name_of(input, "MonitoringScheduleName")?;
        if self.monitor.is_none() {
            return Err(HostingError::Validation(
                "this service has no model monitor to run schedules with".into(),
            ));
        }
        let config = input.get("MonitoringScheduleConfig").ok_or_else(|| {
            HostingError::Validation("MonitoringScheduleConfig is required".into())
        })?;
        // A named job definition is written inline once, as it was at creation.
        let resolved = self.resolved_schedule_config(config)?;
        let def = definition(&resolved)?;
        let endpoint = self.find(Kind::Endpoint, &def.endpoint)?;
        self.capture_of(&endpoint)?;
        let t = now();
        let mut body = json!({
            "MonitoringScheduleArn": arn(Kind::MonitoringSchedule, &name),
            "MonitoringScheduleName": name,
            "MonitoringScheduleStatus": "Scheduled",
            "MonitoringType": config.get("MonitoringType").cloned().unwrap_or(json!("DataQuality")),
            "CreationTime": t,
            "LastModifiedTime": t,
            "MonitoringScheduleConfig": config,
            "EndpointName": def.endpoint,
            "ResolvedConfig": resolved,
        });
        if let Some(tags) = input.get("Tags") {
            body["Tags"] = tags.clone();
        }
        self.insert_new(Kind::MonitoringSchedule, &name, &body)?;
        if def.cadence == Cadence::Now {
            self.start_execution(&name, Utc::now().timestamp())?;
        }
        Ok(json!({"MonitoringScheduleArn": arn(Kind::MonitoringSchedule, &name)}))
    }

    /// Where an endpoint's traffic is captured (`{DestinationS3Uri}/{endpoint}`): a local
    /// folder, or an `s3://` prefix.
    fn capture_of(&self, endpoint: &Value) -> Result<String, HostingError> {
        let name = endpoint["EndpointName"].as_str().unwrap_or_default();
        let config = self.find(
            Kind::EndpointConfig,
            endpoint["EndpointConfigName"].as_str().unwrap_or_default(),
        )?;
        let capture = config.get("DataCaptureConfig").filter(|c| {
            c.get("EnableCapture")
                .and_then(Value::as_bool)
                .unwrap_or(true)
        });
        let destination = capture
            .and_then(|c| c.get("DestinationS3Uri"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                HostingError::Validation(format!(
                    "endpoint {name} captures no data: deploy it with a DataCaptureConfig first"
                ))
            })?;
        if destination.starts_with("s3://") {
            return Ok(format!("{}/{name}/", destination.trim_end_matches('/')));
        }
        Ok(local(destination, "DataCaptureConfig.DestinationS3Uri")?
            .join(name)
            .display()
            .to_string())
    }

    /// Runs the executions whose scheduled hour has come (for the service's timer; `now` is
    /// the caller's clock). Returns the schedules that started one.
    pub fn run_due_schedules(self: &Arc<Self>, now: DateTime<Utc>) -> Vec<String> {
        let mut started = Vec::new();
        let Ok(schedules) = self.all(Kind::MonitoringSchedule) else {
            return started;
        };
        for s in schedules {
            if s["MonitoringScheduleStatus"] != "Scheduled" {
                continue;
            }
            // Only the timing is read each tick; the definition is checked when a run starts.
            let expression = text(&s["ResolvedConfig"], "/ScheduleConfig/ScheduleExpression");
            let Some(cadence) = expression.and_then(|e| Cadence::parse(e).ok()) else {
                continue;
            };
            let Some(due) = cadence.latest_at_or_before(now.timestamp()) else {
                continue;
            };
            let last = s
                .get("LastScheduledTime")
                .and_then(Value::as_i64)
                .unwrap_or_else(|| s["CreationTime"].as_f64().unwrap_or_default() as i64);
            if due <= last {
                continue;
            }
            let name = s["MonitoringScheduleName"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if self.start_execution(&name, due).is_ok() {
                started.push(name);
            }
        }
        started
    }

    /// Starts the execution scheduled for `scheduled` (seconds since 1970) on a thread.
    fn start_execution(
        self: &Arc<Self>,
        schedule: &str,
        scheduled: i64,
    ) -> Result<(), HostingError> {
        let mut body = self.find(Kind::MonitoringSchedule, schedule)?;
        let def = definition(&body["ResolvedConfig"])?;
        let endpoint = self.find(Kind::Endpoint, &def.endpoint)?;
        let capture = self.capture_of(&endpoint)?;
        let monitor = self
            .monitor
            .clone()
            .ok_or_else(|| HostingError::Validation("no model monitor".into()))?;
        let t = now();
        let stamp = Utc
            .timestamp_opt(scheduled, 0)
            .single()
            .map(|d| d.format("%Y%m%d%H%M").to_string())
            .unwrap_or_default();
        let job = format!(
            "model-monitoring-{stamp}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let report = report_folder(&def.output, &def.endpoint, schedule, scheduled);
        let execution_name = format!("{schedule}/{scheduled:012}");
        let mut execution = json!({
            "MonitoringScheduleName": schedule,
            "ScheduledTime": scheduled as f64,
            "CreationTime": t,
            "LastModifiedTime": t,
            "MonitoringExecutionStatus": "InProgress",
            "ProcessingJobArn": format!("arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{job}"),
            "EndpointName": def.endpoint,
            "MonitoringType": "DataQuality",
            "ReportUri": report.display().to_string(),
        });
        self.put(Kind::MonitoringExecution, &execution_name, &execution)?;
        body["LastScheduledTime"] = json!(scheduled);
        body["LastMonitoringExecutionSummary"] = execution.clone();
        self.put(Kind::MonitoringSchedule, schedule, &body)?;
        if let Some(live) = self.live_endpoint(&def.endpoint) {
            // Records still in an open file count: the run reads rolled files only.
            let _ = live.flush_captures();
        }
        let window = MonitorWindow {
            capture: PathBuf::from(&capture),
            statistics: def.statistics,
            constraints: def.constraints,
            first_hour: (scheduled + def.start_offset).div_euclid(HOUR),
            last_hour: (scheduled + def.end_offset + HOUR - 1).div_euclid(HOUR) - 1,
            output: report,
        };
        let (me, schedule) = (self.clone(), schedule.to_owned());
        std::thread::spawn(move || {
            let mut window = window;
            let download = me.spool.with_file_name("monitoring-input").join(&job);
            let checked = if capture.starts_with("s3://") {
                me.download_capture(&capture, &download).map(|dir| {
                    window.capture = dir;
                })
            } else {
                Ok(())
            };
            let checked = checked
                .map_err(rustmaker_magics::MagicError::Service)
                .and_then(|()| monitor.check(&window));
            let _ = std::fs::remove_dir_all(&download);
            match checked {
                Ok(run) => {
                    execution["MonitoringExecutionStatus"] = json!(run.status);
                    execution["Records"] = json!(run.records);
                    execution["Violations"] = json!(run.violations);
                    if let Some(why) = run.failure_reason {
                        execution["FailureReason"] = json!(why);
                    }
                }
                Err(e) => {
                    execution["MonitoringExecutionStatus"] = json!("Failed");
                    execution["FailureReason"] = json!(e.to_string());
                }
            }
            execution["LastModifiedTime"] = json!(now());
            let _ = me.put(Kind::MonitoringExecution, &execution_name, &execution);
            if let Ok(Some(mut body)) = me.get(Kind::MonitoringSchedule, &schedule) {
                if body["LastScheduledTime"] == json!(scheduled) {
                    body["LastMonitoringExecutionSummary"] = execution;
                    let _ = me.put(Kind::MonitoringSchedule, &schedule, &body);
                }
            }
        });
        Ok(())
    }

    pub fn describe_monitoring_schedule(&self, input: &Value) -> Result<Value, HostingError> {
        let mut s = self.find(
            Kind::MonitoringSchedule,
            &name_of(input, "MonitoringScheduleName")?,
        )?;
        if let Value::Object(map) = &mut s {
            map.remove("LastScheduledTime");
            map.remove("ResolvedConfig");
        }
        Ok(s)
    }

    pub fn list_monitoring_schedules(&self, input: &Value) -> Result<Value, HostingError> {
        let endpoint = input.get("EndpointName").and_then(Value::as_str);
        let summaries: Vec<Value> = self
            .all(Kind::MonitoringSchedule)?
            .into_iter()
            .filter(|s| endpoint.is_none_or(|e| s["EndpointName"] == e))
            .map(|s| {
                json!({"MonitoringScheduleName": s["MonitoringScheduleName"],
                       "MonitoringScheduleArn": s["MonitoringScheduleArn"],
                       "CreationTime": s["CreationTime"], "LastModifiedTime": s["LastModifiedTime"],
                       "MonitoringScheduleStatus": s["MonitoringScheduleStatus"],
                       "EndpointName": s["EndpointName"], "MonitoringType": s["MonitoringType"]})
            })
            .collect();
        Ok(json!({ "MonitoringScheduleSummaries": summaries }))
    }

    fn set_schedule_status(&self, input: &Value, status: &str) -> Result<Value, HostingError> {
        let name = name_of(input, "MonitoringScheduleName")?;
        let mut s = self.find(Kind::MonitoringSchedule, &name)?;
        s["MonitoringScheduleStatus"] = json!(status);
        s["LastModifiedTime"] = json!(now());
        if status == "Scheduled" {
            // Hours that passed while stopped are not run afterwards.
            s["LastScheduledTime"] = json!(Utc::now().timestamp());
        }
        self.put(Kind::MonitoringSchedule, &name, &s)?;
        Ok(json!({}))
    }

    /// `StopMonitoringSchedule`: no more executions until it is started again.
    pub fn stop_monitoring_schedule(&self, input: &Value) -> Result<Value, HostingError> {
        self.set_schedule_status(input, "Stopped")
    }

    pub fn start_monitoring_schedule(&self, input: &Value) -> Result<Value, HostingError> {
        self.set_schedule_status(input, "Scheduled")
    }

    /// `DeleteMonitoringSchedule`: the schedule and its executions' records (the reports on
    /// disk stay).
    pub fn delete_monitoring_schedule(&self, input: &Value) -> Result<Value, HostingError> {
        let name = name_of(input, "MonitoringScheduleName")?;
        self.remove(Kind::MonitoringSchedule, &name)?;
        for e in self.all(Kind::MonitoringExecution)? {
            if e["MonitoringScheduleName"] == name.as_str() {
                let key = format!(
                    "{name}/{:012}",
                    e["ScheduledTime"].as_f64().unwrap_or_default() as i64
                );
                let _ = self.remove(Kind::MonitoringExecution, &key);
            }
        }
        Ok(json!({}))
    }

    /// `ListMonitoringExecutions`, newest scheduled first unless `SortOrder` is Ascending.
    pub fn list_monitoring_executions(&self, input: &Value) -> Result<Value, HostingError> {
        let filter = |field: &str| input.get(field).and_then(Value::as_str);
        let (schedule, endpoint, status) = (
            filter("MonitoringScheduleName"),
            filter("EndpointName"),
            filter("StatusEquals"),
        );
        let mut rows: Vec<Value> = self
            .all(Kind::MonitoringExecution)?
            .into_iter()
            .filter(|e| schedule.is_none_or(|s| e["MonitoringScheduleName"] == s))
            .filter(|e| endpoint.is_none_or(|s| e["EndpointName"] == s))
            .filter(|e| status.is_none_or(|s| e["MonitoringExecutionStatus"] == s))
            .collect();
        let key = match filter("SortBy") {
            Some("CreationTime") => "CreationTime",
            Some("Status") => "MonitoringExecutionStatus",
            _ => "ScheduledTime",
        };
        rows.sort_by(|a, b| {
            let (a, b) = (&a[key], &b[key]);
            match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                _ => a.as_str().cmp(&b.as_str()),
            }
        });
        if filter("SortOrder") != Some("Ascending") {
            rows.reverse();
        }
        if let Some(n) = input.get("MaxResults").and_then(Value::as_u64) {
            rows.truncate(n as usize);
        }
        Ok(json!({ "MonitoringExecutionSummaries": rows }))
    }

    /// Executions a stopped service left InProgress end Failed, saying why.
    pub(crate) fn recover_executions(&self) -> Result<(), HostingError> {
        for mut e in self.all(Kind::MonitoringExecution)? {
            if e["MonitoringExecutionStatus"] == "InProgress" {
                let key = format!(
                    "{}/{:012}",
                    e["MonitoringScheduleName"].as_str().unwrap_or_default(),
                    e["ScheduledTime"].as_f64().unwrap_or_default() as i64
                );
                e["MonitoringExecutionStatus"] = json!("Failed");
                e["FailureReason"] = json!("the service stopped during the execution");
                self.put(Kind::MonitoringExecution, &key, &e)?;
            }
        }
        Ok(())
    }
}

/// Where the reports of the execution scheduled at `scheduled` go.
pub fn report_folder(output: &Path, endpoint: &str, schedule: &str, scheduled: i64) -> PathBuf {
    output
        .join(endpoint)
        .join(schedule)
        .join(hour_folder(scheduled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_expressions_as_the_sdk_writes_them() {
        assert_eq!(Cadence::parse("NOW"), Ok(Cadence::Now));
        assert_eq!(
            Cadence::parse("cron(0 * ? * * *)"),
            Ok(Cadence::Hours { every: 1, start: 0 })
        );
        assert_eq!(
            Cadence::parse("cron(0 5 ? * * *)"),
            Ok(Cadence::Hours {
                every: 24,
                start: 5
            })
        );
        assert_eq!(
            Cadence::parse("cron(0 1/6 ? * * *)"),
            Ok(Cadence::Hours { every: 6, start: 1 })
        );
        for bad in [
            "cron(30 * ? * * *)",
            "cron(0 25 ? * * *)",
            "rate(1 hour)",
            "cron(0 * * * *)",
            "cron(0 1/0 ? * * *)",
        ] {
            let e = Cadence::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("cron(0 * ? * * *)"), "{e}");
        }
    }

    #[test]
    fn the_latest_scheduled_hour_is_found() {
        let day = 20_000 * 24 * HOUR;
        let hourly = Cadence::Hours { every: 1, start: 0 };
        assert_eq!(
            hourly.latest_at_or_before(day + 5 * HOUR + 59),
            Some(day + 5 * HOUR)
        );
        let daily = Cadence::Hours {
            every: 24,
            start: 5,
        };
        assert_eq!(
            daily.latest_at_or_before(day + 4 * HOUR),
            Some(day - 19 * HOUR)
        );
        assert_eq!(
            daily.latest_at_or_before(day + 5 * HOUR),
            Some(day + 5 * HOUR)
        );
        let six = Cadence::Hours { every: 6, start: 1 };
        assert_eq!(
            six.latest_at_or_before(day + 12 * HOUR),
            Some(day + 7 * HOUR)
        );
        assert_eq!(Cadence::Now.latest_at_or_before(day), None);
    }

    #[test]
    fn analysis_offsets() {
        assert_eq!(parse_offset("-PT1H"), Ok(-HOUR));
        assert_eq!(parse_offset("-PT0H"), Ok(0));
        assert_eq!(parse_offset("-P1DT2H"), Ok(-26 * HOUR));
        assert!(parse_offset("PT1H")
            .unwrap_err()
            .to_string()
            .contains("-PT1H"));
        assert!(parse_offset("-PT1M").is_err());
    }

    #[test]
    fn reports_go_where_sagemaker_puts_them() {
        let t = Utc
            .with_ymd_and_hms(2022, 4, 18, 1, 0, 0)
            .unwrap()
            .timestamp();
        assert_eq!(
            report_folder(Path::new("/r"), "ep", "hourly", t),
            PathBuf::from("/r/ep/hourly/2022/04/18/01")
        );
    }

    /// Serves a `Summer` whatever the artifact; remembers each window it is asked to check.
    struct Fakes {
        windows: std::sync::Mutex<Vec<MonitorWindow>>,
    }

    impl rustmaker_magics::services::ModelLoader for Fakes {
        fn load(
            &self,
            _: &Path,
        ) -> Result<Arc<dyn rustmaker_magics::services::ServedModel>, rustmaker_magics::MagicError>
        {
            Ok(Arc::new(crate::endpoint::tests::Summer {
                features: vec!["a".into(), "b".into()],
                factor: 1.0,
            }))
        }
    }

    impl rustmaker_magics::services::CaptureMonitor for Fakes {
        fn check(
            &self,
            window: &MonitorWindow,
        ) -> Result<rustmaker_magics::services::MonitorRun, rustmaker_magics::MagicError> {
            let records = std::fs::read_dir(window.capture.join("AllTraffic"))
                .map(|_| 1)
                .unwrap_or(0);
            self.windows.lock().unwrap().push(window.clone());
            Ok(rustmaker_magics::services::MonitorRun {
                status: if records > 0 { "Completed" } else { "Failed" }.into(),
                records,
                violations: 0,
                failure_reason: (records == 0).then(|| "no captured data".into()),
            })
        }
    }

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..200 {
            if done() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("{what} did not happen within 5 s");
    }

    fn schedule_input(name: &str, expression: &str, dir: &Path) -> Value {
        json!({"MonitoringScheduleName": name, "MonitoringScheduleConfig": {
            "ScheduleConfig": {"ScheduleExpression": expression},
            "MonitoringJobDefinition": {
                "BaselineConfig": {"ConstraintsResource": {"S3Uri": dir.join("constraints.json")},
                                   "StatisticsResource": {"S3Uri": dir.join("statistics.json")}},
                "MonitoringInputs": [{"EndpointInput": {"EndpointName": "ep", "LocalPath": "/opt/ml/processing/input"}}],
                "MonitoringOutputConfig": {"MonitoringOutputs": [{"S3Output": {"S3Uri": dir.join("reports"), "LocalPath": "/opt/ml/processing/output"}}]},
                "MonitoringResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}},
                "MonitoringAppSpecification": {"ImageUri": "ignored"},
                "RoleArn": "arn:aws:iam::000000000000:role/x"},
            "MonitoringType": "DataQuality"}})
    }

    #[test]
    fn a_schedule_checks_its_window_at_each_scheduled_hour() {
        let dir = tempfile::tempdir().unwrap();
        let fakes = Arc::new(Fakes {
            windows: Default::default(),
        });
        // Without a monitor, schedules are refused.
        let bare = Arc::new(Hosting::open(&dir.path().join("bare.db"), fakes.clone()).unwrap());
        let e = bare
            .create_monitoring_schedule(&schedule_input("s", "NOW", dir.path()))
            .unwrap_err();
        assert!(e.to_string().contains("no model monitor"), "{e}");
        let hosting = Arc::new(
            Hosting::open(&dir.path().join("hosting.db"), fakes.clone())
                .unwrap()
                .with_monitor(fakes.clone()),
        );
        let capture = dir.path().join("capture");
        hosting
            .create_model(
                &json!({"ModelName": "m", "PrimaryContainer": {"ModelDataUrl": "/nowhere"}}),
            )
            .unwrap();
        for (config, capture) in [("plain", None), ("captured", Some(&capture))] {
            let mut c = json!({"EndpointConfigName": config, "ProductionVariants": [
                {"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1}]});
            if let Some(to) = capture {
                c["DataCaptureConfig"] = json!({"EnableCapture": true, "InitialSamplingPercentage": 100,
                    "DestinationS3Uri": to, "CaptureOptions": [{"CaptureMode": "Input"}]});
            }
            hosting.create_endpoint_config(&c).unwrap();
        }
        hosting
            .create_endpoint(&json!({"EndpointName": "ep", "EndpointConfigName": "plain"}))
            .unwrap();
        wait_for("InService", || hosting.live_endpoint("ep").is_some());
        std::fs::write(dir.path().join("statistics.json"), "{}").unwrap();
        let refused = |input: &Value| {
            let e = Hosting::create_monitoring_schedule(&hosting, input).unwrap_err();
            assert_eq!(e.code(), "ValidationException");
            e.to_string()
        };
        let e = refused(&schedule_input("hourly", "cron(0 * ? * * *)", dir.path()));
        assert!(
            e.contains("ConstraintsResource") && e.contains("%monitor baseline"),
            "{e}"
        );
        std::fs::write(dir.path().join("constraints.json"), "{}").unwrap();
        let e = refused(&schedule_input("hourly", "cron(0 * ? * * *)", dir.path()));
        assert!(e.contains("captures no data"), "{e}");
        let e = refused(&schedule_input("hourly", "rate(1 hour)", dir.path()));
        assert!(e.contains("cron(0 * ? * * *)"), "{e}");
        hosting
            .update_endpoint(&json!({"EndpointName": "ep", "EndpointConfigName": "captured"}))
            .unwrap();
        wait_for("the update", || {
            hosting
                .describe_endpoint(&json!({"EndpointName": "ep"}))
                .unwrap()["EndpointConfigName"]
                == "captured"
        });
        let live = hosting.live_endpoint("ep").unwrap();
        live.invoke(
            &crate::endpoint::Invocation {
                body: b"1,2",
                content_type: Some("text/csv"),
                ..Default::default()
            },
            Utc::now(),
        )
        .unwrap();
        hosting
            .create_monitoring_schedule(&schedule_input("hourly", "cron(0 * ? * * *)", dir.path()))
            .unwrap();
        // Not yet: the next hour has not come.
        assert!(hosting.run_due_schedules(Utc::now()).is_empty());
        let next_hour = Utc::now() + chrono::Duration::hours(1);
        assert_eq!(
            hosting.run_due_schedules(next_hour),
            vec!["hourly".to_owned()]
        );
        assert!(
            hosting.run_due_schedules(next_hour).is_empty(),
            "one run per hour"
        );
        let executions = || {
            hosting
                .list_monitoring_executions(&json!({"MonitoringScheduleName": "hourly"}))
                .unwrap()["MonitoringExecutionSummaries"]
                .as_array()
                .unwrap()
                .clone()
        };
        wait_for("the execution", || {
            executions()
                .first()
                .is_some_and(|e| e["MonitoringExecutionStatus"] == "Completed")
        });
        let window = fakes.windows.lock().unwrap()[0].clone();
        let due = next_hour.timestamp().div_euclid(HOUR);
        assert_eq!((window.first_hour, window.last_hour), (due - 1, due - 1));
        assert_eq!(window.capture, capture.join("ep"));
        assert!(window
            .output
            .starts_with(dir.path().join("reports/ep/hourly")));
        // The traffic was flushed for the run: a rolled capture file is there.
        assert!(std::fs::read_dir(capture.join("ep/AllTraffic")).is_ok());
        // A stopped schedule does not run; NOW runs at once.
        hosting
            .stop_monitoring_schedule(&json!({"MonitoringScheduleName": "hourly"}))
            .unwrap();
        assert!(hosting
            .run_due_schedules(next_hour + chrono::Duration::hours(1))
            .is_empty());
        let mut now_input = schedule_input("once", "NOW", dir.path());
        now_input["MonitoringScheduleConfig"]["ScheduleConfig"]["DataAnalysisStartTime"] =
            json!("-PT2H");
        now_input["MonitoringScheduleConfig"]["ScheduleConfig"]["DataAnalysisEndTime"] =
            json!("-PT0H");
        hosting.create_monitoring_schedule(&now_input).unwrap();
        wait_for("the NOW execution", || {
            fakes.windows.lock().unwrap().len() == 2
        });
        let w = fakes.windows.lock().unwrap()[1].clone();
        let hour = Utc::now().timestamp().div_euclid(HOUR);
        assert_eq!((w.first_hour, w.last_hour), (hour - 2, hour));
        let all = hosting.list_monitoring_executions(&json!({})).unwrap();
        assert_eq!(
            all["MonitoringExecutionSummaries"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let described = hosting
            .describe_monitoring_schedule(&json!({"MonitoringScheduleName": "hourly"}))
            .unwrap();
        assert_eq!(described["MonitoringScheduleStatus"], "Stopped");
        assert_eq!(
            described["LastMonitoringExecutionSummary"]["MonitoringExecutionStatus"],
            "Completed"
        );
        hosting
            .delete_monitoring_schedule(&json!({"MonitoringScheduleName": "hourly"}))
            .unwrap();
        assert_eq!(executions().len(), 0);
    }
}
