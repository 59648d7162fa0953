//! The stdin channel: the kernel asks the front end for input and waits for its reply.

use std::sync::mpsc;
use std::sync::Arc;

use bytes::Bytes;
use jupyter_protocol::{Header, InputRequest, JupyterMessage, JupyterMessageContent};
use tokio::sync::mpsc::UnboundedReceiver;
use zeromq::{RouterSocket, SocketRecv, SocketSend, ZmqMessage};

use crate::protocol::session::Session;
use crate::protocol::wire::Codec;

/// A cell's request for a line of input.
pub struct InputAsk {
    pub parent: Header,
    pub identities: Vec<Bytes>,
    pub prompt: String,
    pub password: bool,
    pub answer: mpsc::Sender<String>,
}

pub async fn run(
    mut socket: RouterSocket,
    codec: Arc<Codec>,
    session: Session,
    mut asks: UnboundedReceiver<InputAsk>,
) {
    let mut waiting: Option<mpsc::Sender<String>> = None;
    loop {
        tokio::select! {
            ask = asks.recv() => {
                let Some(ask) = ask else { break };
                let mut msg = session.message(Some(&ask.parent), InputRequest { prompt: ask.prompt, password: ask.password });
                msg.zmq_identities = ask.identities;
                match ZmqMessage::try_from(codec.encode(&msg)) {
                    Ok(frames) => {
                        if let Err(e) = socket.send(frames).await {
                            tracing::warn!("input_request not sent: {e}");
                            continue;
                        }
                        waiting = Some(ask.answer);
                    }
                    Err(e) => tracing::warn!("input_request not framed: {e}"),
                }
            }
            incoming = socket.recv() => {
                let frames = match incoming {
                    Ok(m) => m.into_vec(),
                    Err(e) => { tracing::warn!("stdin receive failed: {e}"); continue; }
                };
                match codec.decode(frames) {
                    Ok(JupyterMessage { content: JupyterMessageContent::InputReply(reply), .. }) => {
                        match waiting.take() {
                            Some(answer) => { let _ = answer.send(reply.value); }
                            None => tracing::warn!("input_reply with no input request waiting; ignored"),
                        }
                    }
                    Ok(other) => tracing::warn!("unexpected `{}` on stdin; ignored", other.header.msg_type),
                    Err(e) => tracing::error!("dropped a message on stdin: {e}"),
                }
            }
        }
    }
}
