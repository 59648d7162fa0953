//! The kernel's side of a Jupyter session: its id, and how its messages are addressed.

use jupyter_protocol::{Header, JupyterMessage, JupyterMessageContent};
use serde_json::json;

use super::PROTOCOL_VERSION;

/// Stamps headers of messages the kernel sends.
#[derive(Clone)]
pub struct Session {
    id: String,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            id: uuid::Uuid::new_v4().to_string(),
        }
    }
}

impl Session {
    fn header(&self, msg_type: &str) -> Header {
        Header {
            msg_id: uuid::Uuid::new_v4().to_string(),
            username: "rustmaker".into(),
            session: self.id.clone(),
            date: chrono::Utc::now(),
            msg_type: msg_type.to_owned(),
            version: PROTOCOL_VERSION.into(),
        }
    }

    /// A reply to `parent` on the socket it came from (addressed to the same peer).
    pub fn reply(
        &self,
        parent: &JupyterMessage,
        content: impl Into<JupyterMessageContent>,
    ) -> JupyterMessage {
        let mut msg = self.message(Some(&parent.header), content);
        msg.zmq_identities = parent.zmq_identities.clone();
        msg
    }

    /// A message caused by `parent` (an iopub output, a stdin request), or by nothing.
    pub fn message(
        &self,
        parent: Option<&Header>,
        content: impl Into<JupyterMessageContent>,
    ) -> JupyterMessage {
        let content = content.into();
        JupyterMessage {
            zmq_identities: Vec::new(),
            header: self.header(content.message_type()),
            parent_header: parent.cloned(),
            metadata: json!({}),
            content,
            buffers: Vec::new(),
            channel: None,
        }
    }

    /// The iopub topic of a message, in ipykernel's `kernel.<id>.<msg_type>` form.
    pub fn topic(&self, msg_type: &str) -> bytes::Bytes {
        bytes::Bytes::from(format!("kernel.{}.{}", self.id, msg_type))
    }
}
