//! The generated notebooks as nbformat 4.5 documents for this kernel (kernelspec
//! "Rust (rustmaker)"), built and written with the `nbformat` crate. Cell ids are derived
//! from the cell's place and kind, so a notebook generated twice from the same job is the
//! same file.

use std::collections::HashMap;
use std::path::Path;

use nbformat::v4;

use crate::AutopilotError;

/// One cell before it is numbered.
pub struct Cell {
    kind: Kind,
    source: String,
    /// A markdown cell's attachment: its name and SVG text.
    image: Option<(String, String)>,
}

enum Kind {
    Markdown,
    Code,
}

impl Cell {
    pub fn markdown(source: impl Into<String>) -> Cell {
        Cell {
            kind: Kind::Markdown,
            source: source.into(),
            image: None,
        }
    }

    /// A markdown cell that shows `svg` where its text links `attachment:NAME`.
    pub fn markdown_with_image(source: impl Into<String>, name: &str, svg: String) -> Cell {
        Cell {
            image: Some((name.to_owned(), svg)),
            ..Cell::markdown(source)
        }
    }

    pub fn code(source: impl Into<String>) -> Cell {
        Cell {
            kind: Kind::Code,
            source: source.into(),
            image: None,
        }
    }
}

/// A notebook for this kernel.
pub struct Notebook {
    cells: Vec<Cell>,
}

/// nbformat keeps a cell's source as lines, each but the last with its newline.
fn lines(text: &str) -> Vec<String> {
    text.split_inclusive('\n').map(str::to_owned).collect()
}

impl Notebook {
    pub fn new(cells: Vec<Cell>) -> Notebook {
        Notebook { cells }
    }

    pub fn to_nbformat(&self) -> v4::Notebook {
        let cells = self
            .cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let prefix = match c.kind {
                    Kind::Markdown => "md",
                    Kind::Code => "code",
                };
                let id = v4::CellId::new(&format!("{prefix}-{i:03}"))
                    .expect("kind-and-number ids are valid cell ids");
                let metadata = v4::CellMetadata::default();
                match c.kind {
                    Kind::Markdown => v4::Cell::Markdown {
                        id,
                        metadata,
                        source: lines(&c.source),
                        attachments: c.image.as_ref().map(
                            |(name, svg)| serde_json::json!({ name: { "image/svg+xml": svg } }),
                        ),
                    },
                    Kind::Code => v4::Cell::Code {
                        id,
                        metadata,
                        execution_count: None,
                        source: lines(&c.source),
                        outputs: Vec::new(),
                    },
                }
            })
            .collect();
        v4::Notebook {
            metadata: v4::Metadata {
                kernelspec: Some(v4::KernelSpec {
                    display_name: "Rust (rustmaker)".into(),
                    name: "rustmaker".into(),
                    language: Some("rust".into()),
                    additional: HashMap::new(),
                }),
                language_info: Some(v4::LanguageInfo {
                    name: "rust".into(),
                    version: None,
                    codemirror_mode: None,
                    additional: HashMap::new(),
                }),
                authors: None,
                additional: HashMap::new(),
            },
            nbformat: 4,
            nbformat_minor: 5,
            cells,
        }
    }

    /// The notebook's JSON, as Jupyter writes it.
    pub fn to_json(&self) -> String {
        nbformat::serialize_notebook(&nbformat::Notebook::V4(self.to_nbformat()))
            .expect("a notebook of text cells serialises")
    }

    /// Writes the notebook to `path` whole (through a temporary file beside it).
    pub fn write(&self, path: &Path) -> Result<(), AutopilotError> {
        let io = |source| AutopilotError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let partial = path.with_extension("ipynb.partial");
        std::fs::write(&partial, self.to_json()).map_err(io)?;
        std::fs::rename(&partial, path).map_err(io)
    }
}
