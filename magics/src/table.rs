//! How a DataFrame is shown in the notebook: `text/plain` (polars' own table), `text/html`
//! (what JupyterLab renders) and `application/vnd.dataresource+json` (Table Schema, for
//! front ends with a data explorer). Every engine renders tables through here.

use polars::prelude::{AnyValue, DataFrame, DataType};
use serde_json::{json, Map, Value};

use crate::context::MimeBundle;

/// A MIME bundle for `df`, showing at most `max_rows` rows (the text says how many there are).
pub fn frame_bundle(df: &DataFrame, max_rows: usize) -> MimeBundle {
    let shown = df.height().min(max_rows);
    // polars' own text of the whole frame, which says its shape.
    bundle_of(&df.head(Some(shown)), df.height(), format!("{df}"))
}

/// A MIME bundle for the first rows of a frame of `rows` rows (a Rust cell's DataFrame,
/// whose head alone reaches the kernel).
pub fn head_bundle(head: &DataFrame, rows: usize) -> MimeBundle {
    bundle_of(head, rows, format!("{head}"))
}

/// The bundle of `df`, the first rows of a frame of `rows` rows, with `text` as its plain
/// text.
fn bundle_of(df: &DataFrame, rows: usize, text: String) -> MimeBundle {
    let shown = df.height();
    let columns = df.columns();
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();

    let mut html = String::from("<table class=\"dataframe\" border=\"1\">\n<thead><tr>");
    for (name, col) in names.iter().zip(df.columns()) {
        html.push_str(&format!(
            "<th title=\"{}\">{}</th>",
            escape(&col.dtype().to_string()),
            escape(name)
        ));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    let mut records = Vec::with_capacity(shown);
    for row in 0..shown {
        html.push_str("<tr>");
        let mut record = Map::new();
        for (name, col) in names.iter().zip(columns) {
            let value = col.get(row).unwrap_or(AnyValue::Null);
            html.push_str(&format!("<td>{}</td>", escape(&cell_text(&value))));
            record.insert(name.clone(), cell_json(&value));
        }
        html.push_str("</tr>\n");
        records.push(Value::Object(record));
    }
    html.push_str("</tbody>\n</table>\n");
    let summary = format!(
        "{} rows × {} columns{}",
        rows,
        df.width(),
        if shown < rows {
            format!(" (showing the first {shown})")
        } else {
            String::new()
        }
    );
    html.push_str(&format!("<p>{}</p>", escape(&summary)));

    let fields: Vec<Value> = df
        .columns()
        .iter()
        .map(|c| json!({"name": c.name().as_str(), "type": table_schema_type(c.dtype())}))
        .collect();
    let resource = json!({"schema": {"fields": fields}, "data": records});
    MimeBundle::text(text)
        .with("text/html", Value::String(html))
        .with("application/vnd.dataresource+json", resource)
}

/// The Table Schema type name of a polars type.
fn table_schema_type(dtype: &DataType) -> &'static str {
    match dtype {
        d if d.is_integer() => "integer",
        d if d.is_float() => "number",
        DataType::Decimal(..) => "number",
        DataType::Boolean => "boolean",
        DataType::Date => "date",
        DataType::Datetime(..) => "datetime",
        DataType::Time => "time",
        DataType::Duration(_) => "duration",
        DataType::String => "string",
        _ => "any",
    }
}

/// A cell as text: strings without quotes, nulls empty.
pub fn cell_text(value: &AnyValue) -> String {
    match value {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => (*s).to_owned(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// A cell as JSON: numbers, booleans and nulls as themselves, everything else as text.
pub fn cell_json(value: &AnyValue) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(*b),
        AnyValue::Int8(v) => json!(v),
        AnyValue::Int16(v) => json!(v),
        AnyValue::Int32(v) => json!(v),
        AnyValue::Int64(v) => json!(v),
        AnyValue::UInt8(v) => json!(v),
        AnyValue::UInt16(v) => json!(v),
        AnyValue::UInt32(v) => json!(v),
        AnyValue::UInt64(v) => json!(v),
        AnyValue::Float32(v) if v.is_finite() => json!(v),
        AnyValue::Float64(v) if v.is_finite() => json!(v),
        other => Value::String(cell_text(other)),
    }
}

/// Text made safe inside HTML elements and attribute values (quoted with `"` or `'`).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    #[test]
    fn renders_html_dataresource_and_limits_rows() {
        let df = df!(
            "n" => [Some(1i64), None, Some(3)],
            "s" => ["<a>", "b", "c"],
            "f" => [1.5f64, 2.0, f64::NAN],
        )
        .unwrap();
        let b = frame_bundle(&df, 2).0;
        let html = b["text/html"].as_str().unwrap();
        assert!(html.contains("<td>&lt;a&gt;</td>"), "{html}");
        assert!(html.contains("3 rows × 3 columns (showing the first 2)"));
        let res = &b["application/vnd.dataresource+json"];
        assert_eq!(
            res["schema"]["fields"][0],
            json!({"name": "n", "type": "integer"})
        );
        assert_eq!(res["schema"]["fields"][2]["type"], "number");
        assert_eq!(res["data"].as_array().unwrap().len(), 2);
        assert_eq!(res["data"][1], json!({"n": null, "s": "b", "f": 2.0}));
        assert!(b["text/plain"].as_str().unwrap().contains("shape: (3, 3)"));
    }
}
