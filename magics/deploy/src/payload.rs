//! What `InvokeEndpoint` carries: request bodies in the content types SageMaker's built-in
//! algorithms take, read into a frame of the model's feature columns, and the model's answer
//! columns written back in the accept type.
//!
//! - `text/csv`: one row a line, values in the model's feature order; a first line that names
//!   every feature is a header, and then the columns may come in any order.
//! - `application/json`: SageMaker's `{"instances": [...]}`, a list of rows, or one row; a row
//!   is a list of values, `{"features": [...]}`, or an object keyed by feature name.
//! - `application/jsonlines`: one such row a line.
//!
//! Answers: CSV lines of the answer columns; JSON `{"predictions": [{column: value, …}]}` as
//! the built-in algorithms answer; JSON Lines one such object a line.

use polars::prelude::{AnyValue, Column, DataFrame, DataType};
use rustmaker_magics::services::ServedModel;
use serde_json::Value;

use crate::DeployError;

/// A payload's format, from its content type or accept type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    JsonLines,
}

impl Format {
    /// The request's format from its `Content-Type` (parameters such as `charset` aside);
    /// none given is CSV, the built-in algorithms' default.
    pub fn of_content_type(header: Option<&str>) -> Result<Format, DeployError> {
        match header.map(str::trim).filter(|h| !h.is_empty()) {
            None => Ok(Format::Csv),
            Some(given) => Format::of_media_type(given).ok_or_else(|| DeployError::ContentType {
                what: "content type",
                given: given.to_owned(),
            }),
        }
    }

    /// The answer's format from `Accept`: the first supported type of its list, the request's
    /// own format for none or `*/*`.
    pub fn of_accept(header: Option<&str>, request: Format) -> Result<Format, DeployError> {
        let Some(given) = header.map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(request);
        };
        for choice in given.split(',') {
            let media = choice.split(';').next().unwrap_or("").trim();
            if media == "*/*" {
                return Ok(request);
            }
            if let Some(format) = Format::of_media_type(media) {
                return Ok(format);
            }
        }
        Err(DeployError::ContentType {
            what: "accept type",
            given: given.to_owned(),
        })
    }

    /// A media type (parameters aside) as a format, if it is one served.
    pub fn of_media_type(given: &str) -> Option<Format> {
        let media = given.split(';').next().unwrap_or("").trim();
        match media.to_ascii_lowercase().as_str() {
            "text/csv" => Some(Format::Csv),
            "application/json" => Some(Format::Json),
            "application/jsonlines" | "application/x-jsonlines" | "application/jsonl" => {
                Some(Format::JsonLines)
            }
            _ => None,
        }
    }

    /// The media type answers in this format are sent with.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::Json => "application/json",
            Format::JsonLines => "application/jsonlines",
        }
    }
}

/// One value of a request row.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Missing,
    Number(f64),
    Text(String),
}

/// The rows of `body` as a frame with one column per feature (numbers where every value of
/// the column is a number, text otherwise; an empty value is missing).
pub fn rows(body: &[u8], format: Format, features: &[String]) -> Result<DataFrame, DeployError> {
    let rows = match format {
        Format::Csv => csv_rows(body, features)?,
        Format::Json => json_rows(body, features)?,
        Format::JsonLines => jsonl_rows(body, features)?,
    };
    if rows.is_empty() {
        return Err(DeployError::Payload(
            "the payload has no rows: send one row of feature values a line (CSV) or a list of rows (JSON)".into(),
        ));
    }
    frame(features, rows)
}

/// A CSV body of plain numbers, row-major (`NaN` where a value is empty), when every line has
/// exactly `width` unquoted fields that parse as numbers; `None` for anything else (a header,
/// text, quotes, a wrong width, a literal `NaN`), which [`rows`] reads or explains.
pub fn numbers(body: &[u8], width: usize) -> Option<Vec<f64>> {
    let mut out = Vec::with_capacity(body.len() / 8);
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        // One pass over the line: a number parsed where it starts, then a comma or the end.
        let mut fields = 0;
        let mut rest = line.trim_ascii_start();
        loop {
            if rest.first().is_none_or(|b| *b == b',') {
                out.push(f64::NAN);
            } else {
                let (value, used): (f64, usize) = fast_float2::parse_partial(rest).ok()?;
                // `rows` keeps a literal NaN as a number, not as missing: leave it to `rows`.
                if value.is_nan() {
                    return None;
                }
                out.push(value);
                rest = rest[used..].trim_ascii_start();
            }
            fields += 1;
            match rest.split_first() {
                None => break,
                Some((b',', after)) => rest = after.trim_ascii_start(),
                Some(_) => return None,
            }
        }
        if fields != width {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The model's answer to `body`, in `accept`: rows of plain numbers go to the model as they
/// are where it takes them so, anything else is read into a frame first.
pub fn score(
    model: &dyn ServedModel,
    body: &[u8],
    format: Format,
    accept: Format,
) -> Result<Vec<u8>, DeployError> {
    let direct = match format {
        Format::Csv => numbers(body, model.features().len()),
        _ => None,
    }
    .and_then(|values| model.predict_numbers(&values));
    let answers = match direct {
        Some(answers) => answers,
        None => model.predict(&rows(body, format, model.features())?),
    }
    .map_err(|e| DeployError::Payload(e.to_string()))?;
    answer(&answers, accept)
}

fn frame(features: &[String], rows: Vec<Vec<Cell>>) -> Result<DataFrame, DeployError> {
    let height = rows.len();
    let columns = features
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let numeric = rows.iter().all(|r| !matches!(r[j], Cell::Text(_)));
            if numeric {
                let values: Vec<Option<f64>> = rows
                    .iter()
                    .map(|r| match r[j] {
                        Cell::Number(v) => Some(v),
                        _ => None,
                    })
                    .collect();
                Column::new(name.as_str().into(), values)
            } else {
                let values: Vec<Option<String>> = rows
                    .iter()
                    .map(|r| match &r[j] {
                        Cell::Number(v) => Some(v.to_string()),
                        Cell::Text(t) => Some(t.clone()),
                        Cell::Missing => None,
                    })
                    .collect();
                Column::new(name.as_str().into(), values)
            }
        })
        .collect();
    DataFrame::new(height, columns).map_err(|e| DeployError::Payload(e.to_string()))
}

fn csv_cell(field: &str) -> Cell {
    let field = field.trim();
    if field.is_empty() {
        Cell::Missing
    } else if let Ok(v) = field.parse::<f64>() {
        Cell::Number(v)
    } else {
        Cell::Text(field.to_owned())
    }
}

fn wrong_width(row: usize, got: usize, features: &[String]) -> DeployError {
    DeployError::Row {
        row,
        message: format!(
            "has {got} values; the model takes {} ({})",
            features.len(),
            features.join(", ")
        ),
    }
}

fn csv_rows(body: &[u8], features: &[String]) -> Result<Vec<Vec<Cell>>, DeployError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut out = Vec::new();
    // Where each feature is in a line: the features' order, or the header's.
    let mut at: Vec<usize> = (0..features.len()).collect();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| DeployError::Row {
            row: i + 1,
            message: format!("is not CSV: {e}"),
        })?;
        if i == 0 && is_header(&record, features) {
            at = features
                .iter()
                .map(|f| record.iter().position(|h| h.trim() == f))
                .collect::<Option<_>>()
                .expect("a header names every feature");
            continue;
        }
        if record.len() != features.len() {
            return Err(wrong_width(out.len() + 1, record.len(), features));
        }
        out.push(at.iter().map(|&j| csv_cell(&record[j])).collect());
    }
    Ok(out)
}

/// A first line that names every feature once, and nothing else.
fn is_header(record: &csv::StringRecord, features: &[String]) -> bool {
    record.len() == features.len()
        && features
            .iter()
            .all(|f| record.iter().filter(|h| h.trim() == f).count() == 1)
}

fn json_cell(v: &Value, row: usize, feature: &str) -> Result<Cell, DeployError> {
    match v {
        Value::Null => Ok(Cell::Missing),
        Value::Number(n) => Ok(Cell::Number(n.as_f64().unwrap_or(f64::NAN))),
        Value::String(s) => Ok(Cell::Text(s.clone())),
        other => Err(DeployError::Row {
            row,
            message: format!("`{feature}` is {other}: a value must be a number, a string or null"),
        }),
    }
}

/// One row: a list of values in feature order, `{"features": [...]}`, or an object keyed by
/// feature name (other keys, such as the target, are ignored).
fn json_row(v: &Value, row: usize, features: &[String]) -> Result<Vec<Cell>, DeployError> {
    let positional = |values: &[Value]| {
        if values.len() != features.len() {
            return Err(wrong_width(row, values.len(), features));
        }
        values
            .iter()
            .zip(features)
            .map(|(v, f)| json_cell(v, row, f))
            .collect()
    };
    match v {
        Value::Array(values) => positional(values),
        Value::Object(map) => match map.get("features") {
            Some(Value::Array(values)) if !features.iter().any(|f| f == "features") => {
                positional(values)
            }
            _ => features
                .iter()
                .map(|f| match map.get(f) {
                    Some(v) => json_cell(v, row, f),
                    None => Err(DeployError::Row {
                        row,
                        message: format!(
                            "has no value for `{f}`; the model takes {}",
                            features.join(", ")
                        ),
                    }),
                })
                .collect(),
        },
        other => Err(DeployError::Row {
            row,
            message: format!(
                "is {other}: a row is a list of values or an object keyed by feature name"
            ),
        }),
    }
}

fn parse_json(text: &[u8], what: &str) -> Result<Value, DeployError> {
    serde_json::from_slice(text)
        .map_err(|e| DeployError::Payload(format!("{what} is not JSON: {e}")))
}

fn json_rows(body: &[u8], features: &[String]) -> Result<Vec<Vec<Cell>>, DeployError> {
    let value = parse_json(body, "the payload")?;
    let list = match &value {
        Value::Object(map) if map.contains_key("instances") => match &map["instances"] {
            Value::Array(rows) => rows.as_slice(),
            other => {
                return Err(DeployError::Payload(format!(
                    "`instances` is {other}: it must be a list of rows"
                )))
            }
        },
        // A list of scalars is one row; a list of lists or objects is rows.
        Value::Array(items) if items.iter().any(|i| i.is_array() || i.is_object()) => {
            items.as_slice()
        }
        one => std::slice::from_ref(one),
    };
    list.iter()
        .enumerate()
        .map(|(i, row)| json_row(row, i + 1, features))
        .collect()
}

fn jsonl_rows(body: &[u8], features: &[String]) -> Result<Vec<Vec<Cell>>, DeployError> {
    let mut out = Vec::new();
    for line in body.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let row = out.len() + 1;
        let value = parse_json(line, &format!("row {row}"))?;
        out.push(json_row(&value, row, features)?);
    }
    Ok(out)
}

fn value_of(v: AnyValue) -> Value {
    match v {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(b),
        AnyValue::String(s) => Value::String(s.to_owned()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::Float64(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        AnyValue::Float32(f) => {
            serde_json::Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number)
        }
        AnyValue::UInt8(n) => n.into(),
        AnyValue::UInt16(n) => n.into(),
        AnyValue::UInt32(n) => n.into(),
        AnyValue::UInt64(n) => n.into(),
        AnyValue::Int8(n) => n.into(),
        AnyValue::Int16(n) => n.into(),
        AnyValue::Int32(n) => n.into(),
        AnyValue::Int64(n) => n.into(),
        other => Value::String(other.to_string()),
    }
}

/// Each row of the answer frame as its columns' names and values, in the frame's order.
fn answer_objects(answers: &DataFrame) -> Result<Vec<Vec<(String, Value)>>, DeployError> {
    let columns = answers.columns();
    (0..answers.height())
        .map(|i| {
            columns
                .iter()
                .map(|c| {
                    let v = c
                        .get(i)
                        .map_err(|e| DeployError::Payload(format!("the model's answer: {e}")))?;
                    Ok((c.name().to_string(), value_of(v)))
                })
                .collect()
        })
        .collect()
}

/// One answer column's cells as CSV fields are written: numbers as JSON writes them (the
/// shortest text that reads back the same), missing ones empty.
enum Cells {
    Numbers(Vec<Option<f64>>),
    Texts(Vec<Option<String>>),
}

/// CSV lines of the answer columns, written column by column rather than through a JSON value
/// a cell: a batch's answer is millions of cells.
fn answer_csv(answers: &DataFrame, out: &mut Vec<u8>) -> Result<(), DeployError> {
    let failed =
        |e: &dyn std::fmt::Display| DeployError::Payload(format!("the answer as CSV: {e}"));
    let columns: Vec<Cells> = answers
        .columns()
        .iter()
        .map(|c| match c.dtype() {
            DataType::Float64 => Ok(Cells::Numbers(c.f64().map_err(|e| failed(&e))?.to_vec())),
            DataType::String => Ok(Cells::Texts(
                c.str()
                    .map_err(|e| failed(&e))?
                    .iter()
                    .map(|v| v.map(str::to_owned))
                    .collect(),
            )),
            _ => (0..c.len())
                .map(|i| {
                    Ok(match value_of(c.get(i).map_err(|e| failed(&e))?) {
                        Value::Null => None,
                        Value::String(s) => Some(s),
                        other => Some(other.to_string()),
                    })
                })
                .collect::<Result<_, DeployError>>()
                .map(Cells::Texts),
        })
        .collect::<Result<_, _>>()?;
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    let mut numbers: Vec<ryu::Buffer> = columns.iter().map(|_| ryu::Buffer::new()).collect();
    for i in 0..answers.height() {
        let mut fields: Vec<&[u8]> = Vec::with_capacity(columns.len());
        for (cells, buffer) in columns.iter().zip(numbers.iter_mut()) {
            fields.push(match cells {
                Cells::Numbers(v) => match v[i] {
                    Some(x) if x.is_finite() => buffer.format_finite(x).as_bytes(),
                    _ => b"",
                },
                Cells::Texts(v) => v[i].as_deref().map_or(&b""[..], str::as_bytes),
            });
        }
        writer.write_record(fields).map_err(|e| failed(&e))?;
    }
    writer.flush().map_err(|e| failed(&e))
}

/// The answer frame (the model's answer columns, a row per request row) in `format`.
pub fn answer(answers: &DataFrame, format: Format) -> Result<Vec<u8>, DeployError> {
    let mut out = Vec::new();
    match format {
        Format::Csv => answer_csv(answers, &mut out)?,
        Format::Json => {
            let predictions: Vec<Value> = answer_objects(answers)?
                .into_iter()
                .map(|o| Value::Object(o.into_iter().collect()))
                .collect();
            out = serde_json::to_vec(&serde_json::json!({ "predictions": predictions }))
                .expect("JSON values serialise");
        }
        Format::JsonLines => {
            for object in answer_objects(answers)? {
                serde_json::to_writer(&mut out, &Value::Object(object.into_iter().collect()))
                    .expect("JSON values serialise");
                out.push(b'\n');
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features() -> Vec<String> {
        ["sepal", "petal", "color"].map(String::from).to_vec()
    }

    fn cells(df: &DataFrame) -> Vec<Vec<Value>> {
        (0..df.height())
            .map(|i| {
                df.columns()
                    .iter()
                    .map(|c| value_of(c.get(i).unwrap()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn plain_numbers_skip_the_frame_and_everything_else_is_left_to_it() {
        let got = numbers(b"5.1, 1.4 ,-2e3\r\n6,,7\n\n", 3).unwrap();
        assert_eq!(&got[..3], &[5.1, 1.4, -2000.0]);
        assert!(got[4].is_nan() && got[3] == 6.0 && got[5] == 7.0 && got.len() == 6);
        for body in [
            "sepal,petal,color\n1,2,3\n", // a header
            "1,2,red\n",                  // text
            "\"1\",2,3\n",                // quotes
            "1,2\n",                      // a short row
            "1,2,3,4\n",                  // a long row
            "1,NaN,3\n",                  // a number that `rows` keeps as one
            "1,2,3x\n",                   // a number with text after it
            "  \n",                       // a blank line that `rows` refuses
            "",
        ] {
            assert_eq!(numbers(body.as_bytes(), 3), None, "{body:?}");
        }
    }

    #[test]
    fn csv_answers_write_numbers_as_json_does() {
        let answers = DataFrame::new(
            4,
            vec![
                Column::new(
                    "predicted_label".into(),
                    [Some("yes"), Some("a,b"), None, Some("no")],
                ),
                Column::new("probability".into(), [0.1 + 0.2, 1.0, f64::NAN, 1e-7]),
                Column::new("closest_cluster".into(), [3u32, 0, 1, 2]),
            ],
        )
        .unwrap();
        let csv = String::from_utf8(answer(&answers, Format::Csv).unwrap()).unwrap();
        assert_eq!(
            csv,
            "yes,0.30000000000000004,3\n\"a,b\",1.0,0\n,,1\nno,1e-7,2\n"
        );
        let json = String::from_utf8(answer(&answers, Format::JsonLines).unwrap()).unwrap();
        let first: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
        assert_eq!(first["probability"].to_string(), "0.30000000000000004");
    }

    #[test]
    fn every_format_gives_the_same_rows() {
        let want = vec![
            vec![Value::from(5.1), Value::from(1.4), Value::from("red")],
            vec![Value::from(6.0), Value::Null, Value::from("blue")],
        ];
        let payloads: [(&str, Format); 8] = [
            ("5.1,1.4,red\n6,,blue\n", Format::Csv),
            ("5.1,1.4,red\r\n6,,blue", Format::Csv),
            ("color,sepal,petal\nred,5.1,1.4\nblue,6,\n", Format::Csv),
            (
                r#"{"instances": [[5.1, 1.4, "red"], [6, null, "blue"]]}"#,
                Format::Json,
            ),
            (
                r#"{"instances": [{"features": [5.1, 1.4, "red"]}, {"features": [6, null, "blue"]}]}"#,
                Format::Json,
            ),
            (
                r#"[{"sepal": 5.1, "petal": 1.4, "color": "red", "label": 1}, {"color": "blue", "sepal": 6, "petal": null}]"#,
                Format::Json,
            ),
            (
                "[5.1, 1.4, \"red\"]\n\n{\"sepal\": 6, \"petal\": null, \"color\": \"blue\"}\n",
                Format::JsonLines,
            ),
            (
                "{\"features\": [5.1, 1.4, \"red\"]}\n[6, null, \"blue\"]",
                Format::JsonLines,
            ),
        ];
        for (body, format) in payloads {
            let df = rows(body.as_bytes(), format, &features()).unwrap_or_else(|e| {
                panic!("{body}: {e}");
            });
            assert_eq!(cells(&df), want, "{body}");
            let names: Vec<&str> = df.columns().iter().map(|c| c.name().as_str()).collect();
            assert_eq!(names, ["sepal", "petal", "color"]);
        }
        // One row alone, as a bare list.
        let one = rows(br#"[5.1, 1.4, "red"]"#, Format::Json, &features()).unwrap();
        assert_eq!(cells(&one), want[..1]);
    }

    #[test]
    fn bad_payloads_name_the_row_and_what_the_model_takes() {
        let cases: [(&str, Format, &str); 9] = [
            (
                "5.1,1.4,red\n6,blue\n",
                Format::Csv,
                "row 2: has 2 values; the model takes 3 (sepal, petal, color)",
            ),
            (
                "sepal,petal,color\n1,2\n",
                Format::Csv,
                "row 1: has 2 values",
            ),
            ("", Format::Csv, "the payload has no rows"),
            (
                "{\"instances\": 3}",
                Format::Json,
                "`instances` is 3: it must be a list of rows",
            ),
            (
                "{\"instances\": [[1, 2, 3], [1, true, 3]]}",
                Format::Json,
                "row 2: `petal` is true",
            ),
            (
                "[{\"sepal\": 1, \"petal\": 2}]",
                Format::Json,
                "row 1: has no value for `color`",
            ),
            (
                "{\"instances\": [[1, 2, 3]",
                Format::Json,
                "the payload is not JSON",
            ),
            ("[1, 2, 3]\n{oops\n", Format::JsonLines, "row 2 is not JSON"),
            (
                "\"text\"",
                Format::Json,
                "row 1: is \"text\": a row is a list of values",
            ),
        ];
        for (body, format, want) in cases {
            let e = rows(body.as_bytes(), format, &features())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{body:?}: {e}");
        }
    }

    #[test]
    fn content_and_accept_types_are_read_as_sagemaker_sends_them() {
        assert_eq!(Format::of_content_type(None).unwrap(), Format::Csv);
        assert_eq!(
            Format::of_content_type(Some("text/csv; charset=utf-8")).unwrap(),
            Format::Csv
        );
        assert_eq!(
            Format::of_content_type(Some("application/JSON")).unwrap(),
            Format::Json
        );
        assert_eq!(
            Format::of_content_type(Some("application/jsonlines")).unwrap(),
            Format::JsonLines
        );
        let e = Format::of_content_type(Some("image/png")).unwrap_err();
        assert!(
            e.to_string()
                .contains("unsupported content type `image/png`"),
            "{e}"
        );
        assert_eq!(Format::of_accept(None, Format::Json).unwrap(), Format::Json);
        assert_eq!(
            Format::of_accept(Some("*/*"), Format::Csv).unwrap(),
            Format::Csv
        );
        assert_eq!(
            Format::of_accept(Some("image/png, application/jsonlines;q=0.5"), Format::Csv).unwrap(),
            Format::JsonLines
        );
        assert!(Format::of_accept(Some("image/png"), Format::Csv).is_err());
    }

    #[test]
    fn answers_are_written_in_the_accept_type() {
        let answers = DataFrame::new(
            2,
            vec![
                Column::new("predicted_label".into(), ["setosa", "a,b"]),
                Column::new("probability".into(), [0.875, 1.0]),
            ],
        )
        .unwrap();
        let csv = answer(&answers, Format::Csv).unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "setosa,0.875\n\"a,b\",1.0\n"
        );
        let json: Value = serde_json::from_slice(&answer(&answers, Format::Json).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"predictions": [
                {"predicted_label": "setosa", "probability": 0.875},
                {"predicted_label": "a,b", "probability": 1.0}
            ]})
        );
        let lines = String::from_utf8(answer(&answers, Format::JsonLines).unwrap()).unwrap();
        assert_eq!(
            lines,
            "{\"predicted_label\":\"setosa\",\"probability\":0.875}\n{\"predicted_label\":\"a,b\",\"probability\":1.0}\n"
        );
    }
}
