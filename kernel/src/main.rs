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
    /// The local Livy-compatible server (PySpark sessions).
    Livy {
        #[command(subcommand)]
        command: LivyCommand,
    },
    /// Data-quality monitoring in SageMaker Model Monitor's formats (as `%monitor` does).
    Monitor {
        #[command(subcommand)]
        command: rustmaker_monitor::command::MonitorCommand,
    },
    /// Training jobs from a shell, with `%train`'s arguments (`rustmaker train --help`:
    /// `%train?`).
    Train {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Tuning jobs from a shell, with `%tune`'s arguments (the request with --config FILE).
    Tune {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The notebook-instance service: SageMaker's API for notebook instances and lifecycle
    /// configurations (JSON 1.1, Signature Version 4), instances as local process trees.
    Serve(rustmaker_lifecycle::cli::ServeArgs),
    /// Notebook instances through the service's API (and the hooks' log streams).
    Instance {
        #[command(subcommand)]
        command: rustmaker_lifecycle::cli::InstanceCommand,
    },
    /// The tuner's optimiser alone, driven over stdin/stdout in JSON lines (ask/tell), for
    /// benchmarks and other programs.
    TuneAskTell,
    /// The experiment store from a shell, with `%experiments`' arguments.
    Experiments {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Subcommand)]
enum LivyCommand {
    /// Serve Livy's REST API; sessions are local PySpark processes. Basic authentication is
    /// on when RUSTMAKER_LIVY_CREDENTIALS=user:password is set.
    Serve(LivyServeArgs),
}

#[derive(Args)]
struct LivyServeArgs {
    /// Address to bind; loopback unless you mean to expose it.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 8998)]
    port: u16,
    /// The Python with pyspark [default: $RUSTMAKER_PYTHON, else python3].
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
        Command::Livy {
            command: LivyCommand::Serve(args),
        } => serve_livy(args),
        Command::Monitor { command } => monitor(command),
        Command::Train { args } => console_magic("train", &args),
        Command::Experiments { args } => console_magic("experiments", &args),
        Command::Tune { args } => console_magic("tune", &args),
        Command::Serve(args) => rustmaker_lifecycle::cli::serve(args, std::env::current_exe().ok()),
        Command::Instance { command } => rustmaker_lifecycle::cli::instance(command),
        Command::TuneAskTell => {
            rustmaker_ml::tune::ask_tell::serve(std::io::stdin().lock(), std::io::stdout().lock())
                .map_err(anyhow::Error::from)
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

/// Runs one of the ML magics in the terminal: the same code as in a notebook.
fn console_magic(name: &str, args: &[String]) -> anyhow::Result<()> {
    use rustmaker_magics::{console::Console, Magic, MagicCall, MagicForm};
    let store: rustmaker_magics::data::SharedObjectStore =
        std::sync::Arc::new(rustmaker_aws::S3Fetcher::standalone());
    let magic: Box<dyn Magic> = match name {
        "train" => Box::new(rustmaker_ml::magic::TrainMagic { store }),
        "tune" => Box::new(rustmaker_ml::tune::magic::TuneMagic { store }),
        _ => Box::new(rustmaker_ml::magic::ExperimentsMagic),
    };
    let mut console = Console::new();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "{}",
            magic
                .help()
                .replace(&format!("%{name}"), &format!("rustmaker {name}"))
        );
        return Ok(());
    }
    let call = MagicCall {
        form: MagicForm::Line,
        name: name.to_owned(),
        args: args
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" "),
        body: String::new(),
        help: false,
    };
    magic
        .run(&call, &mut console)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Quotes an argument so the magic's POSIX-style splitting gives it back unchanged.
fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=.,:/+@%".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

fn monitor(command: rustmaker_monitor::command::MonitorCommand) -> anyhow::Result<()> {
    rustmaker_monitor::cli::run(command, &rustmaker_aws::S3Fetcher::standalone())
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn serve_livy(args: LivyServeArgs) -> anyhow::Result<()> {
    use rustmaker_spark::endpoint::{state_dir, write_local_state, LocalServerInfo};
    use rustmaker_spark::server::{serve, ServerConfig};
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
    let python = args
        .python
        .or_else(|| std::env::var_os("RUSTMAKER_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("python3"));
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
