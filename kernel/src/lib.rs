//! rustmaker-kernel: what runs behind the Jupyter layer ([`rustmaker_jupyter`]).
//!
//! - [`execution`]: the [`rustmaker_jupyter::server::Executor`] that runs Rust cells with
//!   evcxr (a child process that survives panics) and `%` magics through the registry;
//! - [`engines`]: the one place where every engine's magics are registered and the services
//!   they share are wired (object storage, EMR lookup, the Spark connector), for the kernel and
//!   for the command line alike;
//! - [`install`]: the kernelspec.
//!
//! The `rustmaker` binary (`src/main.rs`) only parses the command line and hands off to each
//! part's own command-line module.

pub mod engines;
pub mod execution;
pub mod install;

/// Serves the kernel for a Jupyter connection file until Jupyter shuts it down.
pub fn run(connection_file: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let info = rustmaker_jupyter::protocol::read_connection_file(connection_file)?;
    // Before the runtime's threads: the executor sets the environment evcxr inherits.
    let executor = execution::CellExecutor::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(rustmaker_jupyter::server::serve(info, Box::new(executor)))?;
    // Child threads (evcxr's readers) must not keep a finished kernel alive.
    std::process::exit(0);
}
