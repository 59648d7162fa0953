//! `rustmaker livy …`: the local Livy-compatible server from a shell.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum LivyCommand {
    /// Serve Livy's REST API; sessions are local PySpark processes. Basic authentication is
    /// on when RUSTMAKER_LIVY_CREDENTIALS=user:password is set.
    Serve(LivyServeArgs),
}

#[derive(Args)]
pub struct LivyServeArgs {
    /// Address to bind; loopback unless you mean to expose it.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 8998)]
    port: u16,
    /// The Python with pyspark [default: $RUSTMAKER_PYTHON, else $VIRTUAL_ENV/bin/python, else python3].
    #[arg(long)]
    python: Option<PathBuf>,
    /// Most sessions alive at once.
    #[arg(long, default_value_t = 8)]
    max_sessions: usize,
    /// Delete a session after this many seconds without requests.
    #[arg(long, default_value_t = 3600)]
    session_idle_timeout: u64,
    /// Fail a session that is not idle this many seconds after it was created.
    #[arg(long, default_value_t = 180)]
    session_startup_timeout: u64,
    /// Stop the server after this many seconds with no sessions and no requests.
    #[arg(long)]
    exit_when_idle: Option<u64>,
    /// Write the URL and credentials here once listening (mode 0600), for kernels to find.
    #[arg(long)]
    state_file: Option<PathBuf>,
}

/// Runs a `rustmaker livy` command.
pub fn run(command: LivyCommand) -> anyhow::Result<()> {
    match command {
        LivyCommand::Serve(args) => serve_livy(args),
    }
}

fn serve_livy(args: LivyServeArgs) -> anyhow::Result<()> {
    use crate::endpoint::{state_dir, write_local_state, LocalServerInfo};
    use crate::server::{serve, ServerConfig};
    use std::time::Duration;

    let credentials = match std::env::var("RUSTMAKER_LIVY_CREDENTIALS") {
        Ok(text) => {
            let (user, password) = text
                .split_once(':')
                .context("RUSTMAKER_LIVY_CREDENTIALS must be `user:password`")?;
            Some((user.to_owned(), password.to_owned()))
        }
        Err(_) => None,
    };
    if credentials.is_none() {
        eprintln!("warning: serving without authentication (set RUSTMAKER_LIVY_CREDENTIALS=user:password to require it)");
    }
    let python = args.python.unwrap_or_else(rustmaker_process::python);
    let config = ServerConfig {
        addr: std::net::SocketAddr::new(args.host, args.port),
        python,
        state_dir: state_dir(),
        max_sessions: args.max_sessions,
        session_idle_timeout: Duration::from_secs(args.session_idle_timeout),
        session_startup_timeout: Duration::from_secs(args.session_startup_timeout),
        credentials: credentials.clone(),
        exit_when_idle: args.exit_when_idle.map(Duration::from_secs),
    };
    let state_file = args.state_file;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime
        .block_on(serve(config, |addr| {
            eprintln!("Livy-compatible server listening on http://{addr}");
            if let Some(path) = &state_file {
                let (user, password) = credentials.clone().unwrap_or_default();
                let info = LocalServerInfo {
                    url: format!("http://{addr}"),
                    user,
                    password,
                    pid: std::process::id(),
                };
                if let Err(e) = write_local_state(path, &info) {
                    eprintln!("cannot write {}: {e}", path.display());
                }
            }
        }))
        .context("the Livy server stopped")?;
    if let Some(path) = &state_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}
