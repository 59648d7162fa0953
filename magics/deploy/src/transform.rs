//! Batch transform as SageMaker runs one: a model over every file of an input (a file or a
//! folder), each file split into records (`SplitType` Line or None), records sent one at a
//! time or packed into requests of at most `MaxPayloadInMB` (`BatchStrategy` SingleRecord or
//! MultiRecord), and the answers written to `<input name>.out` (`AssembleWith` Line or None).
//! `DataProcessing` selects each record's input (`InputFilter`), joins the answer to it
//! (`JoinSource` Input) and selects what is kept (`OutputFilter`), with the JSONPath subset
//! SageMaker documents: `$`, `$[1:]`, `$[0,3,-1]`, `$.key` and `$['a','b']`.

use std::io::Write;
use std::path::{Path, PathBuf};

use rustmaker_magics::services::ServedModel;
use serde_json::Value;

use crate::payload::{self, Format};
use crate::DeployError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitType {
    Line,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStrategy {
    SingleRecord,
    MultiRecord,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssembleWith {
    Line,
    None,
}

/// A transform job's settings, in SageMaker's terms.
#[derive(Debug, Clone)]
pub struct Options {
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub split: SplitType,
    pub strategy: BatchStrategy,
    pub max_payload_bytes: usize,
    pub assemble: AssembleWith,
    pub input_filter: Option<String>,
    pub join_input: bool,
    pub output_filter: Option<String>,
    /// Set to stop the job between requests (its unfinished output is removed).
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// `CompressionType: Gzip`: each input file is gzip, read whole before it is split.
    pub gzip: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            content_type: None,
            accept: None,
            split: SplitType::Line,
            strategy: BatchStrategy::MultiRecord,
            max_payload_bytes: 6 << 20,
            assemble: AssembleWith::Line,
            input_filter: None,
            join_input: false,
            output_filter: None,
            stop: None,
            gzip: false,
        }
    }
}

/// What a transform did, file by file.
#[derive(Debug, Clone, PartialEq)]
pub struct Transformed {
    pub output: PathBuf,
    pub records: usize,
    pub requests: usize,
}

/// A JSONPath of SageMaker's subset.
#[derive(Debug, Clone, PartialEq)]
enum Selector {
    Whole,
    /// Indices and slices of a list (a CSV record is its list of fields).
    Items(Vec<Item>),
    /// Keys of an object.
    Keys(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Index(i64),
    Slice(Option<i64>, Option<i64>),
}

fn parse_path(text: &str) -> Result<Selector, DeployError> {
    let bad = || {
        DeployError::Config(format!(
            "`{text}` is not a JSONPath this transform takes: use $, $[1:], $[0,2,-1], $.key or $['a','b']"
        ))
    };
    let t = text.trim();
    let rest = t.strip_prefix('$').ok_or_else(bad)?;
    if rest.is_empty() {
        return Ok(Selector::Whole);
    }
    if let Some(key) = rest.strip_prefix('.') {
        if key.is_empty() || !key.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(bad());
        }
        return Ok(Selector::Keys(vec![key.to_owned()]));
    }
    let inner = rest
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(bad)?;
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    if parts
        .iter()
        .all(|p| p.starts_with('\'') || p.starts_with('"'))
    {
        let keys = parts
            .iter()
            .map(|p| {
                p.strip_prefix(['\'', '"'])
                    .and_then(|p| p.strip_suffix(['\'', '"']))
                    .map(str::to_owned)
                    .ok_or_else(bad)
            })
            .collect::<Result<_, _>>()?;
        return Ok(Selector::Keys(keys));
    }
    let number = |s: &str| -> Result<Option<i64>, DeployError> {
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(|_| bad())
        }
    };
    let items = parts
        .iter()
        .map(|p| match p.split_once(':') {
            Some((a, b)) => Ok(Item::Slice(number(a)?, number(b)?)),
            None => number(p)?.map(Item::Index).ok_or_else(bad),
        })
        .collect::<Result<_, _>>()?;
    Ok(Selector::Items(items))
}

impl Selector {
    /// The selected fields of a list, in the path's order.
    fn select<T: Clone>(&self, list: &[T]) -> Result<Vec<T>, String> {
        let n = list.len() as i64;
        let at = |i: i64| if i < 0 { n + i } else { i };
        match self {
            Selector::Whole => Ok(list.to_vec()),
            Selector::Keys(keys) => Err(format!(
                "selects keys {keys:?}, but the record is a list of {n} fields"
            )),
            Selector::Items(items) => {
                let mut out = Vec::new();
                for item in items {
                    match *item {
                        Item::Index(i) => {
                            let j = at(i);
                            if !(0..n).contains(&j) {
                                return Err(format!("has no field {i} (it has {n})"));
                            }
                            out.push(list[j as usize].clone());
                        }
                        Item::Slice(a, b) => {
                            let a = at(a.unwrap_or(0)).clamp(0, n);
                            let b = at(b.unwrap_or(n)).clamp(0, n);
                            out.extend(list[a as usize..b.max(a) as usize].iter().cloned());
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    fn select_json(&self, value: &Value) -> Result<Value, String> {
        match (self, value) {
            (Selector::Whole, v) => Ok(v.clone()),
            (Selector::Keys(keys), Value::Object(map)) => {
                let picked: Vec<Value> = keys
                    .iter()
                    .map(|k| {
                        map.get(k)
                            .cloned()
                            .ok_or_else(|| format!("has no key `{k}`"))
                    })
                    .collect::<Result<_, _>>()?;
                if picked.len() == 1 {
                    Ok(picked.into_iter().next().expect("one key"))
                } else {
                    Ok(Value::Array(picked))
                }
            }
            (Selector::Items(_), Value::Array(list)) => self.select(list).map(Value::Array),
            (_, other) => Err(format!("cannot be selected from {other}")),
        }
    }
}

/// Every file of `input` (the file itself, or a folder's non-hidden files, sorted), each
/// with the name its output takes relative to the output folder.
pub fn input_files(input: &Path) -> Result<Vec<(PathBuf, PathBuf)>, DeployError> {
    let meta = std::fs::metadata(input).map_err(|e| DeployError::io(input, e))?;
    if meta.is_file() {
        let name = input.file_name().map(PathBuf::from).unwrap_or_default();
        return Ok(vec![(input.to_path_buf(), name)]);
    }
    let mut out = Vec::new();
    let mut stack = vec![input.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| DeployError::io(&dir, e))? {
            let path = entry.map_err(|e| DeployError::io(&dir, e))?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(input).unwrap_or(&path).to_path_buf();
                out.push((path, relative));
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(DeployError::Payload(format!(
            "{} holds no files to transform",
            input.display()
        )));
    }
    Ok(out)
}

/// Runs the transform of every file of `input` into `output` (a folder).
pub fn run(
    model: &dyn ServedModel,
    input: &Path,
    output: &Path,
    options: &Options,
) -> Result<Vec<Transformed>, DeployError> {
    let files = input_files(input)?;
    files
        .iter()
        .map(|(file, relative)| {
            let mut name = relative.as_os_str().to_owned();
            name.push(".out");
            transform_file(model, file, &output.join(name), options)
        })
        .collect()
}

struct Plan {
    format: Format,
    accept: Format,
    input_filter: Option<Selector>,
    output_filter: Option<Selector>,
}

/// Transforms one file into `out` (written whole or not at all).
pub fn transform_file(
    model: &dyn ServedModel,
    file: &Path,
    out: &Path,
    options: &Options,
) -> Result<Transformed, DeployError> {
    let format = Format::of_content_type(options.content_type.as_deref())?;
    let plan = Plan {
        format,
        accept: Format::of_accept(options.accept.as_deref(), format)?,
        input_filter: options
            .input_filter
            .as_deref()
            .map(parse_path)
            .transpose()?,
        output_filter: options
            .output_filter
            .as_deref()
            .map(parse_path)
            .transpose()?,
    };
    if (options.join_input || plan.output_filter.is_some()) && plan.accept == Format::Json {
        return Err(DeployError::Config(
            "joining or filtering answers needs one answer a line: set Accept to text/csv or application/jsonlines".into(),
        ));
    }
    let text = std::fs::read(file).map_err(|e| DeployError::io(file, e))?;
    let text = if options.gzip {
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&text[..]), &mut plain)
            .map_err(|e| {
                DeployError::Payload(format!(
                    "{} is not gzip ({e}): set CompressionType to None for uncompressed input",
                    file.display()
                ))
            })?;
        plain
    } else {
        text
    };
    let records: Vec<&[u8]> = match options.split {
        SplitType::None => vec![&text[..]],
        SplitType::Line => text
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .collect(),
    };
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DeployError::io(parent, e))?;
    }
    let partial = out.with_extension("out.partial");
    let written = (|| {
        let mut writer = std::io::BufWriter::new(
            std::fs::File::create(&partial).map_err(|e| DeployError::io(&partial, e))?,
        );
        // The mini-batches first (a record over the limit is refused before any request),
        // then answered a wave at a time on every core, written in their order.
        let mut batches = Vec::new();
        let mut start = 0;
        while start < records.len() {
            let end = match options.strategy {
                BatchStrategy::SingleRecord => start + 1,
                BatchStrategy::MultiRecord => batch_end(&records, start, options.max_payload_bytes),
            };
            let size: usize = records[start..end].iter().map(|r| r.len() + 1).sum();
            if size > options.max_payload_bytes {
                return Err(DeployError::Row {
                    row: start + 1,
                    message: format!(
                        "is {size} bytes, over MaxPayloadInMB ({} bytes): raise MaxPayloadInMB or split the input by line",
                        options.max_payload_bytes
                    ),
                });
            }
            batches.push((start, end));
            start = end;
        }
        // Every core takes the next mini-batch as it finishes one; the answers are written in
        // the batches' order as they come in.
        let cores = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(batches.len())
            .max(1);
        let stopped = || {
            options
                .stop
                .as_ref()
                .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
        };
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed = std::sync::atomic::AtomicBool::new(false);
        let mut write = |answers: &[u8]| -> Result<(), DeployError> {
            writer
                .write_all(answers)
                .map_err(|e| DeployError::io(&partial, e))?;
            if options.assemble == AssembleWith::Line && !answers.ends_with(b"\n") {
                writer
                    .write_all(b"\n")
                    .map_err(|e| DeployError::io(&partial, e))?;
            }
            Ok(())
        };
        let requests = std::thread::scope(|scope| -> Result<usize, DeployError> {
            let (sender, answers) = std::sync::mpsc::channel();
            for _ in 0..cores {
                let sender = sender.clone();
                let (next, failed, batches, records, plan) =
                    (&next, &failed, &batches, &records, &plan);
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= batches.len() || failed.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let answer = if stopped() {
                        Err(DeployError::Stopped)
                    } else {
                        let (start, end) = batches[i];
                        request(model, plan, &records[start..end], options, start)
                    };
                    if answer.is_err() {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    if sender.send((i, answer)).is_err() {
                        return;
                    }
                });
            }
            drop(sender);
            let mut waiting = std::collections::BTreeMap::new();
            let mut written = 0;
            for (i, answer) in answers {
                waiting.insert(i, answer);
                while let Some(answer) = waiting.remove(&written) {
                    if let Err(e) = answer.and_then(|a| write(&a)) {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                        return Err(e);
                    }
                    written += 1;
                }
            }
            // A batch that failed was taken before every one after it was written.
            match waiting.into_values().find_map(Result::err) {
                Some(e) => Err(e),
                None => Ok(written),
            }
        })?;
        writer
            .into_inner()
            .map_err(|e| DeployError::io(&partial, e.into_error()))?
            .sync_all()
            .map_err(|e| DeployError::io(&partial, e))?;
        Ok(requests)
    })();
    let requests = match written {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, out).map_err(|e| DeployError::io(out, e))?;
    Ok(Transformed {
        output: out.to_path_buf(),
        records: records.len(),
        requests,
    })
}

/// The end of the mini-batch from `start`: as many records as fit the payload limit, at
/// least one.
fn batch_end(records: &[&[u8]], start: usize, limit: usize) -> usize {
    let mut size = 0;
    let mut end = start;
    while end < records.len() && (end == start || size + records[end].len() < limit) {
        size += records[end].len() + 1;
        end += 1;
    }
    end
}

fn csv_fields(record: &[u8], row: usize) -> Result<Vec<String>, DeployError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(record);
    match reader.records().next() {
        Some(Ok(r)) => Ok(r.iter().map(str::to_owned).collect()),
        Some(Err(e)) => Err(DeployError::Row {
            row,
            message: format!("is not CSV: {e}"),
        }),
        None => Ok(Vec::new()),
    }
}

fn csv_line(fields: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(&mut out);
        w.write_record(fields).expect("writing to memory");
        w.flush().expect("writing to memory");
    }
    out.pop();
    out
}

/// One request: the records' selected input sent to the model, the answers joined and
/// filtered as asked.
fn request(
    model: &dyn ServedModel,
    plan: &Plan,
    records: &[&[u8]],
    options: &Options,
    first: usize,
) -> Result<Vec<u8>, DeployError> {
    let row_error = |i: usize, m: String| DeployError::Row {
        row: first + i + 1,
        message: m,
    };
    let json_record = |i: usize, r: &[u8]| -> Result<Value, DeployError> {
        serde_json::from_slice(r).map_err(|e| row_error(i, format!("is not JSON: {e}")))
    };
    // The selected input of each record, as the model's payload.
    let payload: Vec<u8> = match (&plan.input_filter, plan.format) {
        (None, _) => records.join(&b'\n'),
        (Some(path), Format::Csv) => {
            let mut out = Vec::new();
            for (i, r) in records.iter().enumerate() {
                let fields = csv_fields(r, first + i + 1)?;
                let picked = path
                    .select(&fields)
                    .map_err(|m| row_error(i, format!("InputFilter {m}")))?;
                out.extend(csv_line(&picked));
                out.push(b'\n');
            }
            out
        }
        (Some(path), _) => {
            let mut out = Vec::new();
            for (i, r) in records.iter().enumerate() {
                let v = path
                    .select_json(&json_record(i, r)?)
                    .map_err(|m| row_error(i, format!("InputFilter {m}")))?;
                serde_json::to_writer(&mut out, &v).expect("JSON values serialise");
                out.push(b'\n');
            }
            out
        }
    };
    let format = if plan.format == Format::Json && options.split == SplitType::Line {
        // A record a line is JSON Lines, whatever the content type says.
        Format::JsonLines
    } else {
        plan.format
    };
    let body = match model.answer_bytes(&payload, format.mime(), plan.accept.mime()) {
        // A script-mode model reads and writes the batch itself.
        Some(answered) => {
            answered
                .map_err(|e| DeployError::Payload(format!("the model: {e}")))?
                .0
        }
        None => payload::score(model, &payload, format, plan.accept).map_err(|e| match e {
            DeployError::Row { row, message } => DeployError::Row {
                row: first + row,
                message,
            },
            other => other,
        })?,
    };
    if !options.join_input && plan.output_filter.is_none() {
        return Ok(body);
    }
    // One answer a line, joined to its record and filtered.
    let lines: Vec<&[u8]> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() != records.len() {
        return Err(DeployError::Payload(format!(
            "the model gave {} answers for {} records, so they cannot be joined",
            lines.len(),
            records.len()
        )));
    }
    let mut out = Vec::new();
    for (i, (record, answer)) in records.iter().zip(lines).enumerate() {
        match plan.format {
            Format::Csv => {
                let mut fields = if options.join_input {
                    csv_fields(record, first + i + 1)?
                } else {
                    Vec::new()
                };
                fields.extend(answer_fields(answer, plan.accept, i, &row_error)?);
                if let Some(path) = &plan.output_filter {
                    fields = path
                        .select(&fields)
                        .map_err(|m| row_error(i, format!("OutputFilter {m}")))?;
                }
                out.extend(csv_line(&fields));
            }
            _ => {
                let answer_value: Value = match plan.accept {
                    Format::Csv => Value::Array(
                        answer_fields(answer, plan.accept, i, &row_error)?
                            .into_iter()
                            .map(Value::String)
                            .collect(),
                    ),
                    _ => serde_json::from_slice(answer).expect("answers are JSON"),
                };
                let mut joined = if options.join_input {
                    match json_record(i, record)? {
                        Value::Object(mut map) => {
                            map.insert("SageMakerOutput".into(), answer_value);
                            Value::Object(map)
                        }
                        Value::Array(mut list) => {
                            list.push(answer_value);
                            Value::Array(list)
                        }
                        other => Value::Array(vec![other, answer_value]),
                    }
                } else {
                    answer_value
                };
                if let Some(path) = &plan.output_filter {
                    joined = path
                        .select_json(&joined)
                        .map_err(|m| row_error(i, format!("OutputFilter {m}")))?;
                }
                serde_json::to_writer(&mut out, &joined).expect("JSON values serialise");
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

fn answer_fields(
    answer: &[u8],
    accept: Format,
    i: usize,
    row_error: &dyn Fn(usize, String) -> DeployError,
) -> Result<Vec<String>, DeployError> {
    match accept {
        Format::Csv => csv_fields(answer, i + 1),
        _ => match serde_json::from_slice::<Value>(answer) {
            Ok(Value::Object(map)) => Ok(map
                .values()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()),
            _ => Err(row_error(
                i,
                "the model's answer is not one JSON object".into(),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::{Column, DataFrame};
    use rustmaker_magics::MagicError;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// `score` = a + b, counting the requests it answers from a frame and from numbers.
    struct Adder {
        features: Vec<String>,
        calls: AtomicUsize,
        numeric_calls: AtomicUsize,
    }

    impl ServedModel for Adder {
        fn features(&self) -> &[String] {
            &self.features
        }
        fn predict(&self, rows: &DataFrame) -> Result<DataFrame, MagicError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let get = |n: &str| -> Vec<f64> {
                rows.column(n)
                    .unwrap()
                    .f64()
                    .unwrap()
                    .iter()
                    .map(|v| v.unwrap_or(0.0))
                    .collect()
            };
            let s: Vec<f64> = get("a").iter().zip(get("b")).map(|(x, y)| x + y).collect();
            Ok(DataFrame::new(rows.height(), vec![Column::new("score".into(), s)]).unwrap())
        }
        fn predict_numbers(&self, values: &[f64]) -> Option<Result<DataFrame, MagicError>> {
            self.numeric_calls.fetch_add(1, Ordering::Relaxed);
            let s: Vec<f64> = values
                .chunks(2)
                .map(|r| r.iter().map(|v| if v.is_nan() { 0.0 } else { *v }).sum())
                .collect();
            Some(Ok(DataFrame::new(
                s.len(),
                vec![Column::new("score".into(), s)],
            )
            .unwrap()))
        }
    }

    fn adder() -> Adder {
        Adder {
            features: vec!["a".into(), "b".into()],
            calls: AtomicUsize::new(0),
            numeric_calls: AtomicUsize::new(0),
        }
    }

    fn csv_options() -> Options {
        Options {
            content_type: Some("text/csv".into()),
            ..Options::default()
        }
    }

    #[test]
    fn gzip_input_is_read_as_its_plain_text_and_plain_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("in/rows.csv");
        std::fs::create_dir_all(plain.parent().unwrap()).unwrap();
        std::fs::write(&plain, "1,2\n3,4\n").unwrap();
        let gz = dir.path().join("gz/rows.csv.gz");
        std::fs::create_dir_all(gz.parent().unwrap()).unwrap();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut encoder, b"1,2\n3,4\n").unwrap();
        std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
        let opts = Options {
            gzip: true,
            ..csv_options()
        };
        let model = adder();
        run(&model, &gz, &dir.path().join("out"), &opts).unwrap();
        let zipped = std::fs::read_to_string(dir.path().join("out/rows.csv.gz.out")).unwrap();
        run(&model, &plain, &dir.path().join("out"), &csv_options()).unwrap();
        let unzipped = std::fs::read_to_string(dir.path().join("out/rows.csv.out")).unwrap();
        assert_eq!(zipped, unzipped);
        assert_eq!(zipped.lines().count(), 2);
        let e = run(&model, &plain, &dir.path().join("out2"), &opts).unwrap_err();
        assert!(e.to_string().contains("is not gzip"), "{e}");
    }

    #[test]
    fn a_csv_file_is_answered_line_by_line_in_batches_or_one_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        std::fs::create_dir_all(input.join("part")).unwrap();
        std::fs::write(input.join("a.csv"), "1,2\n3,4\n\n5,6\n").unwrap();
        std::fs::write(input.join("part/b.csv"), "10,20\n").unwrap();
        std::fs::write(input.join(".hidden"), "x,y\n").unwrap();
        let model = adder();
        let done = run(&model, &input, &dir.path().join("out"), &csv_options()).unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out/a.csv.out")).unwrap(),
            "3.0\n7.0\n11.0\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out/part/b.csv.out")).unwrap(),
            "30.0\n"
        );
        assert_eq!((done[0].records, done[0].requests), (3, 1));
        let single = Options {
            strategy: BatchStrategy::SingleRecord,
            ..csv_options()
        };
        let done = transform_file(
            &model,
            &input.join("a.csv"),
            &dir.path().join("s.out"),
            &single,
        )
        .unwrap();
        assert_eq!(done.requests, 3);
        // A small payload limit packs two records a request.
        let small = Options {
            max_payload_bytes: 9,
            ..csv_options()
        };
        let done = transform_file(
            &model,
            &input.join("a.csv"),
            &dir.path().join("m.out"),
            &small,
        )
        .unwrap();
        assert_eq!(done.requests, 2);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("m.out")).unwrap(),
            "3.0\n7.0\n11.0\n"
        );
        // Plain numbers reach the model as numbers; a header makes a frame of them.
        let model = adder();
        let lines: Vec<String> = (0..500).map(|i| format!("{i},1")).collect();
        std::fs::write(input.join("many.csv"), lines.join("\n")).unwrap();
        let out = dir.path().join("many.out");
        let done = transform_file(&model, &input.join("many.csv"), &out, &single).unwrap();
        assert_eq!(done.requests, 500);
        let want: Vec<String> = (0..500).map(|i| format!("{}.0", i + 1)).collect();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            want.join("\n") + "\n"
        );
        assert_eq!(model.numeric_calls.load(Ordering::Relaxed), 500);
        assert_eq!(model.calls.load(Ordering::Relaxed), 0);
        std::fs::write(input.join("named.csv"), "b,a\n1,2\n").unwrap();
        transform_file(&model, &input.join("named.csv"), &out, &csv_options()).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "3.0\n");
        assert_eq!(model.calls.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn filters_and_joins_select_what_goes_in_and_what_comes_out() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rows.csv");
        // An id first, then the two features.
        std::fs::write(&file, "id-1,1,2\n\"id,2\",3,4\n").unwrap();
        let opts = Options {
            input_filter: Some("$[1:]".into()),
            join_input: true,
            output_filter: Some("$[0,-1]".into()),
            ..csv_options()
        };
        let out = dir.path().join("rows.csv.out");
        transform_file(&adder(), &file, &out, &opts).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "id-1,3.0\n\"id,2\",7.0\n"
        );
        // JSON Lines records: keys picked, the answer joined under SageMakerOutput.
        let file = dir.path().join("rows.jsonl");
        std::fs::write(&file, "{\"id\": 7, \"f\": {\"a\": 1, \"b\": 2}}\n").unwrap();
        let opts = Options {
            content_type: Some("application/jsonlines".into()),
            input_filter: Some("$.f".into()),
            join_input: true,
            output_filter: Some("$['id','SageMakerOutput']".into()),
            ..Options::default()
        };
        let out = dir.path().join("rows.jsonl.out");
        transform_file(&adder(), &file, &out, &opts).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "[7,{\"score\":3.0}]\n"
        );
    }

    #[test]
    fn bad_inputs_and_settings_are_refused_and_leave_no_output() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.csv");
        std::fs::write(&file, "1,2\n3\n").unwrap();
        let out = dir.path().join("x.csv.out");
        let e = transform_file(&adder(), &file, &out, &csv_options()).unwrap_err();
        assert!(e.to_string().contains("row 2: has 1 values"), "{e}");
        assert!(!out.exists() && !dir.path().join("x.csv.out.partial").exists());
        // Requests answered on every core at once: the first bad one in the file is named.
        let lines: Vec<String> = (1..=200)
            .map(|i| match i {
                77 | 150 => "x,y,z".to_owned(),
                _ => format!("{i},1"),
            })
            .collect();
        std::fs::write(&file, lines.join("\n")).unwrap();
        let one_at_a_time = Options {
            strategy: BatchStrategy::SingleRecord,
            ..csv_options()
        };
        let e = transform_file(&adder(), &file, &out, &one_at_a_time).unwrap_err();
        assert!(e.to_string().contains("row 77: has 3 values"), "{e}");
        assert!(!out.exists() && !dir.path().join("x.csv.out.partial").exists());
        let e = run(&adder(), &dir.path().join("missing"), &out, &csv_options()).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let e = run(&adder(), &empty, &out, &csv_options()).unwrap_err();
        assert!(e.to_string().contains("holds no files"), "{e}");
        std::fs::write(&file, "1,2\n").unwrap();
        for (opts, want) in [
            (
                Options {
                    input_filter: Some("[1:]".into()),
                    ..csv_options()
                },
                "is not a JSONPath",
            ),
            (
                Options {
                    input_filter: Some("$[5]".into()),
                    ..csv_options()
                },
                "row 1: InputFilter has no field 5 (it has 2)",
            ),
            (
                Options {
                    join_input: true,
                    accept: Some("application/json".into()),
                    ..csv_options()
                },
                "needs one answer a line",
            ),
            (
                Options {
                    max_payload_bytes: 2,
                    ..csv_options()
                },
                "row 1: is 4 bytes, over MaxPayloadInMB",
            ),
        ] {
            let e = transform_file(&adder(), &file, &out, &opts)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn json_paths_parse_as_sagemaker_documents_them() {
        assert_eq!(parse_path("$").unwrap(), Selector::Whole);
        assert_eq!(
            parse_path("$[1:]").unwrap(),
            Selector::Items(vec![Item::Slice(Some(1), None)])
        );
        assert_eq!(
            parse_path("$[0, 2:4, -1]").unwrap(),
            Selector::Items(vec![
                Item::Index(0),
                Item::Slice(Some(2), Some(4)),
                Item::Index(-1)
            ])
        );
        assert_eq!(
            parse_path("$.features").unwrap(),
            Selector::Keys(vec!["features".into()])
        );
        assert_eq!(
            parse_path("$['a', \"b\"]").unwrap(),
            Selector::Keys(vec!["a".into(), "b".into()])
        );
        for bad in ["", "1", "$[", "$[x]", "$.", "$[1,'a']"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
        let fields = ["a", "b", "c", "d"];
        let pick = |p: &str| parse_path(p).unwrap().select(&fields).unwrap();
        assert_eq!(pick("$[1:]"), ["b", "c", "d"]);
        assert_eq!(pick("$[:-1]"), ["a", "b", "c"]);
        assert_eq!(pick("$[-1,0]"), ["d", "a"]);
    }
}
