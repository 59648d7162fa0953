//! The kernel side of [`MagicContext`]: a magic's outputs become the cell's messages.

use rustmaker_magics::{MagicContext, MagicError, MimeBundle};

use crate::server::io::{CellIo, InputError};

pub struct MagicIo<'a>(pub &'a mut CellIo);

impl MagicContext for MagicIo<'_> {
    fn stdout(&mut self, text: &str) {
        self.0.stdout(text);
    }
    fn stderr(&mut self, text: &str) {
        self.0.stderr(text);
    }
    fn display(&mut self, data: MimeBundle, display_id: Option<&str>) {
        self.0.display(data.0, display_id);
    }
    fn update_display(&mut self, data: MimeBundle, display_id: &str) {
        self.0.update_display(data.0, display_id);
    }
    fn clear_output(&mut self, wait: bool) {
        self.0.clear_output(wait);
    }
    fn page(&mut self, text: &str) {
        self.0.page(text);
    }
    fn is_interrupted(&self) -> bool {
        self.0.is_interrupted()
    }
    fn input(&mut self, prompt: &str, password: bool) -> Result<String, MagicError> {
        self.0.input(prompt, password).map_err(|e| match e {
            InputError::NotAllowed => MagicError::StdinNotAllowed,
            InputError::Interrupted => MagicError::Interrupted,
            InputError::NoAnswer => MagicError::Failed(e.to_string()),
        })
    }
}
