//! The Jupyter wire protocol, and nothing else: connection files, message signing, framing
//! and the kernel's session identity. It knows no sockets' behaviour and no execution.
//!
//! Message *types* come from nteract's `jupyter-protocol` crate. Framing and signing are written
//! here because its companion client crate signs only with hmac-sha256, cannot reject replayed
//! signatures, and does not expose the signature it checked.

pub mod session;
pub mod signing;
pub mod wire;

pub use jupyter_protocol::ConnectionInfo;

/// The messaging-protocol version this kernel implements and stamps on every header.
pub const PROTOCOL_VERSION: &str = "5.3";

/// Reads and checks a connection file as Jupyter writes it.
pub fn read_connection_file(path: &std::path::Path) -> anyhow::Result<ConnectionInfo> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the connection file {}", path.display()))?;
    let info: ConnectionInfo = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a Jupyter connection file (it needs ip, transport, the five ports, key and signature_scheme)",
            path.display()
        )
    })?;
    Ok(info)
}
