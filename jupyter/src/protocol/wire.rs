//! Framing: a ZeroMQ multipart message ⇄ a [`JupyterMessage`], with the signature checked
//! before any frame is parsed.
//!
//! `[identities…, "<IDS|MSG>", signature, header, parent_header, metadata, content, buffers…]`

use std::sync::Mutex;

use bytes::Bytes;
use jupyter_protocol::{Header, JupyterMessage, JupyterMessageContent};
use serde_json::Value;

use super::signing::{ReplayGuard, Signer, SigningError};

const DELIMITER: &[u8] = b"<IDS|MSG>";
/// ipykernel remembers 2^16 signatures; so do we.
const REPLAY_MEMORY: usize = 1 << 16;

/// Why an incoming multipart message was dropped.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("no <IDS|MSG> delimiter frame")]
    NoDelimiter,
    #[error("{0} frames after the delimiter; a message needs a signature and four JSON frames")]
    TooFewFrames(usize),
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error("the {part} frame is not valid JSON: {source}")]
    Json {
        part: &'static str,
        source: serde_json::Error,
    },
    #[error("the content of a `{msg_type}` message does not match the protocol: {source}")]
    Content {
        msg_type: String,
        source: serde_json::Error,
    },
}

/// Decodes and encodes messages for one kernel: one key, one replay memory shared by all
/// channels (a message replayed on another channel is still a replay).
pub struct Codec {
    signer: Signer,
    replay: Mutex<ReplayGuard>,
}

impl Codec {
    pub fn new(signer: Signer) -> Self {
        Codec {
            signer,
            replay: Mutex::new(ReplayGuard::new(REPLAY_MEMORY)),
        }
    }

    pub fn decode(&self, frames: Vec<Bytes>) -> Result<JupyterMessage, WireError> {
        let delimiter = frames
            .iter()
            .position(|f| f.as_ref() == DELIMITER)
            .ok_or(WireError::NoDelimiter)?;
        let after = frames.len() - delimiter - 1;
        if after < 5 {
            return Err(WireError::TooFewFrames(after));
        }
        let signature = &frames[delimiter + 1];
        let json = &frames[delimiter + 2..delimiter + 6];
        let parts: Vec<&[u8]> = json.iter().map(|f| f.as_ref()).collect();
        self.signer.verify(signature, &parts)?;
        if self.signer.is_signing() {
            self.replay
                .lock()
                .expect("replay guard lock")
                .check(signature)?;
        }

        let header: Header = parse(&json[0], "header")?;
        let parent: Value = parse(&json[1], "parent_header")?;
        let metadata: Value = parse(&json[2], "metadata")?;
        let mut content: Value = parse(&json[3], "content")?;
        if header.msg_type == "history_request" {
            fill_history_defaults(&mut content);
        }
        let content = JupyterMessageContent::from_type_and_content(&header.msg_type, content)
            .map_err(|source| WireError::Content {
                msg_type: header.msg_type.clone(),
                source,
            })?;
        Ok(JupyterMessage {
            zmq_identities: frames[..delimiter].to_vec(),
            parent_header: serde_json::from_value(parent).ok(),
            header,
            metadata,
            content,
            buffers: frames[delimiter + 6..].to_vec(),
            channel: None,
        })
    }

    /// Frames for `msg`, addressed to its `zmq_identities` (the topic on iopub).
    pub fn encode(&self, msg: &JupyterMessage) -> Vec<Bytes> {
        let to_json = |v: &dyn erased::Json| Bytes::from(v.to_json());
        let header = to_json(&msg.header);
        let parent = match &msg.parent_header {
            Some(p) => to_json(p),
            None => Bytes::from_static(b"{}"),
        };
        let metadata = to_json(&msg.metadata);
        let content = to_json(&msg.content);
        let signature = self.signer.sign(&[&header, &parent, &metadata, &content]);
        let mut frames = msg.zmq_identities.clone();
        frames.push(Bytes::from_static(DELIMITER));
        frames.push(Bytes::from(signature));
        frames.extend([header, parent, metadata, content]);
        frames.extend(msg.buffers.iter().cloned());
        frames
    }
}

/// jupyter_client leaves out the fields of `history_request` that the user did not pass, and
/// IPython fills in defaults; the typed message needs every field, so fill them the same way.
fn fill_history_defaults(content: &mut Value) {
    if let Value::Object(map) = content {
        let defaults = [
            ("output", Value::Bool(false)),
            ("raw", Value::Bool(true)),
            ("unique", Value::Bool(false)),
            ("n", Value::from(10)),
            ("pattern", Value::from("*")),
            ("start", Value::from(0)),
            ("stop", Value::from(i32::MAX)),
        ];
        for (key, value) in defaults {
            if map.get(key).is_none_or(Value::is_null) {
                map.insert(key.to_owned(), value);
            }
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(frame: &[u8], part: &'static str) -> Result<T, WireError> {
    serde_json::from_slice(frame).map_err(|source| WireError::Json { part, source })
}

mod erased {
    /// Lets `encode` serialize its four differently-typed frames with one closure.
    pub trait Json {
        fn to_json(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Vec<u8> {
            serde_json::to_vec(self).expect("message parts always serialize")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupyter_protocol::{ExecuteRequest, KernelInfoRequest};

    fn codec() -> Codec {
        Codec::new(Signer::new("hmac-sha256", "secret").unwrap())
    }

    fn request_frames(c: &Codec) -> Vec<Bytes> {
        let msg = JupyterMessage::new(ExecuteRequest::new("1 + 1".into()), None)
            .with_zmq_identities(vec![Bytes::from_static(b"client")]);
        c.encode(&msg)
    }

    #[test]
    fn round_trip_keeps_identities_and_content() {
        let c = codec();
        let decoded = c.decode(request_frames(&c)).unwrap();
        assert_eq!(decoded.zmq_identities, vec![Bytes::from_static(b"client")]);
        match decoded.content {
            JupyterMessageContent::ExecuteRequest(req) => assert_eq!(req.code, "1 + 1"),
            other => panic!("wrong content {other:?}"),
        }
    }

    #[test]
    fn wrong_key_and_replay_are_refused() {
        let c = codec();
        let frames = request_frames(&c);
        let other = Codec::new(Signer::new("hmac-sha256", "other").unwrap());
        assert!(matches!(
            other.decode(frames.clone()),
            Err(WireError::Signing(SigningError::BadSignature))
        ));
        c.decode(frames.clone()).unwrap();
        assert!(matches!(
            c.decode(frames),
            Err(WireError::Signing(SigningError::Replayed))
        ));
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        let c = codec();
        assert!(matches!(
            c.decode(vec![Bytes::from_static(b"x")]),
            Err(WireError::NoDelimiter)
        ));
        let short = vec![Bytes::from_static(DELIMITER), Bytes::from_static(b"sig")];
        assert!(matches!(c.decode(short), Err(WireError::TooFewFrames(1))));

        let unsigned = Codec::new(Signer::new("hmac-sha256", "").unwrap());
        let mut frames = unsigned.encode(&JupyterMessage::new(KernelInfoRequest {}, None));
        let n = frames.len();
        frames[n - 1] = Bytes::from_static(b"{not json");
        assert!(matches!(
            unsigned.decode(frames.clone()),
            Err(WireError::Json {
                part: "content",
                ..
            })
        ));
        frames[n - 4] = Bytes::from_static(b"[]");
        assert!(matches!(
            unsigned.decode(frames),
            Err(WireError::Json { part: "header", .. })
        ));

        let mut bad_content =
            unsigned.encode(&JupyterMessage::new(ExecuteRequest::new("x".into()), None));
        let n = bad_content.len();
        bad_content[n - 1] = Bytes::from_static(b"{\"silent\": false}");
        assert!(matches!(
            unsigned.decode(bad_content),
            Err(WireError::Content { .. })
        ));
    }
}
