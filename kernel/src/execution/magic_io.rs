//! The kernel side of [`MagicContext`]: a magic's outputs become the cell's messages.

use rustmaker_magics::{FrameStore, MagicContext, MagicError, MimeBundle};

use super::rust::RustEngine;
use rustmaker_jupyter::server::io::{CellIo, InputError};

pub struct MagicIo<'a> {
    pub io: &'a mut CellIo,
    pub frames: &'a mut FrameStore,
    pub rust: &'a mut RustEngine,
}

impl MagicContext for MagicIo<'_> {
    fn stdout(&mut self, text: &str) {
        self.io.stdout(text);
    }
    fn stderr(&mut self, text: &str) {
        self.io.stderr(text);
    }
    fn display(&mut self, data: MimeBundle, display_id: Option<&str>) {
        self.io.display(data.0, display_id);
    }
    fn update_display(&mut self, data: MimeBundle, display_id: &str) {
        self.io.update_display(data.0, display_id);
    }
    fn clear_output(&mut self, wait: bool) {
        self.io.clear_output(wait);
    }
    fn page(&mut self, text: &str) {
        self.io.page(text);
    }
    fn is_interrupted(&self) -> bool {
        self.io.is_interrupted()
    }
    fn input(&mut self, prompt: &str, password: bool) -> Result<String, MagicError> {
        self.io.input(prompt, password).map_err(|e| match e {
            InputError::NotAllowed => MagicError::StdinNotAllowed,
            InputError::Interrupted => rustmaker_magics::long_work::interrupted(
                "stopped waiting for input",
                "nothing else was stopped",
            ),
            InputError::NoAnswer => MagicError::Failed(e.to_string()),
        })
    }
    fn frames(&mut self) -> &mut FrameStore {
        self.frames
    }
    fn rust_value(&mut self, expr: &str) -> Result<String, MagicError> {
        self.rust.display_text(expr).map_err(|e| {
            MagicError::Failed(format!(
                "cannot read the Rust value `{expr}`: {} (define it in a Rust cell first; its type must implement Display)",
                e.evalue.lines().next().unwrap_or("")
            ))
        })
    }
}
