//! A [`MagicContext`] for a terminal, so the `rustmaker` command line runs the same magics as
//! a notebook (`rustmaker train …` is `%train …`): streams go to stdout/stderr, a display
//! prints its text/plain (an updated display prints again), and there is no interrupt.

use std::io::Write;

use crate::context::{MagicContext, MagicError, MimeBundle};
use crate::frames::FrameStore;

#[derive(Default)]
pub struct Console {
    frames: FrameStore,
}

impl Console {
    pub fn new() -> Self {
        Self::default()
    }
}

fn text_of(data: &MimeBundle) -> String {
    data.0
        .get("text/plain")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

impl MagicContext for Console {
    fn stdout(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
    fn stderr(&mut self, text: &str) {
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
    fn display(&mut self, data: MimeBundle, _display_id: Option<&str>) {
        let text = text_of(&data);
        self.stdout(&format!("{text}\n"));
    }
    fn update_display(&mut self, data: MimeBundle, _display_id: &str) {
        let text = text_of(&data);
        self.stdout(&format!("{text}\n"));
    }
    fn clear_output(&mut self, _wait: bool) {}
    fn is_interrupted(&self) -> bool {
        false
    }
    fn input(&mut self, prompt: &str, _password: bool) -> Result<String, MagicError> {
        self.stdout(prompt);
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| MagicError::Failed(format!("cannot read stdin: {e}")))?;
        Ok(line.trim_end_matches('\n').to_owned())
    }
    fn frames(&mut self) -> &mut FrameStore {
        &mut self.frames
    }
}
