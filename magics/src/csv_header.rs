//! Whether a CSV's first line names its columns, for every engine that reads CSV files.
//!
//! The SageMaker Python SDK's `DatasetFormat.csv()` assumes a header and SageMaker's built-in
//! algorithms assume none, so users meet both; guessing wrong is silent (a header counted as a
//! row of string values, or the first row taken as column names). So unless the user says
//! (`--header` / `--no-header`), the first line is compared with the lines after it: it is a
//! header when its values do not fit the types of the rest of their columns. The choice is
//! always reported, with the flag that reverses it.

use std::fmt;
use std::path::{Path, PathBuf};

/// Lines after the first that the sniffer compares it with.
const SAMPLE_LINES: usize = 200;

/// How a CSV's first line is read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderChoice {
    pub header: bool,
    /// Whether the user said so (`--header`/`--no-header`) or the sniffer chose.
    pub forced: bool,
    pub reason: String,
}

impl HeaderChoice {
    /// What the user gave: `Some(true)` for `--header`, `Some(false)` for `--no-header`.
    pub fn given(header: bool) -> HeaderChoice {
        HeaderChoice {
            header,
            forced: true,
            reason: if header {
                "--header was given".into()
            } else {
                "--no-header was given".into()
            },
        }
    }
}

impl fmt::Display for HeaderChoice {
    /// One sentence for the user: what was chosen, why, and how to change it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.header, self.forced) {
            (true, true) => write!(f, "the first line is read as the header ({})", self.reason),
            (false, true) => write!(f, "the first line is read as data ({})", self.reason),
            (true, false) => write!(
                f,
                "the first line is read as the header ({}); pass --no-header to read it as data",
                self.reason
            ),
            (false, false) => write!(
                f,
                "the first line is read as data, columns named _c0, _c1, … ({}); pass --header if it names the columns",
                self.reason
            ),
        }
    }
}

/// `--header` / `--no-header`, for every command that reads a CSV (flatten it into the
/// command's arguments).
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderArgs {
    /// The CSV's first line names the columns (default: sniffed from the first lines).
    #[arg(long, conflicts_with = "no_header")]
    pub header: bool,
    /// The CSV's first line is data; columns are named _c0, _c1, … (default: sniffed).
    #[arg(long)]
    pub no_header: bool,
}

impl HeaderArgs {
    /// What the user said, if anything.
    pub fn given(&self) -> Option<bool> {
        match (self.header, self.no_header) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CsvHeaderError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: {source}; fix the row and run again")]
    Csv {
        path: PathBuf,
        line: u64,
        #[source]
        source: csv::Error,
    },
}

/// The header choice for the CSV at `path`: `given` when the user said, else sniffed.
impl From<CsvHeaderError> for crate::MagicError {
    fn from(e: CsvHeaderError) -> crate::MagicError {
        match e {
            CsvHeaderError::Io { .. } => crate::failed(e),
            CsvHeaderError::Csv { .. } => crate::data_error(e),
        }
    }
}

pub fn choose(path: &Path, given: Option<bool>) -> Result<HeaderChoice, CsvHeaderError> {
    match given {
        Some(h) => Ok(HeaderChoice::given(h)),
        None => sniff_file(path),
    }
}

/// Reads the first lines of the CSV at `path` and sniffs them.
pub fn sniff_file(path: &Path) -> Result<HeaderChoice, CsvHeaderError> {
    let file = std::fs::File::open(path).map_err(|source| CsvHeaderError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let mut lines = Vec::new();
    for record in reader.records().take(SAMPLE_LINES + 1) {
        let record = record.map_err(|source| CsvHeaderError::Csv {
            path: path.to_owned(),
            line: source.position().map(|p| p.line()).unwrap_or(0),
            source,
        })?;
        lines.push(record.iter().map(str::to_owned).collect::<Vec<_>>());
    }
    Ok(sniff(&lines))
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Integer,
    Number,
    Boolean,
    Text,
}

fn kind(value: &str) -> Option<Kind> {
    let v = value.trim();
    if v.is_empty() || ["nan", "na", "null", "none"].contains(&v.to_ascii_lowercase().as_str()) {
        return None; // missing: fits any column
    }
    if v.parse::<i64>().is_ok() {
        Some(Kind::Integer)
    } else if v.parse::<f64>().is_ok() {
        Some(Kind::Number)
    } else if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
        Some(Kind::Boolean)
    } else {
        Some(Kind::Text)
    }
}

/// The kind every non-missing value of a column fits (integers fit numbers).
fn column_kind(values: impl Iterator<Item = Kind>) -> Option<Kind> {
    values.fold(None, |acc, k| match (acc, k) {
        (None, k) => Some(k),
        (Some(a), k) if a == k => Some(a),
        (Some(Kind::Integer), Kind::Number) | (Some(Kind::Number), Kind::Integer) => {
            Some(Kind::Number)
        }
        _ => Some(Kind::Text),
    })
}

/// Decides from the first line and the lines after it (`lines[0]` is the first line).
///
/// Typed columns vote: a column whose other values are all numbers (or all booleans) says
/// "header" when the first line's value there is text, and "data" when it fits. When no column
/// is typed (all text), the first line is a header when its values are distinct and none of
/// them occurs again in its column below, as names do and data rarely does.
pub fn sniff(lines: &[Vec<String>]) -> HeaderChoice {
    let sniffed = |header: bool, reason: String| HeaderChoice {
        header,
        forced: false,
        reason,
    };
    let Some((first, rest)) = lines.split_first() else {
        return sniffed(false, "the file is empty".into());
    };
    if rest.is_empty() {
        // Nothing to compare with: names alone (no number among them) are a header with no rows.
        let names = first.iter().all(|v| matches!(kind(v), Some(Kind::Text)));
        return if names {
            sniffed(true, "the file has one line, of text only".into())
        } else {
            sniffed(
                false,
                "the file has one line, with values that are not names".into(),
            )
        };
    }
    let (mut for_header, mut for_data) = (Vec::new(), Vec::new());
    for (i, name) in first.iter().enumerate() {
        let below = rest.iter().filter_map(|l| l.get(i)).filter_map(|v| kind(v));
        let Some(col) = column_kind(below).filter(|k| *k != Kind::Text) else {
            continue;
        };
        match kind(name) {
            Some(Kind::Text) => for_header.push(name.trim().to_owned()),
            Some(k) if column_kind([col, k].into_iter()) == Some(col) => {
                for_data.push(name.trim().to_owned())
            }
            _ => {}
        }
    }
    let quote = |names: &[String]| {
        names
            .iter()
            .take(3)
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !for_header.is_empty() && for_header.len() >= for_data.len() {
        return sniffed(
            true,
            format!(
                "{} {} text where the column below holds {}",
                quote(&for_header),
                if for_header.len() == 1 { "is" } else { "are" },
                "numbers or booleans"
            ),
        );
    }
    if !for_data.is_empty() {
        return sniffed(
            false,
            format!(
                "{} fit{} the types of the values below",
                quote(&for_data),
                if for_data.len() == 1 { "s" } else { "" }
            ),
        );
    }
    let mut seen = std::collections::HashSet::new();
    let distinct = first
        .iter()
        .all(|n| !n.trim().is_empty() && seen.insert(n.trim()));
    let recurs = first.iter().enumerate().any(|(i, n)| {
        rest.iter()
            .filter_map(|l| l.get(i))
            .any(|v| v.trim() == n.trim())
    });
    if distinct && !recurs {
        sniffed(
            true,
            "every column is text and the first line's values are distinct names that do not recur below".into(),
        )
    } else {
        sniffed(
            false,
            "every column is text and the first line's values recur below or repeat".into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<Vec<String>> {
        text.lines()
            .map(|l| l.split(',').map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn a_header_over_numbers_is_found() {
        let c = sniff(&lines(
            "item_count,price,color\n1,2.5,red\n2,3.0,blue\n3,,red",
        ));
        assert!(c.header && !c.forced, "{c:?}");
        assert!(c.reason.contains("`item_count`"), "{}", c.reason);
        assert!(c.to_string().contains("--no-header"), "{c}");
    }

    #[test]
    fn a_first_row_of_data_is_data() {
        let c = sniff(&lines("1,2.5,red\n2,3,blue\n3,4.5,red"));
        assert!(!c.header, "{c:?}");
        assert!(
            c.to_string().contains("_c0") && c.to_string().contains("--header"),
            "{c}"
        );
        // Integers in a column of numbers fit; so do booleans among booleans.
        assert!(!sniff(&lines("true,7\nfalse,1.5\ntrue,2")).header);
    }

    #[test]
    fn text_columns_decide_by_repetition() {
        assert!(sniff(&lines("city,color\nParis,red\nRome,blue")).header);
        assert!(!sniff(&lines("red,Paris\nred,Rome\nblue,Paris")).header);
        assert!(
            !sniff(&lines("a,a\nb,c")).header,
            "repeated names are not a header"
        );
    }

    #[test]
    fn short_files_and_missing_values() {
        assert!(!sniff(&[]).header);
        assert!(sniff(&lines("x,y")).header, "names alone are a header");
        assert!(!sniff(&lines("x,2")).header);
        // A header whose column below is all missing gives no vote; the next column decides.
        let c = sniff(&lines("a,b\n,1\n,2"));
        assert!(c.header, "{c:?}");
    }

    #[test]
    fn given_wins_and_says_so() {
        let dir = std::env::temp_dir().join(format!("rm-sniff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("d.csv");
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        assert!(choose(&path, None).unwrap().header);
        let c = choose(&path, Some(false)).unwrap();
        assert!(!c.header && c.forced && c.to_string().contains("--no-header was given"));
        let missing = choose(&dir.join("none.csv"), None).unwrap_err();
        assert!(missing.to_string().contains("none.csv"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
