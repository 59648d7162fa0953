//! `%monitor schedule`, `executions`, `schedules` and `unschedule`: an endpoint's monitoring
//! schedules through the service's API. The composition root hands these sub-commands of
//! `%monitor` to [`ScheduleMagic`] and the rest to the monitor's own magic.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use rustmaker_magics::long_work::{self, Backoff, LiveDisplay, Poll};
use rustmaker_magics::table::frame_bundle;
use rustmaker_magics::{
    parse_args, Magic, MagicCall, MagicContext, MagicError, MagicForm, MimeBundle,
};
use serde_json::{json, Value};

use super::render::{described, field, listing, time_text};
use super::service::{connect, service_error};

/// The `%monitor` sub-commands this magic answers.
pub const COMMANDS: [&str; 4] = ["schedule", "executions", "schedules", "unschedule"];

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct ScheduleArgs {
    endpoint: String,
    /// The baseline's folder (statistics.json and constraints.json, from %monitor baseline).
    #[arg(long)]
    baseline: String,
    /// hour, day, N-hours or now (one run at once over the last hour).
    #[arg(long, default_value = "hour")]
    every: String,
    #[arg(long)]
    name: Option<String>,
    /// Where the reports go (default {data}/monitoring-reports).
    #[arg(long)]
    output: Option<String>,
    /// The analysis window, as offsets from the scheduled time (-PT1H, -PT0H).
    #[arg(long, allow_hyphen_values = true)]
    start_offset: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    end_offset: Option<String>,
}

/// `--every` as a `ScheduleExpression`, as the SDK's `CronExpressionGenerator` writes them.
fn expression(every: &str) -> Result<String, MagicError> {
    Ok(match every {
        "hour" | "hourly" => "cron(0 * ? * * *)".into(),
        "day" | "daily" => "cron(0 0 ? * * *)".into(),
        "now" => "NOW".into(),
        other => match other
            .strip_suffix("-hours")
            .and_then(|n| n.parse::<u32>().ok())
        {
            Some(n) if (1..=23).contains(&n) => format!("cron(0 0/{n} ? * * *)"),
            _ => {
                return Err(MagicError::usage(
                    "monitor",
                    format!("--every {other}: give hour, day, N-hours (1 to 23) or now"),
                ))
            }
        },
    })
}

fn absolute(path: &str) -> String {
    std::fs::canonicalize(path)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_owned())
}

pub struct ScheduleMagic;

const USAGE: &str = "%monitor schedule ENDPOINT --baseline DIR [--every hour|day|N-hours|now] [--name S] [--output DIR]\n\
%monitor executions ENDPOINT [--schedule S] [-o FRAME]\n%monitor schedules [ENDPOINT]\n%monitor unschedule SCHEDULE";

impl Magic for ScheduleMagic {
    fn name(&self) -> &str {
        "monitor"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line]
    }
    fn summary(&self) -> &str {
        "Monitoring schedules of an endpoint's captured traffic."
    }
    fn help(&self) -> String {
        format!(
            "{USAGE}\n\n\
             schedule: a data-quality monitoring schedule of the endpoint (it must capture its\n\
             traffic: %deploy --capture). Each scheduled hour the captured requests of the hour\n\
             before are checked against the baseline; the reports (statistics.json,\n\
             constraint_violations.json) go to OUTPUT/ENDPOINT/SCHEDULE/yyyy/mm/dd/hh/. --every now\n\
             runs once at once, waits for it and shows what it found. executions: each run with its\n\
             status (Completed, CompletedWithViolations, Failed and why)."
        )
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let argv = call.argv()?;
        let (command, rest) = argv
            .split_first()
            .ok_or_else(|| MagicError::usage("monitor", USAGE))?;
        let client = connect()?;
        let api = |op: &str, input: Value| client.call(op, &input).map_err(service_error);
        match command.as_str() {
            "schedule" => {
                let args: ScheduleArgs = parse_args("monitor schedule", rest.to_vec())?;
                let cron = expression(&args.every)?;
                let name = args
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{}-data-quality", args.endpoint));
                let baseline = PathBuf::from(absolute(&args.baseline));
                for file in ["statistics.json", "constraints.json"] {
                    if !baseline.join(file).is_file() {
                        return Err(MagicError::Data(format!(
                            "{} has no {file}: make the baseline with %monitor baseline --data TRAIN --output {}",
                            baseline.display(),
                            args.baseline
                        )));
                    }
                }
                let output = match &args.output {
                    Some(o) => {
                        std::fs::create_dir_all(o)
                            .map_err(|e| MagicError::Failed(format!("cannot make {o}: {e}")))?;
                        absolute(o)
                    }
                    None => rustmaker_process::data_dir()
                        .join("monitoring-reports")
                        .display()
                        .to_string(),
                };
                let mut schedule = json!({"ScheduleExpression": cron});
                let (start, end) = match (&args.start_offset, &args.end_offset, args.every.as_str())
                {
                    (None, None, "now") => (Some("-PT1H".to_owned()), Some("-PT0H".to_owned())),
                    (s, e, _) => (s.clone(), e.clone()),
                };
                if let Some(s) = start {
                    schedule["DataAnalysisStartTime"] = json!(s);
                }
                if let Some(e) = end {
                    schedule["DataAnalysisEndTime"] = json!(e);
                }
                api(
                    "CreateMonitoringSchedule",
                    json!({
                    "MonitoringScheduleName": name,
                    "MonitoringScheduleConfig": {
                        "ScheduleConfig": schedule,
                        "MonitoringType": "DataQuality",
                        "MonitoringJobDefinition": {
                            "BaselineConfig": {
                                "ConstraintsResource": {"S3Uri": baseline.join("constraints.json")},
                                "StatisticsResource": {"S3Uri": baseline.join("statistics.json")}},
                            "MonitoringInputs": [{"EndpointInput": {"EndpointName": args.endpoint,
                                "LocalPath": "/opt/ml/processing/input/endpoint"}}],
                            "MonitoringOutputConfig": {"MonitoringOutputs": [{"S3Output": {
                                "S3Uri": output, "LocalPath": "/opt/ml/processing/output"}}]},
                            "MonitoringResources": {"ClusterConfig": {"InstanceCount": 1,
                                "InstanceType": "ml.m5.large", "VolumeSizeInGB": 20}},
                            "MonitoringAppSpecification": {"ImageUri": "rustmaker-model-monitor"},
                            "RoleArn": "arn:aws:iam::000000000000:role/rustmaker"}}}),
                )?;
                if args.every != "now" {
                    ctx.stdout(&format!(
                        "monitoring schedule {name}: Scheduled ({cron}); reports under {output}/{}/{name}/\n",
                        args.endpoint
                    ));
                    return Ok(());
                }
                let run = wait_for_run(&api, &name, ctx)?;
                show_run(&run, ctx);
            }
            "executions" => {
                let mut frame_name = None;
                let mut schedule = None;
                let mut endpoint = None;
                let mut it = rest.iter();
                while let Some(a) = it.next() {
                    match a.as_str() {
                        "-o" | "--output" => frame_name = it.next().cloned(),
                        "--schedule" => schedule = it.next().cloned(),
                        e if endpoint.is_none() && !e.starts_with('-') => {
                            endpoint = Some(e.to_owned())
                        }
                        other => {
                            return Err(MagicError::usage(
                                "monitor",
                                format!("executions: unexpected `{other}`\nusage: {USAGE}"),
                            ))
                        }
                    }
                }
                let mut input = json!({});
                if let Some(e) = &endpoint {
                    input["EndpointName"] = json!(e);
                }
                if let Some(s) = &schedule {
                    input["MonitoringScheduleName"] = json!(s);
                }
                let all = api("ListMonitoringExecutions", input)?;
                let rows: Vec<Vec<String>> = all["MonitoringExecutionSummaries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        vec![
                            field(e, "MonitoringScheduleName"),
                            time_text(&e["ScheduledTime"]),
                            field(e, "MonitoringExecutionStatus"),
                            field(e, "Records"),
                            field(e, "Violations"),
                            field(e, "FailureReason"),
                            field(e, "ReportUri"),
                        ]
                    })
                    .collect();
                let frame = listing(
                    &[
                        "MonitoringScheduleName",
                        "ScheduledTime",
                        "MonitoringExecutionStatus",
                        "Records",
                        "Violations",
                        "FailureReason",
                        "ReportUri",
                    ],
                    &rows,
                )?;
                if rows.is_empty() {
                    ctx.stdout("no monitoring executions yet (a schedule runs at its next hour; --every now runs at once)\n");
                } else {
                    ctx.display(frame_bundle(&frame, 50), None);
                }
                if let Some(f) = frame_name {
                    ctx.frames().insert(&f, frame)?;
                }
            }
            "schedules" => {
                let input = match rest {
                    [e] => json!({"EndpointName": e}),
                    _ => json!({}),
                };
                let all = api("ListMonitoringSchedules", input)?;
                let rows: Vec<Vec<String>> = all["MonitoringScheduleSummaries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        vec![
                            field(s, "MonitoringScheduleName"),
                            field(s, "EndpointName"),
                            field(s, "MonitoringScheduleStatus"),
                            time_text(&s["CreationTime"]),
                        ]
                    })
                    .collect();
                ctx.display(
                    frame_bundle(
                        &listing(
                            &[
                                "MonitoringScheduleName",
                                "EndpointName",
                                "MonitoringScheduleStatus",
                                "CreationTime",
                            ],
                            &rows,
                        )?,
                        50,
                    ),
                    None,
                );
            }
            "unschedule" => {
                let [name] = rest else {
                    return Err(MagicError::usage("monitor", format!("usage: {USAGE}")));
                };
                api(
                    "DeleteMonitoringSchedule",
                    json!({"MonitoringScheduleName": name}),
                )?;
                ctx.stdout(&format!(
                    "monitoring schedule {name} deleted (its reports stay)\n"
                ));
            }
            _ => return Err(MagicError::usage("monitor", USAGE)),
        }
        Ok(())
    }
}

/// Waits for the schedule's latest execution to end.
fn wait_for_run(
    api: &dyn Fn(&str, Value) -> Result<Value, MagicError>,
    name: &str,
    ctx: &mut dyn MagicContext,
) -> Result<Value, MagicError> {
    let mut live = LiveDisplay::new("monitoring", name);
    let run = long_work::poll(
        ctx,
        Backoff::new(Duration::from_millis(100), 2, Duration::from_secs(2)),
        |ctx| {
            let s = api(
                "DescribeMonitoringSchedule",
                json!({"MonitoringScheduleName": name}),
            )?;
            let last = s
                .get("LastMonitoringExecutionSummary")
                .cloned()
                .unwrap_or(Value::Null);
            match last["MonitoringExecutionStatus"].as_str() {
                Some("InProgress" | "Pending") | None => {
                    live.update(
                        ctx,
                        MimeBundle::text(format!("monitoring schedule {name}: running")),
                    );
                    Ok(Poll::Pending)
                }
                Some(_) => Ok(Poll::Ready(last)),
            }
        },
    )
    .map_err(|e| {
        long_work::on_interrupt(
            e,
            "stopped waiting",
            format!("the execution goes on (`%monitor executions --schedule {name}`)"),
        )
    })?;
    live.finish(
        ctx,
        MimeBundle::text(format!(
            "monitoring schedule {name}: {}",
            field(&run, "MonitoringExecutionStatus")
        )),
    );
    Ok(run)
}

/// An execution's outcome: its status and, when it found any, the violations it wrote.
fn show_run(run: &Value, ctx: &mut dyn MagicContext) {
    let status = field(run, "MonitoringExecutionStatus");
    let mut text = format!("{status}: {} records checked", field(run, "Records"));
    if let Some(why) = run.get("FailureReason").and_then(Value::as_str) {
        text = format!("{status}: {why}");
    }
    let report =
        Path::new(run["ReportUri"].as_str().unwrap_or_default()).join("constraint_violations.json");
    let violations: Option<Value> = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let rows: Vec<Vec<String>> = violations
        .as_ref()
        .and_then(|v| v["violations"].as_array())
        .into_iter()
        .flatten()
        .map(|v| {
            vec![
                field(v, "feature_name"),
                field(v, "constraint_check_type"),
                field(v, "description"),
            ]
        })
        .collect();
    ctx.display(
        MimeBundle::text(format!("{text}\nreports in {}", field(run, "ReportUri"))),
        None,
    );
    if let Ok(frame) = listing(
        &["feature_name", "constraint_check_type", "description"],
        &rows,
    ) {
        if !rows.is_empty() {
            ctx.display(frame_bundle(&frame, 50), None);
        }
    }
    if let Some(v) = violations {
        ctx.display(described(&v), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadences_as_the_sdk_writes_them() {
        assert_eq!(expression("hour").unwrap(), "cron(0 * ? * * *)");
        assert_eq!(expression("day").unwrap(), "cron(0 0 ? * * *)");
        assert_eq!(expression("6-hours").unwrap(), "cron(0 0/6 ? * * *)");
        assert_eq!(expression("now").unwrap(), "NOW");
        for bad in ["week", "0-hours", "24-hours"] {
            assert!(
                matches!(expression(bad), Err(MagicError::Usage { .. })),
                "{bad}"
            );
        }
        for e in ["hour", "day", "6-hours", "now"] {
            crate::schedules::Cadence::parse(&expression(e).unwrap()).unwrap();
        }
    }
}
