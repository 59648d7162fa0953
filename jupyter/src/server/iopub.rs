//! The iopub publisher: one task owns the XPUB socket, coalesces stream text and greets
//! new subscribers (JEP 65 `iopub_welcome`).
//!
//! Coalescing matters: a client spends tens of microseconds decoding each message, so a cell
//! printing 100,000 lines must not become 100,000 messages. Text for the same request and
//! stream is gathered for at most [`STREAM_FLUSH_INTERVAL`] or [`STREAM_FLUSH_BYTES`], and
//! flushed at once before any other message so that order is kept.

use std::sync::Arc;
use std::time::Duration;

use jupyter_protocol::{Header, JupyterMessage, JupyterMessageContent, UnknownMessage};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;
use tokio::time::Instant;
use zeromq::{SocketRecv, SocketSend, XPubSocket, ZmqMessage};

use crate::protocol::session::Session;
use crate::protocol::wire::Codec;

pub const STREAM_FLUSH_INTERVAL: Duration = Duration::from_millis(50);
pub const STREAM_FLUSH_BYTES: usize = 1 << 20;

pub enum IopubItem {
    /// Stream text, coalesced before sending.
    Stream {
        parent: Header,
        name: &'static str,
        text: String,
    },
    /// An output message (display_data, execute_result, error, …) with raw JSON content.
    Output {
        parent: Header,
        msg_type: &'static str,
        content: Value,
    },
    /// A message the server built (status, execute_input, shutdown_reply).
    Message(Box<JupyterMessage>),
    /// Answered once everything queued before it is on the wire.
    Barrier(oneshot::Sender<()>),
}

/// Content with a message type of our choosing, sent as the JSON we give it.
pub fn raw_content(msg_type: &str, content: Value) -> JupyterMessageContent {
    JupyterMessageContent::UnknownMessage(UnknownMessage {
        msg_type: msg_type.to_owned(),
        content,
    })
}

struct Pending {
    parent: Header,
    name: &'static str,
    text: String,
    deadline: Instant,
}

struct Publisher {
    socket: XPubSocket,
    codec: Arc<Codec>,
    session: Session,
    pending: Option<Pending>,
}

impl Publisher {
    async fn send(&mut self, msg: JupyterMessage) {
        let mut msg = msg;
        msg.zmq_identities = vec![self.session.topic(msg.header.msg_type.as_str())];
        let frames = self.codec.encode(&msg);
        match ZmqMessage::try_from(frames) {
            Ok(m) => {
                if let Err(e) = self.socket.send(m).await {
                    tracing::warn!("iopub send failed: {e}");
                }
            }
            Err(e) => tracing::warn!("iopub message not framed: {e}"),
        }
    }

    async fn flush(&mut self) {
        if let Some(p) = self.pending.take() {
            let content = raw_content("stream", json!({ "name": p.name, "text": p.text }));
            let msg = self.session.message(Some(&p.parent), content);
            self.send(msg).await;
        }
    }

    async fn stream(&mut self, parent: Header, name: &'static str, text: String) {
        if let Some(p) = &mut self.pending {
            if p.parent.msg_id == parent.msg_id && p.name == name {
                p.text.push_str(&text);
                if p.text.len() >= STREAM_FLUSH_BYTES {
                    self.flush().await;
                }
                return;
            }
            self.flush().await;
        }
        self.pending = Some(Pending {
            parent,
            name,
            text,
            deadline: Instant::now() + STREAM_FLUSH_INTERVAL,
        });
    }
}

pub async fn run(
    socket: XPubSocket,
    codec: Arc<Codec>,
    session: Session,
    mut items: UnboundedReceiver<IopubItem>,
) {
    let mut p = Publisher {
        socket,
        codec,
        session,
        pending: None,
    };
    loop {
        let deadline = p.pending.as_ref().map(|x| x.deadline);
        tokio::select! {
            item = items.recv() => match item {
                None => break,
                Some(IopubItem::Stream { parent, name, text }) => p.stream(parent, name, text).await,
                Some(IopubItem::Output { parent, msg_type, content }) => {
                    p.flush().await;
                    let msg = p.session.message(Some(&parent), raw_content(msg_type, content));
                    p.send(msg).await;
                }
                Some(IopubItem::Message(msg)) => {
                    p.flush().await;
                    p.send(*msg).await;
                }
                Some(IopubItem::Barrier(done)) => {
                    p.flush().await;
                    let _ = done.send(());
                }
            },
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                p.flush().await;
            }
            sub = p.socket.recv() => match sub {
                // XPUB hands us subscriptions: byte 1 = subscribe, then the topic.
                Ok(m) => {
                    let frame = m.get(0).cloned().unwrap_or_default();
                    if frame.first() == Some(&1) {
                        let topic = String::from_utf8_lossy(&frame[1..]).into_owned();
                        tracing::debug!("iopub subscriber for topic {topic:?}");
                        let welcome = p.session.message(None, raw_content("iopub_welcome", json!({ "subscription": topic })));
                        p.send(welcome).await;
                    }
                }
                Err(e) => {
                    tracing::debug!("iopub subscription read failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    p.flush().await;
}
