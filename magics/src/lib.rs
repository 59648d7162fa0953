//! rustmaker-magics: the `%`/`%%` magic commands of the rustmaker kernel.
//!
//! This crate knows how a cell is split into magic calls and Rust code ([`parse`]), keeps the
//! table of known magics with their help and answers `%lsmagic`, `%help` and `%name?`
//! ([`registry`]), and defines the [`MagicContext`] through which a magic talks to the notebook
//! (streams, rich displays, interrupts, input). Engines (Spark, AWS, ML, monitor) live in their
//! own crates and only implement [`Magic`]; the kernel owns the sockets.

pub mod context;
pub mod parse;
pub mod registry;

pub use context::{MagicContext, MagicError, MimeBundle};
pub use parse::{parse_cell, CellPart, MagicCall, MagicForm};
pub use registry::{Magic, MagicRegistry};
