//! rustmaker-magics: the `%`/`%%` magic commands of the rustmaker kernel.
//!
//! This crate knows how a cell is split into magic calls and Rust code ([`parse`]), keeps the
//! table of known magics with their help and answers `%lsmagic`, `%help` and `%name?`
//! ([`registry`]), and defines the [`MagicContext`] through which a magic talks to the notebook
//! (streams, rich displays, interrupts, input). Engines (Spark, AWS, ML, monitor) live in their
//! own crates and only implement [`Magic`]; the kernel owns the sockets.

//! Adding a magic (what each engine crate does):
//!
//! ```rust,ignore
//! use rustmaker_magics::{Magic, MagicCall, MagicContext, MagicError, MagicForm, MimeBundle};
//!
//! struct Hello;
//!
//! impl Magic for Hello {
//!     fn name(&self) -> &str { "hello" }
//!     fn forms(&self) -> &[MagicForm] { &[MagicForm::Line] }
//!     fn summary(&self) -> &str { "Greet someone." }
//!     fn help(&self) -> String { "%hello NAME\n\nPrints a greeting.".into() }
//!     fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
//!         let [name] = call.argv()?.try_into().map_err(|_| MagicError::usage("hello", "usage: %hello NAME"))?;
//!         ctx.display(MimeBundle::text(format!("hello, {name}")), None);
//!         Ok(())
//!     }
//! }
//! // and in the kernel: registry.register(Arc::new(Hello))?;
//! ```
//!
//! Long work (submit, poll, show progress, honour interrupt) goes through [`long_work`]. A
//! failure is a [`MagicError`] of one kind (usage, data, service, the work's own failure, a
//! remote error, an interrupt), which becomes the `ename` the notebook shows.

pub mod args;
pub mod console;
pub mod context;
pub mod csv_header;
pub mod data;
pub mod frames;
pub mod long_work;
pub mod parse;
pub mod registry;
pub mod scratch;
pub mod services;
pub mod table;

pub use args::parse_args;
pub use context::{data_error, failed, service_error, MagicContext, MagicError, MimeBundle};
pub use frames::FrameStore;
pub use parse::{parse_cell, CellPart, MagicCall, MagicForm};
/// The polars every engine uses, so frames pass between engines without conversion.
pub use polars;
pub use registry::{Magic, MagicRegistry};
