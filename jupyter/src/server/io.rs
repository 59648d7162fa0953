//! What an executing cell can send to the front end: streams, displays, pages, input prompts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use jupyter_protocol::{Header, Payload};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::executor::Bundle;
use super::iopub::IopubItem;
use super::stdin::InputAsk;

/// Why `input` gave no answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("this front end does not accept input for this cell (allow_stdin is false)")]
    NotAllowed,
    #[error("interrupted while waiting for input")]
    Interrupted,
    #[error("the front end went away without answering the input request")]
    NoAnswer,
}

/// Sends stream text for one request; cheap to clone and usable from any thread, so the
/// threads that read a child process's output can write to the cell directly.
#[derive(Clone)]
pub struct StreamSink {
    parent: Header,
    iopub: UnboundedSender<IopubItem>,
}

impl StreamSink {
    pub fn write(&self, name: &'static str, text: String) {
        let _ = self.iopub.send(IopubItem::Stream {
            parent: self.parent.clone(),
            name,
            text,
        });
    }
}

/// The outputs and inputs of the cell being executed.
pub struct CellIo {
    sink: StreamSink,
    identities: Vec<bytes::Bytes>,
    stdin: Option<UnboundedSender<InputAsk>>,
    interrupted: Arc<AtomicBool>,
    payload: Vec<Payload>,
    execution_count: usize,
}

impl CellIo {
    pub(super) fn new(
        parent: Header,
        identities: Vec<bytes::Bytes>,
        iopub: UnboundedSender<IopubItem>,
        stdin: Option<UnboundedSender<InputAsk>>,
        interrupted: Arc<AtomicBool>,
        execution_count: usize,
    ) -> Self {
        CellIo {
            sink: StreamSink { parent, iopub },
            identities,
            stdin,
            interrupted,
            payload: Vec::new(),
            execution_count,
        }
    }

    pub fn execution_count(&self) -> usize {
        self.execution_count
    }

    pub fn stream_sink(&self) -> StreamSink {
        self.sink.clone()
    }

    pub fn stdout(&self, text: &str) {
        self.sink.write("stdout", text.to_owned());
    }

    pub fn stderr(&self, text: &str) {
        self.sink.write("stderr", text.to_owned());
    }

    fn publish(&self, msg_type: &'static str, content: Value) {
        let _ = self.sink.iopub.send(IopubItem::Output {
            parent: self.sink.parent.clone(),
            msg_type,
            content,
        });
    }

    pub fn display(&self, data: Bundle, display_id: Option<&str>) {
        let mut content = json!({ "data": data, "metadata": {} });
        if let Some(id) = display_id {
            content["transient"] = json!({ "display_id": id });
        }
        self.publish("display_data", content);
    }

    pub fn update_display(&self, data: Bundle, display_id: &str) {
        self.publish(
            "update_display_data",
            json!({ "data": data, "metadata": {}, "transient": { "display_id": display_id } }),
        );
    }

    pub fn clear_output(&self, wait: bool) {
        self.publish("clear_output", json!({ "wait": wait }));
    }

    /// Shows text in the front end's pager (IPython's `?` help), via the reply's payload.
    pub fn page(&mut self, text: &str) {
        let data = serde_json::from_value(json!({ "text/plain": text }))
            .expect("a text/plain bundle is valid media");
        self.payload.push(Payload::Page { data, start: 0 });
    }

    pub(super) fn take_payload(&mut self) -> Vec<Payload> {
        std::mem::take(&mut self.payload)
    }

    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Asks the front end for a line of input and blocks until it answers or the user
    /// interrupts.
    pub fn input(&self, prompt: &str, password: bool) -> Result<String, InputError> {
        let stdin = self.stdin.as_ref().ok_or(InputError::NotAllowed)?;
        let (answer, answered) = mpsc::channel();
        stdin
            .send(InputAsk {
                parent: self.sink.parent.clone(),
                identities: self.identities.clone(),
                prompt: prompt.to_owned(),
                password,
                answer,
            })
            .map_err(|_| InputError::NoAnswer)?;
        loop {
            match answered.recv_timeout(Duration::from_millis(50)) {
                Ok(value) => return Ok(value),
                Err(mpsc::RecvTimeoutError::Timeout) if self.is_interrupted() => {
                    return Err(InputError::Interrupted)
                }
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(InputError::NoAnswer),
            }
        }
    }
}
