//! rustmaker-kernel: the Jupyter kernel of rustmaker.
//!
//! - [`protocol`]: the wire format (framing, HMAC signing, session headers);
//! - [`server`]: the five sockets and the request/reply behaviour of ipykernel, talking to
//!   an [`server::Executor`];
//! - [`execution`]: the executor that runs Rust cells with evcxr and `%` magics;
//! - [`install`]: the kernelspec.

pub mod execution;
pub mod install;
pub mod protocol;
pub mod server;
