//! `rustmaker`: parses the command line and hands off to each part's own command-line module.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    Install(rustmaker_kernel::install::InstallArgs),
    /// The local Livy-compatible server (PySpark sessions).
    Livy {
        #[command(subcommand)]
        command: rustmaker_spark::cli::LivyCommand,
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
    /// A training job's Debugger output from a shell, with `%debugger`'s arguments.
    Debugger {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Tuning jobs from a shell, with `%tune`'s arguments (the request with --config FILE).
    Tune {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Scoring from a shell, with `%predict`'s arguments (`--output FILE.csv|FILE.parquet`).
    Predict {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Autopilot jobs from a shell, with `%autopilot`'s arguments (the request with --config FILE).
    Autopilot {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Endpoints from a shell, with `%deploy`'s arguments (served by `rustmaker serve`).
    Deploy {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// `%endpoint`'s commands: list, describe, weights, update, delete.
    Endpoint {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Calls an endpoint, as `%invoke ENDPOINT --data FILE`.
    Invoke {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Batch transform jobs, with `%transform`'s arguments.
    Transform {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The notebook-instance service: SageMaker's API for notebook instances, lifecycle
    /// configurations and model endpoints (JSON 1.1, Signature Version 4; InvokeEndpoint at
    /// /endpoints/NAME/invocations), instances as local process trees.
    Serve(rustmaker_lifecycle::cli::ServeArgs),
    /// The managed notebook instance's image (images/recipe.toml) built with mmdebstrap.
    Image {
        #[command(subcommand)]
        command: rustmaker_image::cli::ImageCommand,
    },
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

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // When evcxr starts its child process it re-runs this binary; these calls turn that
    // process into the cells' runtime (ours, which keeps a snapshot per cell, or evcxr's)
    // and never return there.
    rustmaker_kernel::execution::cell_process::hook();
    evcxr::runtime_hook();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,rustmaker_kernel=info,rustmaker_jupyter=info".into()),
        )
        .init();

    let magic = |name: &str, args: &[String]| {
        rustmaker_kernel::engines::run_in_console(name, args).map_err(|e| anyhow::anyhow!("{e}"))
    };
    // `rustmaker monitor schedule …` (and executions, schedules, unschedule) are the hosting
    // engine's, as in `%monitor`; the monitor's own sub-commands parse below.
    let argv: Vec<String> = std::env::args().collect();
    if let [_, monitor, command, ..] = argv.as_slice() {
        if monitor == "monitor"
            && rustmaker_deploy::magic::schedules::COMMANDS.contains(&command.as_str())
        {
            return magic("monitor", &argv[2..]);
        }
    }
    match Cli::parse().command {
        Command::Kernel { connection_file } => rustmaker_kernel::run(&connection_file),
        Command::Install(args) => rustmaker_kernel::install::run(args),
        Command::Livy { command } => rustmaker_spark::cli::run(command),
        Command::Monitor { command } => {
            rustmaker_monitor::cli::run(command, &rustmaker_aws::S3Fetcher::standalone())
                .map_err(|e| anyhow::anyhow!("{e}"))
        }
        Command::Train { args } => magic("train", &args),
        Command::Debugger { args } => magic("debugger", &args),
        Command::Experiments { args } => magic("experiments", &args),
        Command::Tune { args } => magic("tune", &args),
        Command::Autopilot { args } => magic("autopilot", &args),
        Command::Predict { args } => magic("predict", &args),
        Command::Deploy { args } => magic("deploy", &args),
        Command::Endpoint { args } => magic("endpoint", &args),
        Command::Invoke { args } => magic("invoke", &args),
        Command::Transform { args } => magic("transform", &args),
        Command::Serve(args) => rustmaker_lifecycle::cli::serve(
            args,
            std::env::current_exe().ok(),
            rustmaker_lifecycle::cli::Engines {
                loader: std::sync::Arc::new(rustmaker_ml::serving::Loader),
                monitor: std::sync::Arc::new(rustmaker_monitor::ScheduledCheck),
                store: std::sync::Arc::new(rustmaker_aws::S3Fetcher::standalone()),
            },
        ),
        Command::Image { command } => rustmaker_image::cli::run(command)
            .map(drop)
            .map_err(anyhow::Error::from),
        Command::Instance { command } => rustmaker_lifecycle::cli::instance(command),
        Command::TuneAskTell => {
            rustmaker_ml::tune::ask_tell::serve(std::io::stdin().lock(), std::io::stdout().lock())
                .map_err(anyhow::Error::from)
        }
    }
}
