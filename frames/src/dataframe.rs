//! polars DataFrames over the bridge (feature `polars`): conversions both ways, and the
//! display that makes a DataFrame ending a cell render as the kernel's table.

use polars::prelude::{Column as PlColumn, DataFrame, DataType, NamedFrom, Series};

use crate::columns::{self, Column, Columns};
use crate::FrameError;

/// Rows a DataFrame ending a cell shows, as `%frames show` does.
pub const SHOWN_ROWS: usize = 50;

/// The MIME type of a frame file for the kernel to render; its text is `rows\tpath`.
pub const FRAME_MIME: &str = "application/x-rustmaker-frame";

/// Column vectors as a DataFrame.
pub fn to_polars(frame: Columns) -> Result<DataFrame, FrameError> {
    frame.check()?;
    let height = frame.height();
    let columns: Vec<PlColumn> = frame
        .into_inner()
        .into_iter()
        .map(|(name, column)| {
            let name = name.as_str().into();
            match column {
                Column::Float(v) => Series::new(name, v),
                Column::Int(v) => Series::new(name, v),
                Column::Bool(v) => Series::new(name, v),
                Column::Text(v) => Series::new(name, v),
            }
            .into()
        })
        .collect();
    Ok(DataFrame::new(height, columns)?)
}

/// A DataFrame as column vectors: integers as i64, floats and decimals as f64, dates and
/// times as ISO text; other types (lists, structs, binary) are refused by name.
pub fn from_polars(df: &DataFrame) -> Result<Columns, FrameError> {
    let mut frame = Columns::new();
    for column in df.columns() {
        let s = column.as_materialized_series();
        let name = s.name().as_str();
        let dtype = s.dtype();
        let refused = || FrameError::Type {
            column: name.to_owned(),
            dtype: dtype.to_string(),
        };
        let converted = match dtype {
            DataType::Boolean => Column::Bool(s.bool()?.iter().collect()),
            DataType::String => {
                Column::Text(s.str()?.iter().map(|v| v.map(str::to_owned)).collect())
            }
            DataType::UInt64 => {
                let mut values = Vec::with_capacity(s.len());
                for v in s.u64()?.iter() {
                    values.push(match v {
                        Some(v) => Some(i64::try_from(v).map_err(|_| refused())?),
                        None => None,
                    });
                }
                Column::Int(values)
            }
            d if d.is_integer() => Column::Int(s.cast(&DataType::Int64)?.i64()?.iter().collect()),
            d if d.is_numeric() => {
                Column::Float(s.cast(&DataType::Float64)?.f64()?.iter().collect())
            }
            d if d.is_temporal() => Column::Text(
                s.cast(&DataType::String)
                    .map_err(|_| refused())?
                    .str()?
                    .iter()
                    .map(|v| v.map(str::to_owned))
                    .collect(),
            ),
            _ => return Err(refused()),
        };
        frame.push(name, converted);
    }
    Ok(frame)
}

/// Lets a DataFrame that ends a cell render as the kernel's table (HTML and Table Schema),
/// through evcxr's `evcxr_display` convention; the kernel brings it into scope.
pub trait FrameDisplay {
    fn evcxr_display(&self);
}

impl FrameDisplay for DataFrame {
    fn evcxr_display(&self) {
        if let Err(e) = show(self) {
            println!("EVCXR_BEGIN_CONTENT text/plain\n{self:?}\n({e})\nEVCXR_END_CONTENT");
        }
    }
}

fn show(df: &DataFrame) -> Result<(), FrameError> {
    let socket = std::env::var_os(crate::SOCKET_ENV).ok_or(FrameError::NoKernel)?;
    let folder = std::path::Path::new(&socket)
        .parent()
        .unwrap_or(std::path::Path::new("."));
    let path = crate::exchange_file(folder, "show");
    columns::write_file(&from_polars(&df.head(Some(SHOWN_ROWS)))?, &path)?;
    println!(
        "EVCXR_BEGIN_CONTENT {FRAME_MIME}\n{}\t{}\nEVCXR_END_CONTENT",
        df.height(),
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataframes_convert_both_ways() {
        let frame = Columns::new()
            .with("x", vec![Some(1.5), None])
            .with("n", vec![1i64, -2])
            .with("ok", vec![true, false])
            .with("word", vec![Some("a"), None]);
        let df = to_polars(frame.clone()).unwrap();
        assert_eq!(df.shape(), (2, 4));
        assert_eq!(df.column("n").unwrap().dtype(), &DataType::Int64);
        assert_eq!(from_polars(&df).unwrap(), frame);
    }

    #[test]
    fn other_integer_and_float_types_widen_and_what_does_not_fit_is_refused() {
        let df = DataFrame::new(
            2,
            vec![
                Series::new("small".into(), [1i32, 2]).into(),
                Series::new("f".into(), [0.5f32, 1.0]).into(),
                Series::new("big".into(), [1u64, u64::MAX]).into(),
            ],
        )
        .unwrap();
        let e = from_polars(&df).unwrap_err().to_string();
        assert!(e.contains("column `big` has type u64"), "{e}");
        let ok = from_polars(&df.drop("big").unwrap()).unwrap();
        assert_eq!(ok.int("small").unwrap(), &[Some(1), Some(2)]);
        assert_eq!(ok.float("f").unwrap(), &[Some(0.5), Some(1.0)]);
        let uneven = Columns::new()
            .with("a", vec![1.0])
            .with("b", vec![1.0, 2.0]);
        assert!(matches!(to_polars(uneven), Err(FrameError::Shape(_))));
    }
}
