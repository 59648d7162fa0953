//! rustmaker-jupyter: the Jupyter layer of the rustmaker kernel, as xeus's server is apart from
//! its interpreters.
//!
//! - [`protocol`]: the wire format (framing, HMAC signing, session headers) and the
//!   connection file;
//! - [`server`]: the five sockets and ipykernel's request/reply behaviour, talking to an
//!   [`server::Executor`] (the threading contract is in its doc).
//!
//! Nothing here knows of Rust execution, magics or engines: `rustmaker-kernel` implements
//! [`server::Executor`] with evcxr and the magic registry.

pub mod protocol;
pub mod server;
