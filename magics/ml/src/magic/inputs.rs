//! A data argument (a frame, a .csv or .parquet file, an s3:// object) as a DataFrame.

use std::path::Path;

use polars::prelude::*;
use rustmaker_magics::csv_header::{self};
use rustmaker_magics::data::{self, DataArg, ObjectStore};
use rustmaker_magics::scratch::Scratch;
use rustmaker_magics::{MagicContext, MagicError};

use crate::MlError;

pub(crate) use rustmaker_magics::failed;

/// The options or data given are a data error; a failed fit, a stopped job and the store are
/// the work failing.
impl From<MlError> for MagicError {
    fn from(e: MlError) -> MagicError {
        match e {
            MlError::Input(_) | MlError::Schema(_) => MagicError::Data(e.to_string()),
            MlError::Training(_) | MlError::Stopped | MlError::Store(_) => {
                MagicError::Failed(e.to_string())
            }
        }
    }
}

/// A debugger misconfiguration is in the options given; unreadable tensors are a failure.
impl From<crate::debugger::DebuggerError> for MagicError {
    fn from(e: crate::debugger::DebuggerError) -> MagicError {
        MlError::from(e).into()
    }
}

/// A CSV whose rows do not all have the first line's number of fields is refused with the line.
fn check_csv_shape(path: &Path, header: bool) -> Result<(), MagicError> {
    let first = if header {
        "the header"
    } else {
        "the first line"
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_path(path)
        .map_err(|e| failed(format!("cannot read {}: {e}", path.display())))?;
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let detail = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("line {line} has {len} fields where {first} has {expected_len}")
                    }
                    _ => format!("line {line}: {e}"),
                };
                return Err(failed(format!(
                    "{} is a malformed CSV: {detail}; fix that row (or quote a field that holds commas)",
                    path.display()
                )));
            }
        }
    }
}

/// Reads a .csv or .parquet file. A CSV's header is `header` when given, else sniffed; the
/// choice is told on `ctx` when sniffed. A CSV without header has columns `_c0`, `_c1`, ….
fn read_file(
    path: &Path,
    header: Option<bool>,
    ctx: &mut dyn MagicContext,
) -> Result<DataFrame, MagicError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let frame = match ext.as_str() {
        "csv" => {
            let choice = csv_header::choose(path, header)?;
            check_csv_shape(path, choice.header)?;
            if !choice.forced {
                ctx.stdout(&format!("{}: {choice}.\n", path.display()));
            }
            CsvReadOptions::default()
                .with_has_header(choice.header)
                .with_infer_schema_length(Some(10_000))
                .try_into_reader_with_file_path(Some(path.to_owned()))
                .and_then(|r| r.finish())
                .and_then(|mut frame| {
                    if !choice.header {
                        let names: Vec<String> =
                            (0..frame.width()).map(|i| format!("_c{i}")).collect();
                        frame.set_column_names(&names)?;
                    }
                    Ok(frame)
                })
        }
        "parquet" => std::fs::File::open(path)
            .map_err(PolarsError::from)
            .and_then(|f| ParquetReader::new(f).finish()),
        _ => {
            return Err(failed(format!(
                "{} is neither .csv nor .parquet",
                path.display()
            )))
        }
    };
    frame.map_err(|e| failed(format!("cannot read {}: {e}", path.display())))
}

/// A data source: a frame of the kernel, a .csv or .parquet file, or an s3:// object; with the
/// URI the experiment store records for it.
pub fn load(
    source: &str,
    header: Option<bool>,
    store: &dyn ObjectStore,
    scratch: &Scratch,
    ctx: &mut dyn MagicContext,
) -> Result<(DataFrame, String), MagicError> {
    match data::resolve(source, store, scratch.path(), ctx, ".csv or .parquet")? {
        DataArg::Frame { name, frame } => Ok((frame, format!("frame:{name}"))),
        DataArg::File { path, uri } => Ok((read_file(&path, header, ctx)?, uri)),
    }
}
