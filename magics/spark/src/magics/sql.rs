//! `%%sql`: the code that runs a query in the session's language and sends the rows back,
//! and the decoding of those rows into a polars DataFrame with Spark's types.
//!
//! PySpark sessions send the result as an Arrow IPC stream (exact types, no per-row JSON);
//! when pyarrow is missing, and in Scala sessions, rows come as JSON lines after the schema.
//! R sessions use Livy's `sql` statement kind, whose `application/json` output carries the
//! schema and the rows.

use std::io::Cursor;

use base64::Engine as _;
use rustmaker_magics::polars::prelude::*;
use serde_json::{Map, Value};

use super::code_literal;
use crate::livy::Kind;
use rustmaker_magics::MagicError;

pub const ARROW_MARK: &str = "RUSTMAKER-ARROW ";
pub const JSON_MARK: &str = "RUSTMAKER-JSON ";

/// Which rows to bring back (sparkmagic's `-m`, `-n`, `-r`).
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    pub sample_fraction: Option<f64>,
    /// `None`: every row.
    pub max_rows: Option<u64>,
}

/// The statement that runs `query` and prints the rows, and the statement kind to send it as.
pub fn query_code(
    query: &str,
    kind: Kind,
    sampling: &Sampling,
) -> Result<(String, &'static str), MagicError> {
    match kind {
        Kind::PySpark => {
            let mut code = format!("_rm_df = spark.sql({})\n", code_literal(query));
            if let Some(f) = sampling.sample_fraction {
                code.push_str(&format!("_rm_df = _rm_df.sample(False, {f})\n"));
            }
            if let Some(n) = sampling.max_rows {
                code.push_str(&format!("_rm_df = _rm_df.limit({n})\n"));
            }
            code.push_str(&format!(
                r#"def _rm_send(df):
    import base64, json
    try:
        import pyarrow as pa
        from pyspark.sql.pandas.types import to_arrow_schema
        schema = to_arrow_schema(df.schema)
        batches = df._collect_as_arrow()
    except (ImportError, AttributeError, TypeError):
        print({json_mark:?} + df.schema.json())
        for row in df.toJSON().collect():
            print(row)
        return
    table = pa.Table.from_batches(batches) if batches else schema.empty_table()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    print({arrow_mark:?} + base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii"))
_rm_send(_rm_df)
del _rm_df, _rm_send"#,
                json_mark = JSON_MARK,
                arrow_mark = ARROW_MARK
            ));
            Ok((code, "pyspark"))
        }
        Kind::Spark => {
            let mut code = format!("val _rm_df0 = spark.sql({})\n", code_literal(query));
            let mut expr = "_rm_df0".to_owned();
            if let Some(f) = sampling.sample_fraction {
                expr = format!("{expr}.sample(false, {f})");
            }
            if let Some(n) = sampling.max_rows {
                expr = format!("{expr}.limit({n})");
            }
            code.push_str(&format!(
                "val _rm_df = {expr}\nprintln({:?} + _rm_df.schema.json)\n_rm_df.toJSON.collect.foreach(println)",
                JSON_MARK
            ));
            Ok((code, "spark"))
        }
        Kind::Sql | Kind::SparkR => {
            if sampling.sample_fraction.is_some() {
                return Err(MagicError::usage(
                    "sql",
                    "`-m sample` needs a pyspark or scala session; use `-m take`",
                ));
            }
            let mut q = query.trim().trim_end_matches(';').to_owned();
            if let Some(n) = sampling.max_rows {
                q = format!("SELECT * FROM ({q}) AS _rm_q LIMIT {n}");
            }
            Ok((q, "sql"))
        }
    }
}

/// Why a statement's output is not a table. The output comes from the Spark side, so each
/// kind says what it printed instead.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error("the statement returned no rows (no text/plain output)")]
    NoOutput,
    #[error("the Arrow result is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("the result cannot be made a frame: {0}")]
    Frame(#[from] PolarsError),
    #[error("the result is not the JSON Spark writes: {0}")]
    Json(String),
    #[error("the statement did not print a result table; it printed: {0}")]
    NotATable(String),
}

impl From<ResultError> for MagicError {
    fn from(e: ResultError) -> MagicError {
        rustmaker_magics::service_error(e)
    }
}

/// Decodes what the statement produced: its `text/plain` (Arrow or JSON lines) or its
/// `application/json` (Livy's sql kind).
pub fn decode(data: &Map<String, Value>) -> Result<DataFrame, ResultError> {
    if let Some(json) = data.get("application/json") {
        let schema = &json["schema"];
        let rows = json["data"].as_array().cloned().unwrap_or_default();
        let fields = schema_fields(schema)?;
        let records: Vec<Map<String, Value>> = rows
            .into_iter()
            .map(|row| {
                let values = row.as_array().cloned().unwrap_or_default();
                fields
                    .iter()
                    .zip(values)
                    .map(|((name, _), v)| (name.clone(), v))
                    .collect()
            })
            .collect();
        return frame_from_records(&fields, &records);
    }
    let text = data
        .get("text/plain")
        .and_then(Value::as_str)
        .ok_or(ResultError::NoOutput)?;
    if let Some(pos) = text.find(ARROW_MARK) {
        let b64 = text[pos + ARROW_MARK.len()..].trim();
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64)?;
        return Ok(IpcStreamReader::new(Cursor::new(bytes)).finish()?);
    }
    if let Some(pos) = text.find(JSON_MARK) {
        let mut lines = text[pos + JSON_MARK.len()..].lines();
        let schema: Value = serde_json::from_str(lines.next().unwrap_or(""))
            .map_err(|e| ResultError::Json(format!("the schema line: {e}")))?;
        let fields = schema_fields(&schema)?;
        let records = lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<Map<String, Value>>(l).map_err(|e| {
                    ResultError::Json(format!("a row is not a JSON object ({e}): {l}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        return frame_from_records(&fields, &records);
    }
    Err(ResultError::NotATable(text.chars().take(300).collect()))
}

/// (name, Spark type) for each field of a Spark StructType in JSON.
fn schema_fields(schema: &Value) -> Result<Vec<(String, Value)>, ResultError> {
    schema["fields"]
        .as_array()
        .ok_or_else(|| ResultError::Json(format!("the schema has no fields: {schema}")))?
        .iter()
        .map(|f| {
            let name = f["name"]
                .as_str()
                .ok_or_else(|| ResultError::Json("a schema field has no name".into()))?;
            Ok((name.to_owned(), f["type"].clone()))
        })
        .collect()
}

/// Builds typed columns from JSON rows, following the Spark schema. Missing keys are nulls
/// (Spark's `toJSON` leaves null fields out).
fn frame_from_records(
    fields: &[(String, Value)],
    rows: &[Map<String, Value>],
) -> Result<DataFrame, ResultError> {
    let mut columns = Vec::with_capacity(fields.len());
    for (name, spark_type) in fields {
        let values = rows.iter().map(|r| r.get(name).filter(|v| !v.is_null()));
        let ty = spark_type.as_str().unwrap_or("complex");
        let pname = PlSmallStr::from(name.as_str());
        let series: Series = match ty {
            "long" | "integer" | "short" | "byte" => {
                let v: Int64Chunked = values.map(|v| v.and_then(Value::as_i64)).collect();
                let s = v.with_name(pname).into_series();
                let target = match ty {
                    "integer" => DataType::Int32,
                    "short" => DataType::Int16,
                    "byte" => DataType::Int8,
                    _ => DataType::Int64,
                };
                s.cast(&target)?
            }
            "double" | "float" => {
                let v: Float64Chunked = values
                    .map(|v| {
                        v.and_then(|v| {
                            v.as_f64().or_else(|| match v.as_str() {
                                Some("NaN") => Some(f64::NAN),
                                Some("Infinity") => Some(f64::INFINITY),
                                Some("-Infinity") => Some(f64::NEG_INFINITY),
                                _ => None,
                            })
                        })
                    })
                    .collect();
                let s = v.with_name(pname).into_series();
                if ty == "float" {
                    s.cast(&DataType::Float32)?
                } else {
                    s
                }
            }
            "boolean" => {
                let v: BooleanChunked = values.map(|v| v.and_then(Value::as_bool)).collect();
                v.with_name(pname).into_series()
            }
            "string" => {
                let v: StringChunked = values.map(|v| v.and_then(Value::as_str)).collect();
                v.with_name(pname).into_series()
            }
            "date" => {
                let v: Int32Chunked = values
                    .map(|v| v.and_then(Value::as_str).and_then(parse_date))
                    .collect();
                v.with_name(pname).into_date().into_series()
            }
            "timestamp" | "timestamp_ntz" => {
                let utc = ty == "timestamp";
                let v: Int64Chunked = values
                    .map(|v| {
                        v.and_then(Value::as_str)
                            .and_then(|s| parse_timestamp(s, utc))
                    })
                    .collect();
                let tz = utc.then_some(TimeZone::UTC);
                v.with_name(pname)
                    .into_datetime(TimeUnit::Microseconds, tz)
                    .into_series()
            }
            t if t.starts_with("decimal(") => {
                let (precision, scale) = parse_decimal_type(t)?;
                let v: Int128Chunked = values
                    .map(|v| v.and_then(|v| decimal_units(v, scale)))
                    .collect();
                v.with_name(pname)
                    .into_decimal(precision, scale)?
                    .into_series()
            }
            _ => {
                // Arrays, maps, structs and binary stay as their JSON text.
                let v: StringChunked = values
                    .map(|v| {
                        v.map(|v| {
                            v.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| v.to_string())
                        })
                    })
                    .collect();
                v.with_name(pname).into_series()
            }
        };
        columns.push(series.into_column());
    }
    Ok(DataFrame::new(rows.len(), columns)?)
}

fn parse_date(s: &str) -> Option<i32> {
    let d = chrono::NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    Some((d - epoch).num_days() as i32)
}

/// Microseconds since the epoch; `utc` timestamps carry an offset, NTZ ones do not.
fn parse_timestamp(s: &str, utc: bool) -> Option<i64> {
    if utc {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Some(t.timestamp_micros());
        }
        if let Ok(t) = chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
            return Some(t.timestamp_micros());
        }
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
        .map(|t| t.and_utc().timestamp_micros())
}

fn parse_decimal_type(t: &str) -> Result<(usize, usize), ResultError> {
    let inner = t.trim_start_matches("decimal(").trim_end_matches(')');
    let (p, s) = inner
        .split_once(',')
        .ok_or_else(|| ResultError::Json(format!("bad decimal type {t}")))?;
    Ok((
        p.trim()
            .parse()
            .map_err(|_| ResultError::Json(format!("bad decimal type {t}")))?,
        s.trim()
            .parse()
            .map_err(|_| ResultError::Json(format!("bad decimal type {t}")))?,
    ))
}

/// A JSON number (or string) as an integer count of 10^-scale units, without going through f64.
fn decimal_units(v: &Value, scale: usize) -> Option<i128> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text.as_str(), 0),
    };
    let negative = mantissa.starts_with('-');
    let mantissa = mantissa.trim_start_matches(['-', '+']);
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let shift = scale as i32 - frac.len() as i32 + exp;
    let mut units: i128 = digits.parse().ok()?;
    if shift >= 0 {
        units = units.checked_mul(10i128.checked_pow(shift as u32)?)?;
    } else {
        units /= 10i128.checked_pow((-shift) as u32)?;
    }
    Some(if negative { -units } else { units })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_json_lines_with_spark_types_and_nulls() {
        let schema = json!({"type": "struct", "fields": [
            {"name": "i", "type": "integer", "nullable": true, "metadata": {}},
            {"name": "d", "type": "double", "nullable": true, "metadata": {}},
            {"name": "s", "type": "string", "nullable": true, "metadata": {}},
            {"name": "b", "type": "boolean", "nullable": true, "metadata": {}},
            {"name": "dt", "type": "date", "nullable": true, "metadata": {}},
            {"name": "ts", "type": "timestamp", "nullable": true, "metadata": {}},
            {"name": "m", "type": "decimal(10,2)", "nullable": true, "metadata": {}},
        ]});
        let text = format!(
            "noise\n{JSON_MARK}{schema}\n{}\n{}\n",
            r#"{"i":1,"d":1.5,"s":"a","b":true,"dt":"2024-02-29","ts":"2024-02-29T12:00:00.000Z","m":12.34}"#,
            r#"{"i":2}"#
        );
        let mut data = Map::new();
        data.insert("text/plain".into(), Value::String(text));
        let df = decode(&data).unwrap();
        assert_eq!(df.shape(), (2, 7));
        let dtypes: Vec<String> = df.dtypes().iter().map(|d| d.to_string()).collect();
        assert_eq!(dtypes[0], "i32");
        assert_eq!(dtypes[4], "date");
        assert!(dtypes[5].starts_with("datetime[μs"), "{dtypes:?}");
        assert!(dtypes[6].starts_with("decimal"), "{dtypes:?}");
        assert_eq!(df.column("s").unwrap().null_count(), 1);
        assert_eq!(df.column("m").unwrap().get(0).unwrap().to_string(), "12.34");
    }

    #[test]
    fn decodes_livy_sql_kind_output() {
        let mut data = Map::new();
        data.insert(
            "application/json".into(),
            json!({
                "schema": {"type": "struct", "fields": [
                    {"name": "a", "type": "long", "nullable": true, "metadata": {}},
                    {"name": "b", "type": "string", "nullable": true, "metadata": {}}]},
                "data": [[1, "x"], [null, null]]
            }),
        );
        let df = decode(&data).unwrap();
        assert_eq!(df.shape(), (2, 2));
        assert_eq!(df.column("a").unwrap().dtype(), &DataType::Int64);
        assert_eq!(df.column("b").unwrap().null_count(), 1);
    }

    #[test]
    fn decimal_units_are_exact() {
        assert_eq!(decimal_units(&json!(12.34), 2), Some(1234));
        assert_eq!(decimal_units(&json!("-0.5"), 3), Some(-500));
        assert_eq!(decimal_units(&json!(1e3), 1), Some(10000));
        assert_eq!(
            decimal_units(&json!("123456789012345678.12"), 2),
            Some(12345678901234567812)
        );
    }

    #[test]
    fn reports_output_that_is_no_table() {
        let mut data = Map::new();
        data.insert("text/plain".into(), Value::String("hello".into()));
        assert!(decode(&data)
            .unwrap_err()
            .to_string()
            .contains("did not print a result table"));
    }

    #[test]
    fn sql_kind_limits_in_sql() {
        let s = Sampling {
            sample_fraction: None,
            max_rows: Some(5),
        };
        let (code, kind) = query_code("select 1;", Kind::SparkR, &s).unwrap();
        assert_eq!(kind, "sql");
        assert_eq!(code, "SELECT * FROM (select 1) AS _rm_q LIMIT 5");
    }
}
