//! Data capture as SageMaker writes it: each sampled request and its response one JSON line
//! (`captureData.endpointInput` / `endpointOutput` with `observedContentType`, `mode`, `data`
//! and `encoding`; `eventMetadata` with `eventId`, `inferenceId`, `customAttributes` and
//! `inferenceTime`; `eventVersion` "0"), in files laid out
//! `{destination}/{endpoint}/{variant}/yyyy/mm/dd/hh/MM-SS-mmm-{uuid}.jsonl`, the hour being
//! the invocation's. A file is written under a hidden `.partial` name and renamed when it is
//! rolled, so a reader (the model monitor, an S3 upload) never sees half of one.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::DeployError;

/// What is captured and where: SageMaker's `DataCaptureConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureConfig {
    /// Of every 100 requests, how many are captured.
    pub sampling_percentage: u32,
    /// `DestinationS3Uri`: a local folder here (an `s3://` one is uploaded by the caller).
    pub destination: String,
    pub input: bool,
    pub output: bool,
    /// Content types whose payloads are kept as text (`CSV`, `JSON`); others are BASE64.
    pub csv_types: Vec<String>,
    pub json_types: Vec<String>,
}

impl CaptureConfig {
    /// From SageMaker's `DataCaptureConfig` object; `None` when `EnableCapture` is false.
    pub fn from_sagemaker(config: &Value) -> Result<Option<CaptureConfig>, DeployError> {
        let bad = |m: String| DeployError::Config(format!("DataCaptureConfig: {m}"));
        if config.get("EnableCapture").and_then(Value::as_bool) == Some(false) {
            return Ok(None);
        }
        let sampling = config
            .get("InitialSamplingPercentage")
            .ok_or_else(|| bad("InitialSamplingPercentage is required (0 to 100)".into()))?;
        let sampling_percentage = sampling.as_u64().filter(|p| *p <= 100).ok_or_else(|| {
            bad(format!(
                "InitialSamplingPercentage is {sampling}: give a whole number from 0 to 100"
            ))
        })? as u32;
        let destination = config
            .get("DestinationS3Uri")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| bad("DestinationS3Uri is required: an s3:// prefix or a folder".into()))?
            .trim_end_matches('/')
            .to_owned();
        let options = config
            .get("CaptureOptions")
            .and_then(Value::as_array)
            .filter(|o| !o.is_empty())
            .ok_or_else(|| {
                bad("CaptureOptions is required: [{\"CaptureMode\": \"Input\"}, {\"CaptureMode\": \"Output\"}]".into())
            })?;
        let (mut input, mut output) = (false, false);
        for option in options {
            match option.get("CaptureMode").and_then(Value::as_str) {
                Some("Input") => input = true,
                Some("Output") => output = true,
                Some("InputAndOutput") => (input, output) = (true, true),
                other => {
                    return Err(bad(format!(
                        "CaptureMode {}: use Input, Output or InputAndOutput",
                        other.map_or("is missing".into(), |o| format!("`{o}`"))
                    )))
                }
            }
        }
        let types = |key: &str, default: &str| -> Result<Vec<String>, DeployError> {
            match config
                .get("CaptureContentTypeHeader")
                .and_then(|h| h.get(key))
            {
                None => Ok(vec![default.to_owned()]),
                Some(Value::Array(list)) => list
                    .iter()
                    .map(|t| {
                        t.as_str()
                            .map(|t| t.trim().to_ascii_lowercase())
                            .ok_or_else(|| bad(format!("{key} holds {t}: list content types")))
                    })
                    .collect(),
                Some(other) => Err(bad(format!("{key} is {other}: list content types"))),
            }
        };
        Ok(Some(CaptureConfig {
            sampling_percentage,
            destination,
            input,
            output,
            csv_types: types("CsvContentTypes", "text/csv")?,
            json_types: types("JsonContentTypes", "application/json")?,
        }))
    }

    /// Whether a request with `draw` in [0, 1) is captured.
    pub fn sampled(&self, draw: f64) -> bool {
        draw * 100.0 < f64::from(self.sampling_percentage)
    }
}

/// One invocation as the endpoint saw it.
#[derive(Debug, Clone)]
pub struct Exchange<'a> {
    pub request_type: Option<&'a str>,
    pub request: &'a [u8],
    pub response_type: Option<&'a str>,
    pub response: &'a [u8],
    /// `X-Amzn-SageMaker-Inference-Id`, when the caller gave one.
    pub inference_id: Option<&'a str>,
    /// `X-Amzn-SageMaker-Custom-Attributes`, when the caller gave them.
    pub custom_attributes: Option<&'a str>,
    pub time: DateTime<Utc>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    capture_data: CaptureData<'a>,
    event_metadata: EventMetadata<'a>,
    event_version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CaptureData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint_input: Option<Payload<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint_output: Option<Payload<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    observed_content_type: Option<&'a str>,
    mode: &'static str,
    data: Cow<'a, str>,
    encoding: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventMetadata<'a> {
    event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    inference_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_attributes: Option<Vec<&'a str>>,
    inference_time: String,
}

impl CaptureConfig {
    fn payload<'a>(
        &self,
        content_type: Option<&'a str>,
        data: &'a [u8],
        mode: &'static str,
    ) -> Payload<'a> {
        let media = content_type
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase());
        let listed = |types: &[String]| media.as_ref().is_some_and(|m| types.contains(m));
        let text = std::str::from_utf8(data).ok();
        let (data, encoding) = match text {
            Some(text) if listed(&self.csv_types) => (Cow::Borrowed(text), "CSV"),
            Some(text) if listed(&self.json_types) => (Cow::Borrowed(text), "JSON"),
            _ => (
                Cow::Owned(base64::engine::general_purpose::STANDARD.encode(data)),
                "BASE64",
            ),
        };
        Payload {
            observed_content_type: content_type,
            mode,
            data,
            encoding,
        }
    }

    /// The exchange as one capture line (no newline), with a fresh `eventId`.
    pub fn record(&self, exchange: &Exchange) -> String {
        let record = Record {
            capture_data: CaptureData {
                endpoint_input: self
                    .input
                    .then(|| self.payload(exchange.request_type, exchange.request, "INPUT")),
                endpoint_output: self
                    .output
                    .then(|| self.payload(exchange.response_type, exchange.response, "OUTPUT")),
            },
            event_metadata: EventMetadata {
                event_id: uuid::Uuid::new_v4().to_string(),
                inference_id: exchange.inference_id,
                custom_attributes: exchange
                    .custom_attributes
                    .map(|a| a.split(',').map(str::trim).collect()),
                inference_time: exchange.time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            },
            event_version: "0",
        };
        serde_json::to_string(&record).expect("capture records serialise")
    }
}

/// When a capture file is closed and a new one begun.
#[derive(Debug, Clone, Copy)]
pub struct Rolling {
    pub max_records: usize,
    pub max_bytes: u64,
    /// Seconds a file stays open at most, so that captured traffic reaches readers soon.
    pub max_age_s: i64,
}

impl Default for Rolling {
    fn default() -> Rolling {
        Rolling {
            max_records: 10_000,
            max_bytes: 16 << 20,
            max_age_s: 10,
        }
    }
}

struct Open {
    hour: (i32, u32, u32, u32),
    started: DateTime<Utc>,
    partial: PathBuf,
    path: PathBuf,
    file: BufWriter<File>,
    records: usize,
    bytes: u64,
}

/// The capture files of one variant of one endpoint.
pub struct CaptureWriter {
    dir: PathBuf,
    rolling: Rolling,
    open: Option<Open>,
}

fn hour_of(t: DateTime<Utc>) -> (i32, u32, u32, u32) {
    (t.year(), t.month(), t.day(), t.hour())
}

/// Files a killed process left hidden under `dir` (`.NAME.partial`): their complete lines are
/// kept as `NAME`, a half-written last line dropped, so a crash loses at most the record it
/// was writing. Run it before anything writes there again (the service does at start).
pub fn recover_orphans(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut recovered = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            recovered += recover_orphans(&path);
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(kept) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".partial"))
        else {
            continue;
        };
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if whole == 0 {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if std::fs::write(&path, &bytes[..whole]).is_ok()
            && std::fs::rename(&path, path.with_file_name(kept)).is_ok()
        {
            recovered += 1;
        }
    }
    recovered
}

impl CaptureWriter {
    /// Files go under `{destination}/{endpoint}/{variant}/`.
    pub fn new(destination: &Path, endpoint: &str, variant: &str, rolling: Rolling) -> Self {
        CaptureWriter {
            dir: destination.join(endpoint).join(variant),
            rolling,
            open: None,
        }
    }

    /// Appends one record (a line from [`CaptureConfig::record`]) made at `time`; the file
    /// rolls first when the hour changed or it is full or old.
    pub fn write(&mut self, line: &str, time: DateTime<Utc>) -> Result<(), DeployError> {
        let due = self.open.as_ref().is_some_and(|o| {
            o.hour != hour_of(time)
                || o.records >= self.rolling.max_records
                || o.bytes >= self.rolling.max_bytes
                || (time - o.started).num_seconds() >= self.rolling.max_age_s
        });
        if due {
            self.roll()?;
        }
        if self.open.is_none() {
            self.open = Some(self.begin(time)?);
        }
        let open = self.open.as_mut().expect("a file is open");
        // Flushed record by record (one write each): a killed service loses no answered
        // request's record, and the file a crash leaves is mended at the next start.
        let written = open
            .file
            .write_all(line.as_bytes())
            .and_then(|()| open.file.write_all(b"\n"))
            .and_then(|()| open.file.flush());
        if let Err(e) = written {
            let partial = open.partial.clone();
            // The file is dropped, not renamed: a reader never sees a broken line.
            self.open = None;
            let _ = std::fs::remove_file(&partial);
            return Err(DeployError::io(partial, e));
        }
        open.records += 1;
        open.bytes += line.len() as u64 + 1;
        Ok(())
    }

    fn begin(&self, time: DateTime<Utc>) -> Result<Open, DeployError> {
        let folder = self.dir.join(time.format("%Y/%m/%d/%H").to_string());
        std::fs::create_dir_all(&folder).map_err(|e| DeployError::io(&folder, e))?;
        let name = format!(
            "{}-{:03}-{}.jsonl",
            time.format("%M-%S"),
            time.timestamp_subsec_millis(),
            uuid::Uuid::new_v4()
        );
        let partial = folder.join(format!(".{name}.partial"));
        let file = File::create(&partial).map_err(|e| DeployError::io(&partial, e))?;
        Ok(Open {
            hour: hour_of(time),
            started: time,
            partial,
            path: folder.join(name),
            file: BufWriter::new(file),
            records: 0,
            bytes: 0,
        })
    }

    /// Closes the open file, if any, under its final name; returns that path.
    pub fn roll(&mut self) -> Result<Option<PathBuf>, DeployError> {
        let Some(mut open) = self.open.take() else {
            return Ok(None);
        };
        let closed = open
            .file
            .flush()
            .and_then(|()| open.file.get_ref().sync_all());
        if let Err(e) = closed {
            let _ = std::fs::remove_file(&open.partial);
            return Err(DeployError::io(&open.partial, e));
        }
        drop(open.file);
        std::fs::rename(&open.partial, &open.path).map_err(|e| DeployError::io(&open.path, e))?;
        Ok(Some(open.path))
    }

    /// Rolls a file that has been open longer than the rolling age at `now` (for a timer, so
    /// that quiet endpoints' captures reach readers too).
    pub fn roll_if_old(&mut self, now: DateTime<Utc>) -> Result<Option<PathBuf>, DeployError> {
        let old = self
            .open
            .as_ref()
            .is_some_and(|o| (now - o.started).num_seconds() >= self.rolling.max_age_s);
        if old {
            self.roll()
        } else {
            Ok(None)
        }
    }
}

impl Drop for CaptureWriter {
    fn drop(&mut self) {
        let _ = self.roll();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn config() -> CaptureConfig {
        CaptureConfig::from_sagemaker(&serde_json::json!({
            "EnableCapture": true,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": "/tmp/capture/",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }))
        .unwrap()
        .unwrap()
    }

    fn exchange(time: DateTime<Utc>) -> Exchange<'static> {
        Exchange {
            request_type: Some("text/csv"),
            request: b"5.1,3.5,1.4,0.2",
            response_type: Some("text/csv; charset=utf-8"),
            response: b"setosa,0.97\n",
            inference_id: None,
            custom_attributes: None,
            time,
        }
    }

    #[test]
    fn a_record_has_sagemakers_fields_in_sagemakers_order() {
        let t = Utc.with_ymd_and_hms(2022, 4, 18, 0, 21, 48).unwrap();
        let line = config().record(&exchange(t));
        assert!(line.starts_with(
            "{\"captureData\":{\"endpointInput\":{\"observedContentType\":\"text/csv\",\"mode\":\"INPUT\",\"data\":\"5.1,3.5,1.4,0.2\",\"encoding\":\"CSV\"},\"endpointOutput\":{\"observedContentType\":\"text/csv; charset=utf-8\",\"mode\":\"OUTPUT\",\"data\":\"setosa,0.97\\n\",\"encoding\":\"CSV\"}},\"eventMetadata\":{\"eventId\":\""
        ), "{line}");
        assert!(
            line.ends_with("\"inferenceTime\":\"2022-04-18T00:21:48Z\"},\"eventVersion\":\"0\"}"),
            "{line}"
        );
        // The same keys as SageMaker's own capture sample.
        let sample = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/formats/datacapture-devguide-sample.jsonl"
        ));
        if let Ok(sample) = sample {
            let theirs: Value = serde_json::from_str(sample.lines().next().unwrap()).unwrap();
            let ours: Value = serde_json::from_str(&line).unwrap();
            let keys = |v: &Value, path: &[&str]| -> Vec<String> {
                let mut v = v;
                for p in path {
                    v = &v[p];
                }
                v.as_object().unwrap().keys().cloned().collect()
            };
            for path in [
                &[][..],
                &["captureData"],
                &["captureData", "endpointInput"],
                &["eventMetadata"],
            ] {
                assert_eq!(keys(&ours, path), keys(&theirs, path), "{path:?}");
            }
        }
    }

    #[test]
    fn payloads_outside_the_listed_types_are_base64_and_ids_are_kept() {
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let mut e = exchange(t);
        e.request_type = Some("application/x-npy");
        e.request = &[0x93, b'N', b'U', b'M', 0xff];
        e.response_type = Some("application/json");
        e.response = br#"{"predictions":[{"score":1.5}]}"#;
        e.inference_id = Some("abc-1");
        e.custom_attributes = Some("trace=1, user=ann");
        let v: Value = serde_json::from_str(&config().record(&e)).unwrap();
        let input = &v["captureData"]["endpointInput"];
        assert_eq!(input["encoding"], "BASE64");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(input["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes, e.request);
        assert_eq!(v["captureData"]["endpointOutput"]["encoding"], "JSON");
        assert_eq!(v["eventMetadata"]["inferenceId"], "abc-1");
        assert_eq!(
            v["eventMetadata"]["customAttributes"],
            serde_json::json!(["trace=1", "user=ann"])
        );
        // Input only: no output object at all.
        let mut input_only = config();
        input_only.output = false;
        let v: Value = serde_json::from_str(&input_only.record(&e)).unwrap();
        assert!(v["captureData"].get("endpointOutput").is_none());
    }

    #[test]
    fn a_broken_capture_config_says_what_to_give() {
        let base = serde_json::json!({
            "InitialSamplingPercentage": 50,
            "DestinationS3Uri": "s3://bucket/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}],
        });
        let with = |key: &str, value: Value| {
            let mut c = base.clone();
            c[key] = value;
            CaptureConfig::from_sagemaker(&c)
        };
        let c = with("EnableCapture", true.into()).unwrap().unwrap();
        assert_eq!(
            (c.sampling_percentage, c.input, c.output),
            (50, true, false)
        );
        assert!(with("EnableCapture", false.into()).unwrap().is_none());
        for (key, value, want) in [
            (
                "InitialSamplingPercentage",
                Value::from(101),
                "give a whole number from 0 to 100",
            ),
            (
                "InitialSamplingPercentage",
                Value::from(-3),
                "give a whole number from 0 to 100",
            ),
            (
                "DestinationS3Uri",
                Value::from(""),
                "DestinationS3Uri is required",
            ),
            (
                "CaptureOptions",
                serde_json::json!([]),
                "CaptureOptions is required",
            ),
            (
                "CaptureOptions",
                serde_json::json!([{"CaptureMode": "Both"}]),
                "CaptureMode `Both`",
            ),
            (
                "CaptureContentTypeHeader",
                serde_json::json!({"CsvContentTypes": "text/csv"}),
                "CsvContentTypes is \"text/csv\"",
            ),
        ] {
            let e = with(key, value).unwrap_err().to_string();
            assert!(e.contains(want), "{key}: {e}");
        }
    }

    #[test]
    fn files_roll_by_hour_size_and_age_and_are_never_seen_half_written() {
        let dir = tempfile::tempdir().unwrap();
        let rolling = Rolling {
            max_records: 3,
            max_bytes: 1 << 20,
            max_age_s: 60,
        };
        let mut w = CaptureWriter::new(dir.path(), "churn", "AllTraffic", rolling);
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 9, 59, 30).unwrap();
        let config = config();
        let jsonl = |hour: &str| -> Vec<PathBuf> {
            let folder = dir.path().join("churn/AllTraffic/2026/12/01").join(hour);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
                .map(|d| d.map(|e| e.unwrap().path()).collect())
                .unwrap_or_default();
            files.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
            files.sort();
            files
        };
        for s in 0..4 {
            let t = t0 + chrono::Duration::seconds(s);
            w.write(&config.record(&exchange(t)), t).unwrap();
        }
        // Three records filled the first file; the fourth is in an open one, not yet visible.
        let nine = jsonl("09");
        assert_eq!(nine.len(), 1);
        assert!(nine[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("59-30-000-"));
        assert_eq!(
            std::fs::read_to_string(&nine[0]).unwrap().lines().count(),
            3
        );
        // The next hour rolls the open file and starts a folder of its own.
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 1).unwrap();
        w.write(&config.record(&exchange(t)), t).unwrap();
        assert_eq!(jsonl("09").len(), 2);
        assert!(jsonl("10").is_empty(), "still open");
        assert!(w
            .roll_if_old(t + chrono::Duration::seconds(5))
            .unwrap()
            .is_none());
        let rolled = w.roll_if_old(t + chrono::Duration::seconds(60)).unwrap();
        assert_eq!(jsonl("10"), vec![rolled.unwrap()]);
        // Every line of every file is a whole record.
        for file in jsonl("09").into_iter().chain(jsonl("10")) {
            for line in std::fs::read_to_string(file).unwrap().lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["eventVersion"], "0");
            }
        }
        // A writer dropped (the endpoint deleted, the service stopping) closes its file.
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 11, 0, 0).unwrap();
        w.write(&config.record(&exchange(t)), t).unwrap();
        drop(w);
        assert_eq!(jsonl("11").len(), 1);
        let hidden = std::fs::read_dir(dir.path().join("churn/AllTraffic/2026/12/01/11"))
            .unwrap()
            .count();
        assert_eq!(hidden, 1, "no .partial file is left");
    }

    #[test]
    fn an_unwritable_destination_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "not a folder").unwrap();
        let mut w = CaptureWriter::new(&blocker, "e", "v", Rolling::default());
        let t = Utc::now();
        let e = w.write(&config().record(&exchange(t)), t).unwrap_err();
        assert!(e.to_string().contains("file/e/v"), "{e}");
    }

    #[test]
    fn sampling_keeps_its_share() {
        let mut c = config();
        c.sampling_percentage = 30;
        let draws = crate::variants::Draws::new(3);
        let n = 20_000;
        let kept = (0..n).filter(|_| c.sampled(draws.unit())).count() as f64 / n as f64;
        assert!((kept - 0.3).abs() < 0.015, "{kept}");
        c.sampling_percentage = 0;
        assert!(!(0..1000).any(|_| c.sampled(draws.unit())));
        c.sampling_percentage = 100;
        assert!((0..1000).all(|_| c.sampled(draws.unit())));
    }

    #[test]
    fn a_killed_writers_file_keeps_its_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let hour = dir.path().join("ep/AllTraffic/2026/12/02/18");
        std::fs::create_dir_all(&hour).unwrap();
        std::fs::write(
            hour.join(".00-01-002-a.jsonl.partial"),
            "{\"a\":1}\n{\"a\":2}\n{\"a\":",
        )
        .unwrap();
        std::fs::write(hour.join(".00-01-003-b.jsonl.partial"), "{\"half").unwrap();
        assert_eq!(recover_orphans(dir.path()), 1);
        let kept = std::fs::read_to_string(hour.join("00-01-002-a.jsonl")).unwrap();
        assert_eq!(kept, "{\"a\":1}\n{\"a\":2}\n");
        let left: Vec<_> = std::fs::read_dir(&hour)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }
}
