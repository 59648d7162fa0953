//! `%%send_to_spark`: the statement that recreates a kernel value in the Spark session, a
//! string as a string variable, a frame as a Spark DataFrame with the frame's types.

use rustmaker_magics::polars::prelude::*;
use rustmaker_magics::table::cell_json;
use serde_json::{Map, Value};

use super::code_literal;
use crate::livy::Kind;
use rustmaker_magics::MagicError;

/// The statement (and its kind) that binds `name` to `value` in the session.
pub fn string_code(
    name: &str,
    value: &str,
    kind: Kind,
) -> Result<(String, &'static str), MagicError> {
    let literal = code_literal(value);
    match kind {
        Kind::PySpark => Ok((format!("{name} = {literal}"), "pyspark")),
        Kind::Spark => Ok((format!("val {name} = {literal}"), "spark")),
        Kind::SparkR => Ok((format!("{name} <- {literal}"), "sparkr")),
        Kind::Sql => Err(MagicError::usage(
            "send_to_spark",
            "a sql session has no variables: send to a pyspark, scala or r session",
        )),
    }
}

/// Spark SQL DDL for a polars type.
fn spark_type(dtype: &DataType) -> String {
    match dtype {
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 | DataType::UInt8 => "SMALLINT".into(),
        DataType::Int32 | DataType::UInt16 => "INT".into(),
        DataType::Int64 | DataType::UInt32 => "BIGINT".into(),
        DataType::UInt64 => "DECIMAL(20,0)".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Date => "DATE".into(),
        DataType::Datetime(_, Some(_)) => "TIMESTAMP".into(),
        DataType::Datetime(_, None) => "TIMESTAMP_NTZ".into(),
        DataType::Decimal(p, s) => format!("DECIMAL({},{})", p, s),
        _ => "STRING".into(),
    }
}

/// The frame as a DDL schema and JSON lines (at most `max_rows` rows).
fn frame_json(frame: &DataFrame, max_rows: usize) -> (String, Vec<String>) {
    let ddl = frame
        .columns()
        .iter()
        .map(|c| {
            format!(
                "`{}` {}",
                c.name().replace('`', "``"),
                spark_type(c.dtype())
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let rows = frame.height().min(max_rows);
    let mut lines = Vec::with_capacity(rows);
    for i in 0..rows {
        let mut record = Map::new();
        for c in frame.columns() {
            let v = c.get(i).unwrap_or(AnyValue::Null);
            let json = match (&v, c.dtype()) {
                // Spark's JSON reader wants ISO timestamps.
                (
                    AnyValue::Datetime(..) | AnyValue::DatetimeOwned(..),
                    DataType::Datetime(_, tz),
                ) => {
                    let text = v.to_string().replace(' ', "T");
                    Value::String(
                        if tz.is_some() && !text.ends_with('Z') && !text.contains('+') {
                            format!("{}Z", text.trim_end_matches(|c: char| c.is_alphabetic()))
                        } else {
                            text
                        },
                    )
                }
                _ => cell_json(&v),
            };
            record.insert(c.name().to_string(), json);
        }
        lines.push(Value::Object(record).to_string());
    }
    (ddl, lines)
}

/// The statement that creates Spark DataFrame `name` from `frame`.
pub fn frame_code(
    name: &str,
    frame: &DataFrame,
    kind: Kind,
    max_rows: usize,
) -> Result<(String, &'static str), MagicError> {
    let (ddl, lines) = frame_json(frame, max_rows);
    let ddl_lit = code_literal(&ddl);
    let rows_lit = code_literal(&lines.join("\n"));
    match kind {
        Kind::PySpark => Ok((
            format!(
                "{name} = spark.read.schema({ddl_lit}).json(spark.sparkContext.parallelize({rows_lit}.split(\"\\n\") if {rows_lit} else [], 1))"
            ),
            "pyspark",
        )),
        Kind::Spark => Ok((
            format!(
                "import spark.implicits._\nval {name} = spark.read.schema({ddl_lit}).json(Seq({rows_lit}.split(\"\\n\").filter(_.nonEmpty): _*).toDS)"
            ),
            "spark",
        )),
        Kind::SparkR | Kind::Sql => Err(MagicError::usage(
            "send_to_spark",
            "frames can be sent to pyspark and scala sessions; for R, send the data as a string (-t str)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_becomes_ddl_and_json_rows() {
        let df = df!("a" => [Some(1i64), None], "b" => ["x", "y\"z"]).unwrap();
        let (ddl, rows) = frame_json(&df, 10);
        assert_eq!(ddl, "`a` BIGINT, `b` STRING");
        assert_eq!(rows, vec![r#"{"a":1,"b":"x"}"#, r#"{"a":null,"b":"y\"z"}"#]);
        let (code, kind) = frame_code("t", &df, Kind::PySpark, 1).unwrap();
        assert_eq!(kind, "pyspark");
        assert!(
            code.starts_with("t = spark.read.schema(\"`a` BIGINT, `b` STRING\")"),
            "{code}"
        );
        assert!(string_code("s", "v", Kind::Sql).is_err());
        assert_eq!(
            string_code("s", "a\"b", Kind::PySpark).unwrap().0,
            "s = \"a\\\"b\""
        );
    }
}
