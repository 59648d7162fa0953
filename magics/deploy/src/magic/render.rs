//! What the deployment magics show: answers and listings as frames (so `-o NAME` keeps them
//! and the notebook shows the usual table), and a frame written as the CSV a request carries.

use polars::prelude::{AnyValue, Column, DataFrame};
use rustmaker_magics::table::cell_text;
use rustmaker_magics::{MagicError, MimeBundle};
use serde_json::Value;

use crate::payload::Format;

/// A column from JSON values: numbers stay numbers when every value is one.
fn column(name: &str, values: &[Value]) -> Column {
    if values.iter().all(|v| v.is_i64() || v.is_null()) {
        let ints: Vec<Option<i64>> = values.iter().map(Value::as_i64).collect();
        return Column::new(name.into(), ints);
    }
    if values.iter().all(|v| v.is_number() || v.is_null()) {
        let floats: Vec<Option<f64>> = values.iter().map(Value::as_f64).collect();
        return Column::new(name.into(), floats);
    }
    let texts: Vec<Option<String>> = values
        .iter()
        .map(|v| match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        })
        .collect();
    Column::new(name.into(), texts)
}

/// Rows of JSON objects as a frame; the columns in the order the first row names them.
pub fn frame_of_objects(rows: &[serde_json::Map<String, Value>]) -> Result<DataFrame, MagicError> {
    let mut names: Vec<String> = Vec::new();
    for row in rows {
        for k in row.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let columns = names
        .iter()
        .map(|n| {
            let values: Vec<Value> = rows
                .iter()
                .map(|r| r.get(n).cloned().unwrap_or(Value::Null))
                .collect();
            column(n, &values)
        })
        .collect();
    DataFrame::new(rows.len(), columns).map_err(|e| MagicError::Failed(e.to_string()))
}

/// Rows of text fields as a frame named `_c0`, `_c1`, … (numbers where every field is one).
fn frame_of_fields(rows: &[Vec<String>]) -> Result<DataFrame, MagicError> {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let objects: Vec<serde_json::Map<String, Value>> = rows
        .iter()
        .map(|r| {
            (0..width)
                .map(|i| {
                    let field = r.get(i).map(String::as_str).unwrap_or("");
                    let value = field
                        .parse::<i64>()
                        .map(Value::from)
                        .or_else(|_| field.parse::<f64>().map(Value::from))
                        .unwrap_or_else(|_| Value::String(field.to_owned()));
                    (format!("_c{i}"), value)
                })
                .collect()
        })
        .collect();
    frame_of_objects(&objects)
}

/// An answer body as a frame: `{"predictions": […]}` or any JSON rows, JSON Lines, or CSV
/// lines (columns `_c0`, … as a header-less CSV reads).
pub fn frame_of_answer(body: &[u8], content_type: &str) -> Result<DataFrame, MagicError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| MagicError::Data("the answer is not UTF-8 text".into()))?;
    let unreadable = |e: String| {
        MagicError::Data(format!(
            "the answer ({content_type}) does not read as a table: {e}"
        ))
    };
    let objects = |values: Vec<Value>| -> Vec<serde_json::Map<String, Value>> {
        values
            .into_iter()
            .map(|v| match v {
                Value::Object(m) => m,
                Value::Array(items) => items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (format!("_c{i}"), v))
                    .collect(),
                other => [("value".to_owned(), other)].into_iter().collect(),
            })
            .collect()
    };
    match Format::of_media_type(content_type) {
        Some(Format::Json) => {
            let v: Value = serde_json::from_str(text).map_err(|e| unreadable(e.to_string()))?;
            let rows = match v {
                Value::Object(mut m) if m.contains_key("predictions") => {
                    match m.remove("predictions") {
                        Some(Value::Array(rows)) => rows,
                        Some(other) => vec![other],
                        None => Vec::new(),
                    }
                }
                Value::Array(rows) => rows,
                other => vec![other],
            };
            frame_of_objects(&objects(rows))
        }
        Some(Format::JsonLines) => {
            let rows = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).map_err(|e| unreadable(e.to_string())))
                .collect::<Result<Vec<Value>, _>>()?;
            frame_of_objects(&objects(rows))
        }
        _ => {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(text.as_bytes());
            let rows = reader
                .records()
                .map(|r| {
                    r.map(|r| r.iter().map(str::to_owned).collect::<Vec<_>>())
                        .map_err(|e| unreadable(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            frame_of_fields(&rows)
        }
    }
}

/// A frame as CSV, with or without its header line.
pub fn frame_csv(frame: &DataFrame, header: bool) -> Result<Vec<u8>, MagicError> {
    let mut out = Vec::new();
    {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(&mut out);
        let broken =
            |e: csv::Error| MagicError::Failed(format!("cannot write the frame as CSV: {e}"));
        if header {
            writer
                .write_record(frame.get_column_names().iter().map(|n| n.as_str()))
                .map_err(broken)?;
        }
        let columns = frame.columns();
        for i in 0..frame.height() {
            let fields = columns.iter().map(|c| match c.get(i) {
                Ok(AnyValue::Null) | Err(_) => String::new(),
                Ok(v) => cell_text(&v),
            });
            writer.write_record(fields).map_err(broken)?;
        }
        writer
            .flush()
            .map_err(|e| MagicError::Failed(e.to_string()))?;
    }
    Ok(out)
}

/// Rows of (column, value) text pairs as a table frame.
pub fn listing(columns: &[&str], rows: &[Vec<String>]) -> Result<DataFrame, MagicError> {
    let cols = columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let values: Vec<String> = rows
                .iter()
                .map(|r| r.get(i).cloned().unwrap_or_default())
                .collect();
            Column::new((*name).into(), values)
        })
        .collect();
    DataFrame::new(rows.len(), cols).map_err(|e| MagicError::Failed(e.to_string()))
}

/// A Describe answer: pretty JSON as text, and the JSON itself for front ends that render it.
pub fn described(value: &Value) -> MimeBundle {
    MimeBundle::text(serde_json::to_string_pretty(value).unwrap_or_default())
        .with("application/json", value.clone())
}

/// A SageMaker time (seconds since 1970, as the JSON protocol carries it) as ISO 8601 UTC.
pub fn time_text(v: &Value) -> String {
    v.as_f64()
        .and_then(|t| chrono::DateTime::from_timestamp(t as i64, 0))
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// A JSON field as text for a listing.
pub fn field(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}
