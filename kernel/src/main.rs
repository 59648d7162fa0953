//! `rustmaker`: the kernel process and the command-line tools around it.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use rustmaker_kernel::execution::CellExecutor;
use rustmaker_kernel::install::{install, Location};
use rustmaker_kernel::protocol::read_connection_file;

#[derive(Parser)]
#[command(
    name = "rustmaker",
    version,
    about = "rustmaker: a Jupyter kernel for Rust with data-science magics"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the kernel for a Jupyter connection file (Jupyter starts this for you).
    Kernel {
        /// The connection file Jupyter wrote.
        #[arg(short = 'f', long)]
        connection_file: PathBuf,
    },
    /// Install the kernelspec so Jupyter offers "Rust (rustmaker)".
    Install(InstallArgs),
}

#[derive(Args)]
#[group(multiple = false)]
struct Where {
    /// Install for the current user (the default).
    #[arg(long)]
    user: bool,
    /// Install into the active Python environment (a virtualenv or conda env).
    #[arg(long)]
    sys_prefix: bool,
    /// Install under DIR/share/jupyter.
    #[arg(long, value_name = "DIR")]
    prefix: Option<PathBuf>,
}

#[derive(Args)]
struct InstallArgs {
    #[command(flatten)]
    location: Where,
    /// The kernelspec's name.
    #[arg(long, default_value = "rustmaker")]
    name: String,
    /// How Jupyter interrupts the kernel: `message` (interrupt_request) or `signal` (SIGINT).
    #[arg(long, default_value = "message")]
    interrupt_mode: String,
}

fn main() -> anyhow::Result<()> {
    // When evcxr starts its child process it re-runs this binary; this call turns that
    // process into evcxr's runtime and never returns there.
    evcxr::runtime_hook();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,rustmaker_kernel=info".into()),
        )
        .init();

    match Cli::parse().command {
        Command::Kernel { connection_file } => {
            let info = read_connection_file(&connection_file)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(rustmaker_kernel::server::serve(
                info,
                Box::new(CellExecutor::start()),
            ))?;
            // Child threads (evcxr's readers) must not keep a finished kernel alive.
            std::process::exit(0);
        }
        Command::Install(args) => {
            let location = match args.location {
                Where {
                    sys_prefix: true, ..
                } => Location::SysPrefix,
                Where {
                    prefix: Some(dir), ..
                } => Location::Prefix(dir),
                _ => Location::User,
            };
            let dir = install(&location, &args.name, &args.interrupt_mode)?;
            println!(
                "Installed the kernelspec `{}` in {}",
                args.name,
                dir.display()
            );
            Ok(())
        }
    }
}
