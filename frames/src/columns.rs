//! Column vectors, and the file format that carries them between the kernel and a cell.
//!
//! The format is the bridge's own, so that a cell reading a frame needs no Arrow or polars:
//! `RMFRAME1`, the column count (u32) and row count (u64), then for each column its name
//! (u32 length, UTF-8), its kind (0 float, 1 integer, 2 boolean, 3 text), one validity byte
//! a row (1 present, 0 missing), and the values: f64 or i64 little-endian, one byte a
//! boolean, or a u32 length and UTF-8 bytes a text. Missing values are stored as zeros.

use std::io::Write;
use std::path::Path;

use crate::FrameError;

const MAGIC: &[u8; 8] = b"RMFRAME1";

/// One column: every value may be missing.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Float(Vec<Option<f64>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Text(Vec<Option<String>>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Float(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Text(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kind's name, as errors show it.
    pub fn kind(&self) -> &'static str {
        match self {
            Column::Float(_) => "float",
            Column::Int(_) => "integer",
            Column::Bool(_) => "boolean",
            Column::Text(_) => "text",
        }
    }

    fn code(&self) -> u8 {
        match self {
            Column::Float(_) => 0,
            Column::Int(_) => 1,
            Column::Bool(_) => 2,
            Column::Text(_) => 3,
        }
    }

    fn size_bytes(&self) -> u64 {
        let n = self.len() as u64;
        n + match self {
            Column::Float(_) | Column::Int(_) => 8 * n,
            Column::Bool(_) => n,
            Column::Text(v) => v
                .iter()
                .map(|s| 4 + s.as_ref().map_or(0, |s| s.len() as u64))
                .sum(),
        }
    }
}

macro_rules! column_from {
    ($variant:ident, $t:ty) => {
        impl From<Vec<$t>> for Column {
            fn from(v: Vec<$t>) -> Column {
                Column::$variant(v.into_iter().map(|x| Some(x.into())).collect())
            }
        }
        impl From<Vec<Option<$t>>> for Column {
            fn from(v: Vec<Option<$t>>) -> Column {
                Column::$variant(v.into_iter().map(|x| x.map(Into::into)).collect())
            }
        }
    };
}
column_from!(Float, f64);
column_from!(Float, f32);
column_from!(Int, i64);
column_from!(Int, i32);
column_from!(Bool, bool);
column_from!(Text, String);
column_from!(Text, &str);

/// A frame as named columns of one length, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns {
    columns: Vec<(String, Column)>,
}

impl Columns {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a column (a builder: `Columns::new().with("x", vec![1.0, 2.0])`); lengths and
    /// names are checked when the frame is stored.
    pub fn with(mut self, name: &str, column: impl Into<Column>) -> Self {
        self.columns.push((name.to_owned(), column.into()));
        self
    }

    pub fn push(&mut self, name: &str, column: impl Into<Column>) {
        self.columns.push((name.to_owned(), column.into()));
    }

    pub fn get(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    pub fn float(&self, name: &str) -> Option<&[Option<f64>]> {
        match self.get(name)? {
            Column::Float(v) => Some(v),
            _ => None,
        }
    }

    pub fn int(&self, name: &str) -> Option<&[Option<i64>]> {
        match self.get(name)? {
            Column::Int(v) => Some(v),
            _ => None,
        }
    }

    pub fn bool(&self, name: &str) -> Option<&[Option<bool>]> {
        match self.get(name)? {
            Column::Bool(v) => Some(v),
            _ => None,
        }
    }

    pub fn text(&self, name: &str) -> Option<&[Option<String>]> {
        match self.get(name)? {
            Column::Text(v) => Some(v),
            _ => None,
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|(n, _)| n.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Column)> {
        self.columns.iter().map(|(n, c)| (n.as_str(), c))
    }

    pub fn into_inner(self) -> Vec<(String, Column)> {
        self.columns
    }

    /// Rows: the first column's length (0 without columns).
    pub fn height(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }

    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// What the frame takes in the bridge's format, near enough for its limit.
    pub fn size_bytes(&self) -> u64 {
        self.columns
            .iter()
            .map(|(n, c)| 5 + n.len() as u64 + c.size_bytes())
            .sum()
    }

    /// Every column as long as the first, and no name twice.
    pub fn check(&self) -> Result<(), FrameError> {
        let height = self.height();
        for (i, (name, column)) in self.columns.iter().enumerate() {
            if column.len() != height {
                return Err(FrameError::Shape(format!(
                    "column `{name}` has {} values where `{}` has {height}: every column needs one value a row",
                    column.len(),
                    self.columns[0].0
                )));
            }
            if self.columns[..i].iter().any(|(n, _)| n == name) {
                return Err(FrameError::Shape(format!(
                    "two columns are named `{name}`: name each once"
                )));
            }
        }
        Ok(())
    }
}

/// Writes `frame` to `path` in the bridge's format.
pub fn write_file(frame: &Columns, path: &Path) -> Result<(), FrameError> {
    frame.check()?;
    let io = |source| FrameError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    encode(frame, &mut out)
        .and_then(|_| out.flush())
        .map_err(io)
}

fn encode(frame: &Columns, out: &mut impl Write) -> std::io::Result<()> {
    out.write_all(MAGIC)?;
    out.write_all(&(frame.width() as u32).to_le_bytes())?;
    out.write_all(&(frame.height() as u64).to_le_bytes())?;
    for (name, column) in &frame.columns {
        out.write_all(&(name.len() as u32).to_le_bytes())?;
        out.write_all(name.as_bytes())?;
        out.write_all(&[column.code()])?;
        let validity: Vec<u8> = match column {
            Column::Float(v) => v.iter().map(|x| x.is_some() as u8).collect(),
            Column::Int(v) => v.iter().map(|x| x.is_some() as u8).collect(),
            Column::Bool(v) => v.iter().map(|x| x.is_some() as u8).collect(),
            Column::Text(v) => v.iter().map(|x| x.is_some() as u8).collect(),
        };
        out.write_all(&validity)?;
        match column {
            Column::Float(v) => {
                for x in v {
                    out.write_all(&x.unwrap_or(0.0).to_le_bytes())?;
                }
            }
            Column::Int(v) => {
                for x in v {
                    out.write_all(&x.unwrap_or(0).to_le_bytes())?;
                }
            }
            Column::Bool(v) => {
                let bytes: Vec<u8> = v.iter().map(|x| x.unwrap_or(false) as u8).collect();
                out.write_all(&bytes)?;
            }
            Column::Text(v) => {
                for x in v {
                    let s = x.as_deref().unwrap_or("");
                    out.write_all(&(s.len() as u32).to_le_bytes())?;
                    out.write_all(s.as_bytes())?;
                }
            }
        }
    }
    Ok(())
}

/// Reads the frame `name` from `path`; the file must fit the bridge's limit.
pub fn read_file(path: &Path, name: &str) -> Result<Columns, FrameError> {
    let io = |source| FrameError::Io {
        path: path.to_owned(),
        source,
    };
    crate::check_size(name, std::fs::metadata(path).map_err(io)?.len())?;
    let bytes = std::fs::read(path).map_err(io)?;
    decode(&bytes).map_err(|reason| FrameError::Format {
        path: path.to_owned(),
        reason,
    })
}

/// A cursor that refuses to read past the end: a damaged file cannot make it allocate more
/// than the file holds.
struct Reader<'b> {
    bytes: &'b [u8],
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], String> {
        if n > self.bytes.len() {
            return Err(format!(
                "it ends early ({n} bytes needed, {} left)",
                self.bytes.len()
            ));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn text(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a text is not UTF-8".into())
    }
}

fn decode(bytes: &[u8]) -> Result<Columns, String> {
    let mut r = Reader { bytes };
    if r.take(MAGIC.len()).ok() != Some(&MAGIC[..]) {
        return Err("it does not start with RMFRAME1".into());
    }
    let width = r.u32()? as usize;
    let height = usize::try_from(r.u64()?).map_err(|_| "too many rows")?;
    let mut frame = Columns::new();
    for _ in 0..width {
        let name = r.text()?;
        let code = r.take(1)?[0];
        let validity = r.take(height)?;
        let present = |i: usize| validity[i] != 0;
        let column = match code {
            0 => Column::Float(
                r.take(height.saturating_mul(8))?
                    .chunks_exact(8)
                    .enumerate()
                    .map(|(i, b)| present(i).then(|| f64::from_le_bytes(b.try_into().unwrap())))
                    .collect(),
            ),
            1 => Column::Int(
                r.take(height.saturating_mul(8))?
                    .chunks_exact(8)
                    .enumerate()
                    .map(|(i, b)| present(i).then(|| i64::from_le_bytes(b.try_into().unwrap())))
                    .collect(),
            ),
            2 => Column::Bool(
                r.take(height)?
                    .iter()
                    .enumerate()
                    .map(|(i, b)| present(i).then_some(*b != 0))
                    .collect(),
            ),
            3 => {
                let mut values = Vec::with_capacity(height.min(r.bytes.len() / 4));
                for i in 0..height {
                    let s = r.text()?;
                    values.push(present(i).then_some(s));
                }
                Column::Text(values)
            }
            other => return Err(format!("column `{name}` has an unknown kind {other}")),
        };
        frame.push(&name, column);
    }
    if !r.bytes.is_empty() {
        return Err(format!("{} bytes follow the last column", r.bytes.len()));
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Columns {
        Columns::new()
            .with("x", vec![Some(1.5), None, Some(-2.0)])
            .with("n", vec![1i64, 2, 3])
            .with("ok", vec![Some(true), Some(false), None])
            .with(
                "word",
                vec![Some("a".to_string()), None, Some("ü".to_string())],
            )
    }

    #[test]
    fn frames_round_trip_with_missing_values() {
        let dir = std::env::temp_dir().join(format!("rmframes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.cols");
        write_file(&sample(), &path).unwrap();
        let back = read_file(&path, "a").unwrap();
        assert_eq!(back, sample());
        assert_eq!(back.height(), 3);
        assert_eq!(back.float("x").unwrap()[1], None);
        assert_eq!(back.text("word").unwrap()[2].as_deref(), Some("ü"));
        assert_eq!(back.int("x"), None);
        std::fs::write(&path, b"RMFRAME1\x01\0\0\0\xff\xff\xff\xff\xff\xff\xff\x7f").unwrap();
        let e = read_file(&path, "a").unwrap_err().to_string();
        assert!(e.contains("not a frame in the bridge's format"), "{e}");
        std::fs::write(&path, b"PAR1").unwrap();
        assert!(read_file(&path, "a")
            .unwrap_err()
            .to_string()
            .contains("RMFRAME1"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn uneven_or_repeated_columns_are_refused() {
        let e = Columns::new()
            .with("a", vec![1.0, 2.0])
            .with("b", vec![1.0])
            .check()
            .unwrap_err();
        assert!(e
            .to_string()
            .contains("column `b` has 1 values where `a` has 2"));
        let e = Columns::new()
            .with("a", vec![1.0])
            .with("a", vec![2.0])
            .check()
            .unwrap_err();
        assert!(e.to_string().contains("two columns are named `a`"));
    }

    #[test]
    fn encoded_size_is_what_the_limit_counts() {
        let mut bytes = Vec::new();
        encode(&sample(), &mut bytes).unwrap();
        assert_eq!(bytes.len() as u64, 20 + sample().size_bytes());
    }
}
