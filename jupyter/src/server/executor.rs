//! The boundary between the protocol server and whatever runs code.
//!
//! The server turns requests into calls on an [`Executor`] and turns what it reports into
//! replies and iopub messages; an executor never sees a socket or a message header. Every call
//! runs on one dedicated thread, so an executor may block (compile, wait for Spark) without
//! stalling heartbeats, interrupts or the control channel.

use std::sync::Arc;

use jupyter_protocol::{CompleteReply, IsCompleteReply, LanguageInfo};
use serde_json::{Map, Value};

use super::io::CellIo;

/// A MIME bundle (`text/plain`, `text/html`, …) as sent in `execute_result` and `display_data`.
pub type Bundle = Map<String, Value>;

/// A failed execution, as Jupyter shows it: `ename: evalue` and a traceback of lines.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionError {
    pub ename: String,
    pub evalue: String,
    pub traceback: Vec<String>,
}

impl ExecutionError {
    pub fn new(ename: impl Into<String>, evalue: impl Into<String>) -> Self {
        let (ename, evalue) = (ename.into(), evalue.into());
        ExecutionError {
            traceback: vec![format!("{ename}: {evalue}")],
            ename,
            evalue,
        }
    }
}

/// What `kernel_info_reply` says about the language; fixed for the kernel's life.
#[derive(Debug, Clone)]
pub struct KernelDescription {
    pub implementation: String,
    pub implementation_version: String,
    pub banner: String,
    pub language_info: LanguageInfo,
    pub help_links: Vec<(String, String)>,
}

/// Stops whatever the executor is running; callable from any thread, at any time.
pub type Interrupter = Arc<dyn Fn() + Send + Sync>;

pub trait Executor: Send + 'static {
    fn describe(&self) -> KernelDescription;
    /// Runs one cell. Outputs go through `io`; the returned bundle becomes `execute_result`.
    fn execute(&mut self, code: &str, io: &mut CellIo) -> Result<Option<Bundle>, ExecutionError>;
    /// Evaluates one of `execute_request`'s `user_expressions` quietly.
    fn evaluate(&mut self, expression: &str) -> Result<Bundle, ExecutionError>;
    fn is_complete(&mut self, code: &str) -> IsCompleteReply;
    fn complete(&mut self, code: &str, cursor_pos: usize) -> CompleteReply;
    /// Help for the name at `cursor_pos`, if there is any.
    fn inspect(&mut self, code: &str, cursor_pos: usize, detail_level: u8) -> Option<Bundle>;
    fn interrupter(&self) -> Interrupter;
    /// The front end has its first `kernel_info_reply`: expensive warm-up may begin now
    /// without slowing the kernel's start.
    fn kernel_ready(&mut self) {}
    /// The kernel is about to exit: stop child processes.
    fn shutdown(&mut self);
}
