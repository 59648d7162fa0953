//! Captured endpoint traffic in SageMaker's data-capture format, checked hour by hour as a
//! monitoring schedule would check it.
//!
//! A capture directory is laid out `{prefix}/{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl`; each
//! line is a record with `captureData.endpointInput` (and `endpointOutput`), each holding
//! `observedContentType`, `mode`, `data` and `encoding` (CSV, JSON or BASE64), and
//! `eventMetadata.inferenceTime`. The request payloads (`endpointInput`) are the data checked:
//! a CSV payload's fields are columns `_c0`, `_c1`, … (as in a baseline made from a CSV without
//! header), a JSON object's keys are columns, and a JSON array is one row of `_cN` columns.
//! Records are grouped by the hour of their `inferenceTime` (else of their folder).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::profile::{json_value, ColumnProfile, Profile, RecordProfiler, Value};
use crate::{Baseline, ExecutionStatus, MonitorError};

/// An hour as (days since 1970-01-01) × 24 + hour, so hours order and step simply.
pub type Hour = i64;

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `2022-04-18T00:21:48Z`, `2022-04-18T05` or `2022-04-18` → the hour it falls in.
pub fn parse_hour(text: &str) -> Option<Hour> {
    let t = text.trim().trim_end_matches('Z');
    let (date, time) = t.split_once(['T', ' ']).unwrap_or((t, "00"));
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let h: i64 = time.split(':').next()?.parse().ok()?;
    if !(0..24).contains(&h) {
        return None;
    }
    Some(days_from_civil(y, m, day) * 24 + h)
}

/// `--since`/`--until` as given on the command line or in `%monitor`.
pub fn parse_hour_option(text: Option<&str>) -> Result<Option<Hour>, MonitorError> {
    text.map(|t| {
        parse_hour(t)
            .ok_or_else(|| MonitorError::Input(format!("`{t}` is not a time like 2022-04-18T05")))
    })
    .transpose()
}

/// `yyyy/mm/dd/hh`, as the capture and report folders name an hour.
pub fn hour_path(hour: Hour) -> String {
    let (y, m, d) = civil_from_days(hour.div_euclid(24));
    format!("{y:04}/{m:02}/{d:02}/{:02}", hour.rem_euclid(24))
}

pub fn hour_label(hour: Hour) -> String {
    let (y, m, d) = civil_from_days(hour.div_euclid(24));
    format!("{y:04}-{m:02}-{d:02}T{:02}:00:00Z", hour.rem_euclid(24))
}

fn jsonl_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), MonitorError> {
    let entries = std::fs::read_dir(dir).map_err(|e| MonitorError::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| MonitorError::io(dir, e))?.path();
        if path.is_dir() {
            jsonl_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            out.push(path);
        }
    }
    Ok(())
}

/// The hour a file's folders name (`…/yyyy/mm/dd/hh/file.jsonl`).
fn folder_hour(path: &Path) -> Option<Hour> {
    let parts: Vec<&str> = path
        .parent()?
        .components()
        .rev()
        .take(4)
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    if parts.len() < 4 {
        return None;
    }
    parse_hour(&format!(
        "{}-{}-{}T{}",
        parts[3], parts[2], parts[1], parts[0]
    ))
}

/// One captured request, decoded into fields.
#[derive(Debug)]
enum Payload {
    Row(Vec<String>),
    Object(serde_json::Map<String, serde_json::Value>),
    Array(Vec<serde_json::Value>),
}

/// A request's rows: a CSV payload's lines, JSON's `{"instances": […]}` or list of rows, or
/// one JSON row, as an endpoint reads them.
fn decode(input: &serde_json::Value) -> Result<Vec<Payload>, String> {
    let data = input
        .get("data")
        .and_then(|d| d.as_str())
        .ok_or("endpointInput has no `data` string")?;
    let encoding = input
        .get("encoding")
        .and_then(|e| e.as_str())
        .unwrap_or("CSV");
    let content_type = input
        .get("observedContentType")
        .and_then(|c| c.as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (text, json) = match encoding {
        "CSV" => (data.to_owned(), false),
        "JSON" => (data.to_owned(), true),
        "BASE64" => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| format!("BASE64 data that does not decode: {e}"))?;
            let text =
                String::from_utf8(bytes).map_err(|_| "BASE64 data that is not UTF-8 text")?;
            (text, content_type.contains("json"))
        }
        other => return Err(format!("unknown encoding `{other}` (CSV, JSON or BASE64)")),
    };
    if json {
        use serde_json::Value;
        let row = |v: Value| match v {
            Value::Object(map) => Payload::Object(map),
            Value::Array(items) => Payload::Array(items),
            other => Payload::Array(vec![other]),
        };
        let rows = |items: Vec<Value>| items.into_iter().map(row).collect();
        let parsed: Result<Value, _> = serde_json::from_str(&text);
        match parsed {
            Ok(Value::Object(mut map)) if map.get("instances").is_some_and(Value::is_array) => {
                match map.remove("instances") {
                    Some(Value::Array(items)) => Ok(rows(items)),
                    _ => Ok(Vec::new()),
                }
            }
            Ok(Value::Array(items)) if items.iter().all(|i| i.is_array() || i.is_object()) => {
                Ok(rows(items))
            }
            Ok(other) => Ok(vec![row(other)]),
            // JSON Lines: one row a line.
            Err(e) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).map(row))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| format!("JSON data that does not parse: {e}")),
        }
    } else {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.trim_end().as_bytes());
        reader
            .records()
            .map(|r| {
                r.map(|record| Payload::Row(record.iter().map(str::to_owned).collect()))
                    .map_err(|e| format!("CSV data that does not parse: {e}"))
            })
            .collect()
    }
}

/// One hour's monitoring execution.
#[derive(Debug, Clone)]
pub struct Execution {
    pub hour: Hour,
    pub status: ExecutionStatus,
    pub records: u64,
    pub violations: usize,
    pub failure_reason: Option<String>,
    pub output: PathBuf,
}

/// Checks every hour from `since` to `until` (inclusive) of the capture under `prefix` against
/// the baseline; each hour's files go to `output/yyyy/mm/dd/hh/`.
pub fn check_capture(
    prefix: &Path,
    baseline_dir: &Path,
    output: &Path,
    since: Option<Hour>,
    until: Option<Hour>,
) -> Result<Vec<Execution>, MonitorError> {
    let base = crate::read_baseline(baseline_dir)?;
    let (mut hours, mut broken) = read_hours(prefix)?;
    let first = since.or_else(|| hours.keys().next().copied());
    let last = until.or_else(|| hours.keys().next_back().copied());
    let (Some(first), Some(last)) = (first, last) else {
        return Err(MonitorError::Input(format!(
            "{}: no captured records (.jsonl files under endpoint/variant/yyyy/mm/dd/hh/)",
            prefix.display()
        )));
    };
    let mut executions = Vec::new();
    for hour in first..=last {
        let dir = output.join(hour_path(hour));
        let payloads = hours.remove(&hour).unwrap_or_default();
        let failed = |reason: String, records: u64| Execution {
            hour,
            status: ExecutionStatus::Failed,
            records,
            violations: 0,
            failure_reason: Some(reason),
            output: dir.clone(),
        };
        if let Some(why) = broken.remove(&hour) {
            executions.push(failed(why, payloads.len() as u64));
            continue;
        }
        if payloads.is_empty() {
            executions.push(failed("no captured data in this hour".into(), 0));
            continue;
        }
        let records = payloads.len() as u64;
        let profile = profile_payloads(&base, payloads);
        let outcome = crate::check_profile(&base, profile, &dir)?;
        executions.push(Execution {
            hour,
            status: outcome.status,
            records,
            violations: outcome.violations.len(),
            failure_reason: None,
            output: dir,
        });
    }
    Ok(executions)
}

/// Hour → the records' payloads, and hour → the first reason that hour's data is unusable.
type Hours = (BTreeMap<Hour, Vec<Payload>>, HashMap<Hour, String>);

fn read_hours(prefix: &Path) -> Result<Hours, MonitorError> {
    let mut files = Vec::new();
    jsonl_files(prefix, &mut files)?;
    files.sort();
    // Hour → the records' payloads, or the first reason the hour's data is unusable.
    let mut hours: BTreeMap<Hour, Vec<Payload>> = BTreeMap::new();
    let mut broken: HashMap<Hour, String> = HashMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| MonitorError::io(file, e))?;
        let fallback = folder_hour(file);
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("{} line {}", file.display(), n + 1);
            let record: serde_json::Value = match serde_json::from_str(line) {
                Ok(r) => r,
                Err(e) => {
                    if let Some(h) = fallback {
                        broken
                            .entry(h)
                            .or_insert(format!("{at}: not a JSON record: {e}"));
                    }
                    continue;
                }
            };
            let hour = record
                .pointer("/eventMetadata/inferenceTime")
                .and_then(|t| t.as_str())
                .and_then(parse_hour)
                .or(fallback);
            let Some(hour) = hour else { continue };
            match record
                .pointer("/captureData/endpointInput")
                .ok_or_else(|| "no captureData.endpointInput".to_owned())
                .and_then(decode)
            {
                Ok(rows) => hours.entry(hour).or_default().extend(rows),
                Err(why) => {
                    broken.entry(hour).or_insert(format!("{at}: {why}"));
                }
            }
        }
    }
    Ok((hours, broken))
}

/// One execution over the hours `first..=last` taken together, as a monitoring schedule's
/// run checks its analysis window; the reports go to `output` itself. A window without
/// records is `Failed` with the reason, as SageMaker's executions are.
pub fn check_window(
    prefix: &Path,
    base: &Baseline,
    output: &Path,
    first: Hour,
    last: Hour,
) -> Result<Execution, MonitorError> {
    let (mut hours, mut broken) = if prefix.is_dir() {
        read_hours(prefix)?
    } else {
        Default::default()
    };
    let mut payloads = Vec::new();
    for hour in first..=last {
        if let Some(why) = broken.remove(&hour) {
            return Ok(Execution {
                hour: first,
                status: ExecutionStatus::Failed,
                records: 0,
                violations: 0,
                failure_reason: Some(why),
                output: output.to_owned(),
            });
        }
        payloads.extend(hours.remove(&hour).unwrap_or_default());
    }
    if payloads.is_empty() {
        return Ok(Execution {
            hour: first,
            status: ExecutionStatus::Failed,
            records: 0,
            violations: 0,
            failure_reason: Some(format!(
                "no captured data from {} to {} under {}",
                hour_label(first),
                hour_label(last + 1),
                prefix.display()
            )),
            output: output.to_owned(),
        });
    }
    let records = payloads.len() as u64;
    let profile = profile_payloads(base, payloads);
    let outcome = crate::check_profile(base, profile, output)?;
    Ok(Execution {
        hour: first,
        status: outcome.status,
        records,
        violations: outcome.violations.len(),
        failure_reason: None,
        output: output.to_owned(),
    })
}

fn profile_payloads(base: &Baseline, payloads: Vec<Payload>) -> Profile {
    let domains: HashMap<String, Vec<String>> = crate::domains(&base.constraints);
    let mut records = RecordProfiler::new(|name: String| {
        let c = ColumnProfile::new(name.clone());
        match domains.get(&name) {
            Some(d) => c.with_domain(d),
            None => c,
        }
    });
    for payload in payloads {
        match payload {
            Payload::Row(fields) => {
                let names: Vec<String> = (0..fields.len()).map(|i| format!("_c{i}")).collect();
                records.record(
                    names
                        .iter()
                        .zip(&fields)
                        .map(|(n, f)| (n.as_str(), Value::Text(f))),
                );
            }
            Payload::Object(map) => {
                let mut scratch: Vec<String> = vec![String::new(); map.len()];
                records.record(
                    map.iter()
                        .zip(scratch.iter_mut())
                        .map(|((k, v), s)| (k.as_str(), json_value(v, s))),
                );
            }
            Payload::Array(items) => {
                let names: Vec<String> = (0..items.len()).map(|i| format!("_c{i}")).collect();
                let mut scratch: Vec<String> = vec![String::new(); items.len()];
                records.record(
                    names
                        .iter()
                        .zip(items.iter().zip(scratch.iter_mut()))
                        .map(|(n, (v, s))| (n.as_str(), json_value(v, s))),
                );
            }
        }
    }
    records.profile
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_parse_and_print() {
        let h = parse_hour("2022-04-18T00:21:48Z").unwrap();
        assert_eq!(hour_path(h), "2022/04/18/00");
        assert_eq!(hour_label(h + 24 * 13), "2022-05-01T00:00:00Z");
        assert_eq!(
            parse_hour("2024-02-29"),
            Some(days_from_civil(2024, 2, 29) * 24)
        );
        assert_eq!(parse_hour("2024-13-01T00"), None);
        assert_eq!(parse_hour("yesterday"), None);
    }

    #[test]
    fn payloads_decode() {
        let csv = serde_json::json!({"data": "1,2,x\n", "encoding": "CSV"});
        assert!(matches!(decode(&csv).as_deref(), Ok([Payload::Row(r)]) if r == &["1", "2", "x"]));
        let b64 = serde_json::json!({"data": "eyJhIjogMX0=", "encoding": "BASE64",
            "observedContentType": "application/json"});
        assert!(matches!(decode(&b64).as_deref(), Ok([Payload::Object(m)]) if m["a"] == 1));
        // A request of many rows is many rows: CSV lines, SageMaker's instances, JSON Lines.
        let lines = serde_json::json!({"data": "1,2\n3,4\n5,6", "encoding": "CSV"});
        assert_eq!(decode(&lines).unwrap().len(), 3);
        let instances =
            serde_json::json!({"data": "{\"instances\": [[1, 2], [3, 4]]}", "encoding": "JSON"});
        assert!(
            matches!(decode(&instances).as_deref(), Ok([Payload::Array(a), Payload::Array(_)]) if a.len() == 2)
        );
        let jsonl = serde_json::json!({"data": "{\"a\": 1}\n{\"a\": 2}", "encoding": "JSON"});
        assert_eq!(decode(&jsonl).unwrap().len(), 2);
        let row = serde_json::json!({"data": "[1, 2, 3]", "encoding": "JSON"});
        assert!(matches!(decode(&row).as_deref(), Ok([Payload::Array(a)]) if a.len() == 3));
        let bad = serde_json::json!({"data": "%%%", "encoding": "BASE64"});
        assert!(decode(&bad).unwrap_err().contains("does not decode"));
    }
}
