//! Reading a data set into a [`Profile`]: CSV (streamed, so memory does not grow with the
//! rows), JSON Lines (streamed; columns are the union of the records' keys), Parquet, and
//! polars DataFrames (the kernel's frames).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;
use rustmaker_magics::csv_header::{self, CsvHeaderError, HeaderChoice};

use crate::format::InferredType;
use crate::profile::{json_value, ColumnProfile, Profile, RecordProfiler, Value};
use crate::MonitorError;

/// Column names and types given by the user (`--schema id:Integral,price,color:String`): for a
/// CSV the names of its columns in order (a CSV without header is otherwise `_c0`, `_c1`, …);
/// for other sources the columns whose type is fixed. A type given here is written as the
/// feature's `inferred_type` whatever the values look like.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    pub columns: Vec<(String, Option<InferredType>)>,
}

impl Schema {
    /// `--schema` when given.
    pub fn parse_option(spec: Option<&str>) -> Result<Option<Schema>, MonitorError> {
        spec.map(Schema::parse).transpose()
    }

    pub fn parse(spec: &str) -> Result<Schema, MonitorError> {
        let columns = spec
            .split(',')
            .map(|part| {
                let (name, kind) = match part.split_once(':') {
                    Some((n, k)) => (n.trim(), Some(k.trim())),
                    None => (part.trim(), None),
                };
                if name.is_empty() {
                    return Err(MonitorError::Input(format!(
                        "--schema `{spec}`: a column name is empty (write NAME[:TYPE],…)"
                    )));
                }
                let kind = match kind {
                    None => None,
                    Some("Integral") => Some(InferredType::Integral),
                    Some("Fractional") => Some(InferredType::Fractional),
                    Some("String") => Some(InferredType::String),
                    Some(other) => {
                        return Err(MonitorError::Input(format!(
                            "--schema: `{other}` is not a type; use Integral, Fractional or String"
                        )))
                    }
                };
                Ok((name.to_owned(), kind))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Schema { columns })
    }
}

/// Where the data comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A CSV file; without a header the columns are named `_c0`, `_c1`, … as Spark names them.
    Csv {
        path: PathBuf,
        header: HeaderChoice,
    },
    JsonLines(PathBuf),
    Parquet(PathBuf),
    Frame {
        name: String,
        frame: DataFrame,
    },
}

impl Source {
    /// Whether `path`'s extension names a format this reads.
    pub fn check_format(path: &Path) -> Result<(), MonitorError> {
        let name = path.to_string_lossy().to_ascii_lowercase();
        if [".csv", ".jsonl", ".json", ".parquet"]
            .iter()
            .any(|e| name.ends_with(e))
        {
            Ok(())
        } else {
            Err(MonitorError::Input(format!(
                "{}: cannot tell the format; name the file .csv, .jsonl or .parquet",
                path.display()
            )))
        }
    }

    /// A file by its extension (`.csv`, `.jsonl`/`.json`, `.parquet`). A CSV's header is
    /// `header` when given (`--header`/`--no-header`), else sniffed from its first lines.
    pub fn file(path: &Path, header: Option<bool>) -> Result<Source, MonitorError> {
        Self::check_format(path)?;
        let name = path.to_string_lossy().to_ascii_lowercase();
        let path = path.to_owned();
        if name.ends_with(".csv") {
            let header = csv_header::choose(&path, header).map_err(|e| match e {
                CsvHeaderError::Io { path, source } => MonitorError::Io { path, source },
                other => MonitorError::Input(other.to_string()),
            })?;
            Ok(Source::Csv { path, header })
        } else if name.ends_with(".parquet") {
            Ok(Source::Parquet(path))
        } else {
            Ok(Source::JsonLines(path))
        }
    }

    /// How a CSV's first line was read, and why (none for other sources).
    pub fn header_choice(&self) -> Option<&HeaderChoice> {
        match self {
            Source::Csv { header, .. } => Some(header),
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Csv { path, .. } | Source::JsonLines(path) | Source::Parquet(path) => {
                path.display().to_string()
            }
            Source::Frame { name, .. } => format!("frame `{name}`"),
        }
    }

    /// Profiles the data. `domains` gives, per column, a baseline domain to count values
    /// against (for the categorical values check).
    pub fn profile(
        &self,
        domains: &HashMap<String, Vec<String>>,
        schema: Option<&Schema>,
    ) -> Result<Profile, MonitorError> {
        // A CSV's columns are made in order, so the schema names them by position.
        let position = std::cell::Cell::new(0usize);
        let csv = matches!(self, Source::Csv { .. });
        let with_domain = |name: String| {
            let i = position.replace(position.get() + 1);
            let given = schema.and_then(|s| s.columns.get(i)).filter(|_| csv);
            let name = given.map(|g| g.0.clone()).unwrap_or(name);
            let c = ColumnProfile::new(name.clone());
            match domains.get(&name) {
                Some(d) => c.with_domain(d),
                None => c,
            }
        };
        let profile = match self {
            Source::Csv { path, header } => profile_csv(path, header.header, with_domain)?,
            Source::JsonLines(path) => profile_jsonl(path, with_domain)?,
            Source::Parquet(path) => {
                let file = std::fs::File::open(path).map_err(|e| MonitorError::io(path, e))?;
                let frame = ParquetReader::new(file).finish().map_err(|e| {
                    MonitorError::Input(format!(
                        "{}: not a readable Parquet file: {e}",
                        path.display()
                    ))
                })?;
                profile_frame(&frame, with_domain)?
            }
            Source::Frame { frame, .. } => profile_frame(frame, with_domain)?,
        };
        let mut profile = profile;
        if let Some(schema) = schema {
            if csv && schema.columns.len() != profile.columns.len() {
                return Err(MonitorError::Input(format!(
                    "--schema names {} columns but {} has {}",
                    schema.columns.len(),
                    self.describe(),
                    profile.columns.len()
                )));
            }
            for (name, kind) in &schema.columns {
                let column = profile
                    .columns
                    .iter_mut()
                    .find(|c| &c.name == name)
                    .ok_or_else(|| {
                        MonitorError::Input(format!(
                            "--schema: {} has no column `{name}`",
                            self.describe()
                        ))
                    })?;
                column.forced = *kind;
            }
        }
        if profile.rows == 0 {
            return Err(MonitorError::Input(format!(
                "{} has no rows: there is nothing to profile",
                self.describe()
            )));
        }
        Ok(profile)
    }
}

fn profile_csv(
    path: &Path,
    header: bool,
    column: impl Fn(String) -> ColumnProfile,
) -> Result<Profile, MonitorError> {
    let file = std::fs::File::open(path).map_err(|e| MonitorError::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(header)
        .flexible(false)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let bad = |e: csv::Error| {
        let line = e.position().map(|p| p.line()).unwrap_or(0);
        let what = match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!("a row with {len} fields where the rows before have {expected_len}"),
            csv::ErrorKind::Utf8 { .. } => "text that is not UTF-8".to_owned(),
            _ => e.to_string(),
        };
        MonitorError::Input(format!(
            "{} line {line}: {what}; fix the row (or remove it) and run again",
            path.display()
        ))
    };
    let mut profile = Profile {
        rows: 0,
        columns: Vec::new(),
    };
    if header {
        let names = reader.headers().map_err(bad)?.clone();
        let mut seen = std::collections::HashSet::new();
        for (i, n) in names.iter().enumerate() {
            let name = if n.trim().is_empty() {
                format!("_c{i}")
            } else {
                n.trim().to_owned()
            };
            if !seen.insert(name.clone()) {
                return Err(MonitorError::Input(format!(
                    "{} line 1: the column name `{name}` appears twice",
                    path.display()
                )));
            }
            profile.columns.push(column(name));
        }
    }
    let mut first = csv::StringRecord::new();
    if !reader.read_record(&mut first).map_err(bad)? {
        return Ok(profile);
    }
    if profile.columns.is_empty() {
        profile.columns = (0..first.len()).map(|i| column(format!("_c{i}"))).collect();
    }
    // This thread parses the CSV and profiles the left half of the columns; a second thread
    // profiles the right half of each batch. Two batches at most are in flight, so memory
    // stays flat however long the file is.
    let mid = profile.columns.len() / 2;
    let (left, right) = profile.columns.split_at_mut(mid);
    let mut rows = 0u64;
    let result = std::thread::scope(|scope| -> Result<(), MonitorError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Batch>>(1);
        // Batches come back once profiled, so their records' buffers are reused.
        let (back_tx, back_rx) = std::sync::mpsc::sync_channel::<Arc<Batch>>(2);
        let worker = scope.spawn(move || {
            for batch in rx {
                for record in &batch.records[..batch.len] {
                    for (col, field) in right.iter_mut().zip(record.iter().skip(mid)) {
                        col.update(Value::Text(field));
                    }
                }
                let _ = back_tx.send(batch);
            }
        });
        let mut spare: Vec<Batch> = Vec::new();
        let mut batch = Batch {
            records: vec![first],
            len: 1,
        };
        let read = loop {
            if batch.records.len() <= batch.len {
                batch.records.push(csv::StringRecord::new());
            }
            let more = match reader.read_record(&mut batch.records[batch.len]) {
                Ok(more) => more,
                Err(e) => break Err(bad(e)),
            };
            if more {
                batch.len += 1;
            }
            if batch.len == BATCH || (!more && batch.len > 0) {
                let next = spare.pop().unwrap_or_else(|| Batch {
                    records: Vec::with_capacity(BATCH),
                    len: 0,
                });
                let full = Arc::new(std::mem::replace(&mut batch, next));
                rows += full.len as u64;
                if tx.send(full.clone()).is_err() {
                    break Ok(());
                }
                for record in &full.records[..full.len] {
                    for (col, field) in left.iter_mut().zip(record.iter()) {
                        col.update(Value::Text(field));
                    }
                }
                drop(full);
                while let Ok(back) = back_rx.try_recv() {
                    if let Ok(mut b) = Arc::try_unwrap(back) {
                        b.len = 0;
                        spare.push(b);
                    }
                }
            }
            if !more {
                break Ok(());
            }
        };
        drop(tx);
        worker.join().expect("the profiling thread does not panic");
        read
    });
    result?;
    profile.rows = rows;
    Ok(profile)
}

/// Rows per batch handed to the profiling threads.
const BATCH: usize = 4096;

/// Parsed rows; `records` beyond `len` are buffers kept for reuse.
struct Batch {
    records: Vec<csv::StringRecord>,
    len: usize,
}

fn profile_jsonl(
    path: &Path,
    column: impl Fn(String) -> ColumnProfile,
) -> Result<Profile, MonitorError> {
    let file = std::fs::File::open(path).map_err(|e| MonitorError::io(path, e))?;
    let mut records = RecordProfiler::new(column);
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| MonitorError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: serde_json::Value = serde_json::from_str(&line).map_err(|e| {
            MonitorError::Input(format!("{} line {}: not JSON: {e}", path.display(), n + 1))
        })?;
        let serde_json::Value::Object(map) = record else {
            return Err(MonitorError::Input(format!(
                "{} line {}: each line must be a JSON object",
                path.display(),
                n + 1
            )));
        };
        let mut scratch: Vec<String> = vec![String::new(); map.len()];
        records.record(
            map.iter()
                .zip(scratch.iter_mut())
                .map(|((k, v), s)| (k.as_str(), json_value(v, s))),
        );
    }
    Ok(records.profile)
}

fn profile_frame(
    frame: &DataFrame,
    column: impl Fn(String) -> ColumnProfile,
) -> Result<Profile, MonitorError> {
    let polars_error = |e: PolarsError| MonitorError::Input(format!("reading the frame: {e}"));
    let mut profile = Profile {
        rows: frame.height() as u64,
        columns: Vec::new(),
    };
    for series in frame.columns() {
        let mut col = column(series.name().to_string());
        let s = series.as_materialized_series();
        let dtype = s.dtype();
        if dtype.is_integer() {
            let ints = s.cast(&DataType::Int64).map_err(polars_error)?;
            for v in ints.i64().map_err(polars_error)?.iter() {
                col.update(v.map(Value::Int).unwrap_or(Value::Missing));
            }
        } else if dtype.is_float() {
            let floats = s.cast(&DataType::Float64).map_err(polars_error)?;
            for v in floats.f64().map_err(polars_error)?.iter() {
                col.update(v.map(Value::Float).unwrap_or(Value::Missing));
            }
        } else {
            let strings = s.cast(&DataType::String).map_err(polars_error)?;
            for v in strings.str().map_err(polars_error)?.iter() {
                col.update(v.map(Value::Text).unwrap_or(Value::Missing));
            }
        }
        profile.columns.push(col);
    }
    Ok(profile)
}
