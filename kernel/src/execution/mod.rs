//! Execution: what runs a cell. Lines and cells starting with `%`/`%%` go to the magic
//! registry; everything else is Rust, evaluated by evcxr.

pub mod cell_process;
mod final_value;
mod frames_bridge;
mod is_complete;
mod magic_io;
mod rust;

use jupyter_protocol::{CompleteReply, IsCompleteReply, IsCompleteReplyStatus, LanguageInfo};
use rustmaker_magics::parse::has_magic;
use rustmaker_magics::{parse_cell, CellPart, FrameStore, MagicError, MagicRegistry};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

use frames_bridge::FramesBridge;
use is_complete::{rust_completeness, Completeness};
use magic_io::MagicIo;
use rust::RustEngine;
use rustmaker_jupyter::server::io::CellIo;
use rustmaker_jupyter::server::{Bundle, ExecutionError, Executor, Interrupter, KernelDescription};

/// The kernel's executor: magics and Rust cells.
pub struct CellExecutor {
    magics: MagicRegistry,
    rust: RustEngine,
    frames: Arc<Mutex<FrameStore>>,
    /// How Rust cells reach the frames; why not, where its socket could not be made.
    bridge: Result<FramesBridge, String>,
    /// Whether the bridge crate is in the Rust session: `Some(true)` with polars.
    bridge_added: Option<bool>,
}

impl CellExecutor {
    /// Opens the frame bridge, starts evcxr in the background and registers every magic.
    /// Call it before other threads start: it sets the bridge's socket in the environment
    /// that evcxr's process inherits.
    pub fn start() -> Self {
        let mut magics = MagicRegistry::new();
        crate::engines::register(&mut magics);
        let frames = Arc::new(Mutex::new(FrameStore::new()));
        let bridge = FramesBridge::open(frames.clone()).map_err(|e| {
            format!("the kernel could not open its frame bridge ({e}); Rust cells cannot reach the frames in this session")
        });
        if let Ok(bridge) = &bridge {
            std::env::set_var(rustmaker_frames::SOCKET_ENV, bridge.socket());
        }
        CellExecutor {
            magics,
            rust: RustEngine::start(),
            frames,
            bridge,
            bridge_added: None,
        }
    }

    /// A Rust cell: the bridge crate added first where the cell names `frames::`, and a
    /// DataFrame that ends it shown as the kernel's table.
    fn rust_cell(
        &mut self,
        code: &str,
        io: Option<&CellIo>,
    ) -> Result<Option<Bundle>, ExecutionError> {
        if let Some(polars) = frames_bridge::needed(code, self.bridge_added) {
            let bridge = self
                .bridge
                .as_ref()
                .map_err(|why| ExecutionError::new("FramesUnavailable", why.clone()))?;
            let setup = bridge.session_setup(polars).map_err(|e| {
                ExecutionError::new(
                    "FramesUnavailable",
                    format!("cannot write the rustmaker-frames crate for the Rust session: {e}"),
                )
            })?;
            self.rust.eval(&setup, io)?;
            self.bridge_added = Some(polars);
        }
        let mut out = self.rust.eval(code, io)?;
        if let (Ok(bridge), Some(bundle)) = (&self.bridge, out.as_mut()) {
            bridge.render(bundle);
        }
        Ok(out)
    }
}

fn magic_error(e: MagicError) -> ExecutionError {
    match e {
        MagicError::Remote {
            ename,
            evalue,
            traceback,
        } => ExecutionError {
            ename,
            evalue,
            traceback,
        },
        e => ExecutionError::new(e.ename(), e.to_string()),
    }
}

/// The identifier (or `%magic`) around a cursor given in characters: (start, end) in bytes.
fn word_at(code: &str, cursor_chars: usize) -> (usize, usize) {
    let cursor = code
        .char_indices()
        .nth(cursor_chars)
        .map_or(code.len(), |(i, _)| i);
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '%';
    let start = code[..cursor]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map_or(cursor, |(i, _)| i);
    let end = code[cursor..]
        .char_indices()
        .find(|(_, c)| !is_word(*c))
        .map_or(code.len(), |(i, _)| cursor + i);
    (start, end)
}

fn chars_before(code: &str, byte: usize) -> usize {
    code[..byte.min(code.len())].chars().count()
}

impl Executor for CellExecutor {
    fn describe(&self) -> KernelDescription {
        let language_info: LanguageInfo = serde_json::from_value(json!({
            "name": "rust",
            "version": env!("RUSTMAKER_RUSTC_VERSION"),
            "mimetype": "text/rust",
            "file_extension": ".rs",
            "pygments_lexer": "rust",
            "codemirror_mode": "rust",
        }))
        .expect("language_info is well formed");
        KernelDescription {
            implementation: "rustmaker".into(),
            implementation_version: env!("CARGO_PKG_VERSION").into(),
            banner: format!(
                "rustmaker {} — Rust cells (evcxr) and magics. Type %lsmagic for the magics.",
                env!("CARGO_PKG_VERSION")
            ),
            language_info,
            help_links: vec![
                (
                    "Rust standard library".into(),
                    "https://doc.rust-lang.org/std/".into(),
                ),
                (
                    "evcxr (Rust REPL) commands".into(),
                    "https://github.com/evcxr/evcxr/blob/main/COMMON.md".into(),
                ),
            ],
        }
    }

    fn execute(&mut self, code: &str, io: &mut CellIo) -> Result<Option<Bundle>, ExecutionError> {
        if !has_magic(code) {
            return self.rust_cell(code, Some(io));
        }
        let mut last = None;
        for part in parse_cell(code).map_err(magic_error)? {
            if io.is_interrupted() {
                return Err(magic_error(rustmaker_magics::long_work::interrupted(
                    "the rest of the cell did not run",
                    "what ran before is kept",
                )));
            }
            last = match part {
                CellPart::Code(rust) => self.rust_cell(&rust, Some(io))?,
                CellPart::Magic(call) => {
                    let mut frames = self.frames.lock().unwrap_or_else(|p| p.into_inner());
                    self.magics
                        .run(
                            &call,
                            &mut MagicIo {
                                io,
                                frames: &mut frames,
                                rust: &mut self.rust,
                            },
                        )
                        .map_err(magic_error)?;
                    None
                }
            };
        }
        Ok(last)
    }

    fn evaluate(&mut self, expression: &str) -> Result<Bundle, ExecutionError> {
        if has_magic(expression) {
            return Err(ExecutionError::new(
                "UsageError",
                "user_expressions are Rust expressions, not magics",
            ));
        }
        Ok(self.rust.eval(expression, None)?.unwrap_or_default())
    }

    fn is_complete(&mut self, code: &str) -> IsCompleteReply {
        let parts = if has_magic(code) {
            match parse_cell(code) {
                Ok(parts) => parts,
                Err(_) => {
                    return IsCompleteReply::new(IsCompleteReplyStatus::Invalid, String::new())
                }
            }
        } else {
            vec![CellPart::Code(code.to_owned())]
        };
        for part in parts {
            if let CellPart::Code(rust) = part {
                match rust_completeness(&rust) {
                    Completeness::Complete => {}
                    Completeness::Incomplete(indent) => return IsCompleteReply::incomplete(indent),
                    Completeness::Invalid => return IsCompleteReply::invalid(),
                }
            }
        }
        IsCompleteReply::complete()
    }

    fn complete(&mut self, code: &str, cursor_pos: usize) -> CompleteReply {
        let (start, _) = word_at(code, cursor_pos);
        let cursor = code
            .char_indices()
            .nth(cursor_pos)
            .map_or(code.len(), |(i, _)| i);
        let typed = &code[start..cursor];
        let (matches, from, to) = if let Some(prefix) = typed.strip_prefix('%') {
            let (sigil, prefix) = match prefix.strip_prefix('%') {
                Some(p) => ("%%", p),
                None => ("%", prefix),
            };
            let matches = self
                .magics
                .names()
                .into_iter()
                .filter(|(name, _)| name.starts_with(prefix))
                .map(|(name, _)| format!("{sigil}{name}"))
                .collect();
            (matches, start, cursor)
        } else {
            self.rust
                .completions(code, cursor)
                .unwrap_or((Vec::new(), cursor, cursor))
        };
        CompleteReply {
            matches,
            cursor_start: chars_before(code, from),
            cursor_end: chars_before(code, to),
            ..Default::default()
        }
    }

    fn inspect(&mut self, code: &str, cursor_pos: usize, _detail_level: u8) -> Option<Bundle> {
        let (start, end) = word_at(code, cursor_pos);
        let word = &code[start..end];
        if word.is_empty() {
            return None;
        }
        if let Some(name) = word.strip_prefix('%') {
            let help = self.magics.help(name.trim_start_matches('%')).ok()?;
            let mut data = Bundle::new();
            data.insert("text/plain".into(), Value::String(help));
            return Some(data);
        }
        let (plain, html) = self.rust.hover(code, end)?;
        let mut data = Bundle::new();
        data.insert("text/plain".into(), Value::String(plain));
        if !html.trim().is_empty() {
            data.insert("text/html".into(), Value::String(html));
        }
        Some(data)
    }

    fn interrupter(&self) -> Interrupter {
        std::sync::Arc::new(self.rust.interrupter())
    }

    fn kernel_ready(&mut self) {
        self.rust.warm_up();
    }

    fn shutdown(&mut self) {
        self.magics.shutdown();
        self.rust.shutdown();
        if let Ok(bridge) = &self.bridge {
            bridge.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_under_the_cursor() {
        let code = "let s = String::new(); %lsmagic";
        let (a, b) = word_at(code, 10);
        assert_eq!(&code[a..b], "String");
        let (a, b) = word_at(code, code.chars().count());
        assert_eq!(&code[a..b], "%lsmagic");
        let (a, b) = word_at("é %ls", 5);
        assert_eq!(&"é %ls"[a..b], "%ls");
    }
}
