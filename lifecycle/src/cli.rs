//! The command line: `rustmaker serve` (the instance service and its API) and
//! `rustmaker instance …` (an operator's client of that API, plus the hooks' log streams).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::api::{self, Keys};
use crate::backend::image::ImageBackend;
use crate::backend::vm::VmBackend;
use crate::backend::{Backend, LocalBackend};
use crate::config::{encode_script, Hook};
use crate::logs::LogStream;
use crate::manager::{Manager, Settings};
use rustmaker_sagemaker::client::Client;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The address to listen on (loopback unless you mean otherwise).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    #[arg(long, default_value_t = 8770)]
    pub port: u16,
    /// The service's state (instances, homes, logs); default $RUSTMAKER_DATA_DIR/instances.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// A JSON file of access keys: {"ACCESS_KEY_ID": "SECRET", …}. Else $RUSTMAKER_API_KEYS
    /// (ID:SECRET,…); else a key pair is made in the state folder's api-keys.json.
    #[arg(long)]
    pub keys_file: Option<PathBuf>,
    /// Each lifecycle hook's time limit in seconds (SageMaker's is 300).
    #[arg(long, default_value_t = 300)]
    pub hook_timeout: u64,
    #[arg(long, default_value_t = 20)]
    pub max_instances: usize,
    /// The notebook server's command ({port}, {token}, {root}, {python} filled in); default
    /// JupyterLab of the instance's Python.
    #[arg(long, num_args = 1.., allow_hyphen_values = true)]
    pub instance_server: Option<Vec<String>>,
    /// The Python instances' environments are made from (default $RUSTMAKER_PYTHON, else
    /// $VIRTUAL_ENV/bin/python, else python3).
    #[arg(long)]
    pub python: Option<String>,
    /// Seconds a pre-signed URL stays valid (SageMaker: 300).
    #[arg(long, default_value_t = 300)]
    pub presigned_url_seconds: u64,
    /// Run instances' notebook servers without namespaces of their own (by default they get
    /// PID, mount, IPC and UTS namespaces when the service runs as root and `unshare` works).
    #[arg(long)]
    pub no_namespaces: bool,
    /// Write {"url": …} here once listening (for scripts and tests).
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// Where instances run: `local` (process trees on this host, the default), `image` (each
    /// instance a root of its own from --image, its hooks run inside it) or `vm` (each
    /// instance a qemu machine booted from --image's qcow2, its hooks run inside it).
    #[arg(long, default_value = "local", value_parser = ["local", "image", "vm"])]
    pub backend: String,
    /// The notebook-instance image for `--backend image|vm`: the folder `rustmaker image
    /// build` wrote (default images/out/minimal, or images/out/vm, of this checkout).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// qemu's accelerator for `--backend vm`: `tcg` (full emulation, works everywhere) or
    /// `kvm`.
    #[arg(long, default_value = "tcg", value_parser = ["tcg", "kvm"])]
    pub vm_accel: String,
}

#[derive(Subcommand, Debug)]
pub enum InstanceCommand {
    /// CreateNotebookInstance.
    Create {
        name: String,
        #[arg(long, default_value = "ml.t3.medium")]
        instance_type: String,
        #[arg(
            long,
            default_value = "arn:aws:iam::000000000000:role/rustmaker-notebook"
        )]
        role_arn: String,
        #[arg(long)]
        lifecycle_config: Option<String>,
        #[arg(long)]
        volume_size: Option<u64>,
        #[arg(long)]
        default_code_repository: Option<String>,
        #[arg(long)]
        additional_code_repository: Vec<String>,
    },
    Describe {
        name: String,
    },
    List,
    Start {
        name: String,
    },
    Stop {
        name: String,
    },
    Delete {
        name: String,
    },
    /// CreatePresignedNotebookInstanceUrl.
    Url {
        name: String,
    },
    /// A hook's log stream, read from the service's state folder.
    Logs {
        name: String,
        #[arg(long, default_value = "OnStart")]
        hook: String,
        #[arg(long)]
        follow: bool,
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// The boot step of an instance started from the notebook-instance image (its PID 1:
    /// the lifecycle hooks, then JupyterLab). The image backend runs it inside the instance.
    #[command(hide = true)]
    Boot,
    /// CreateNotebookInstanceLifecycleConfig from script files.
    CreateLifecycleConfig {
        name: String,
        #[arg(long)]
        on_create: Option<PathBuf>,
        #[arg(long)]
        on_start: Option<PathBuf>,
    },
    DescribeLifecycleConfig {
        name: String,
    },
    DeleteLifecycleConfig {
        name: String,
    },
}

/// The service's state folder when none is given: `{data}/instances`. A running service
/// names itself in its `service.json` there (url and pid), which the deployment magics read.
pub fn default_state_dir() -> PathBuf {
    rustmaker_process::data_dir().join("instances")
}

fn load_keys(args: &ServeArgs, state: &std::path::Path) -> anyhow::Result<Keys> {
    if let Some(path) = &args.keys_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the keys file {}", path.display()))?;
        let keys: Keys = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} must be a JSON object of access key id → secret",
                path.display()
            )
        })?;
        if keys.is_empty() {
            bail!("{} holds no keys", path.display());
        }
        return Ok(keys);
    }
    if let Ok(text) = std::env::var("RUSTMAKER_API_KEYS") {
        let mut keys = Keys::new();
        for pair in text.split(',').filter(|p| !p.is_empty()) {
            let (id, secret) = pair
                .split_once(':')
                .context("RUSTMAKER_API_KEYS must be ACCESS_KEY_ID:SECRET[,…]")?;
            keys.insert(id.to_owned(), secret.to_owned());
        }
        return Ok(keys);
    }
    let path = state.join("api-keys.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is not a keys file", path.display()));
    }
    let random = crate::manager::random_hex;
    let keys: Keys = [(
        format!("AKRM{}", random(8).to_ascii_uppercase()),
        random(20),
    )]
    .into();
    std::fs::create_dir_all(state)?;
    std::fs::write(&path, serde_json::to_string_pretty(&keys)?)?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    eprintln!(
        "made an access key for the API in {} (give it to the AWS CLI or boto3)",
        path.display()
    );
    Ok(keys)
}

/// What the service's endpoints need from the engines (the composition root wires the
/// training engine's loader and the monitor's check).
pub struct Engines {
    /// Loads the models endpoints serve.
    pub loader: Arc<dyn rustmaker_magics::services::ModelLoader>,
    /// Checks captured traffic for monitoring schedules.
    pub monitor: Arc<dyn rustmaker_magics::services::CaptureMonitor>,
    /// Where `s3://` data capture is uploaded to (and read back from for schedules).
    pub store: Arc<dyn rustmaker_magics::data::ObjectStore>,
}

pub fn serve(args: ServeArgs, rustmaker: Option<PathBuf>, engines: Engines) -> anyhow::Result<()> {
    let state = args.state_dir.clone().unwrap_or_else(default_state_dir);
    std::fs::create_dir_all(&state).with_context(|| format!("cannot make {}", state.display()))?;
    let keys = load_keys(&args, &state)?;
    let python = args
        .python
        .clone()
        .unwrap_or_else(|| rustmaker_process::python().display().to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind((args.host, args.port)))
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr = api::local_addr(&listener);
    let url = format!("http://{addr}");
    let backend = backend(&args)?;
    let manager: Arc<Manager> = Manager::new(
        Settings {
            root: state.clone(),
            hook_limit: Duration::from_secs(args.hook_timeout),
            max_instances: args.max_instances,
            python,
            rustmaker,
            public_url: url.clone(),
            presigned_url_seconds: args.presigned_url_seconds,
        },
        backend,
    )?;
    for (name, what) in manager.recover().map_err(|e| anyhow::anyhow!("{e}"))? {
        eprintln!("recovered {name}: {what}");
    }
    eprintln!(
        "notebook-instance service listening on {url} (state in {})",
        state.display()
    );
    let hosting = Arc::new(
        rustmaker_deploy::hosting::Hosting::open(&state.join("hosting.db"), engines.loader)
            .map_err(|e| anyhow::anyhow!("cannot open the hosting store: {e}"))?
            .with_monitor(engines.monitor)
            .with_store(engines.store),
    );
    for name in hosting.recover().map_err(|e| anyhow::anyhow!("{e}"))? {
        eprintln!("recovering endpoint {name}");
    }
    let ready = json!({"url": url, "pid": std::process::id()}).to_string();
    rustmaker_process::write_atomic(&state.join("service.json"), ready.as_bytes(), None)?;
    if let Some(path) = &args.ready_file {
        std::fs::write(path, &ready)?;
    }
    runtime.block_on(api::serve(manager, hosting, keys, listener))?;
    Ok(())
}

fn backend(args: &ServeArgs) -> anyhow::Result<Box<dyn Backend>> {
    let ready_timeout = Duration::from_secs(120);
    if args.backend == "image" {
        ImageBackend::available()?;
        let image = args.image.clone().unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../images/out/minimal")
        });
        let backend = ImageBackend::open(&image, ready_timeout)?;
        eprintln!("instances run from the image {}", backend.image.display());
        return Ok(Box::new(backend));
    }
    if args.backend == "vm" {
        VmBackend::available()?;
        let image = args
            .image
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../images/out/vm"));
        // A machine under full emulation takes its time to boot Python and JupyterLab.
        let backend = VmBackend::open(&image, Duration::from_secs(600), &args.vm_accel)?;
        eprintln!(
            "instances run as {} machines booted from {}",
            args.vm_accel,
            backend.image.display()
        );
        return Ok(Box::new(backend));
    }
    let backend = LocalBackend {
        server_command: args
            .instance_server
            .clone()
            .unwrap_or_else(LocalBackend::jupyterlab),
        ready_timeout,
        namespaces: !args.no_namespaces && LocalBackend::namespaces_available(),
    };
    if !backend.namespaces {
        eprintln!("instances run without namespaces of their own (not root, no unshare, or --no-namespaces)");
    }
    Ok(Box::new(backend))
}

fn client() -> anyhow::Result<Client> {
    let endpoint = std::env::var("RUSTMAKER_ENDPOINT_URL")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL_SAGEMAKER"))
        .unwrap_or_else(|_| "http://127.0.0.1:8770".into());
    let (id, secret) = match (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Ok(id), Ok(secret)) => (id, secret),
        _ => {
            let path = default_state_dir().join("api-keys.json");
            let keys: BTreeMap<String, String> = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .with_context(|| {
                    format!("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or keep the service's {})", path.display())
                })?;
            keys.into_iter().next().context("the keys file is empty")?
        }
    };
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".into());
    Ok(Client::new(&endpoint, &id, &secret, &region))
}

fn print(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub fn instance(command: InstanceCommand) -> anyhow::Result<()> {
    let call =
        |op: &str, input: Value| -> anyhow::Result<Value> { Ok(client()?.call(op, &input)?) };
    // The calls that take only a name.
    let by_name = |op: &str, field: &str, name: String| -> anyhow::Result<()> {
        print(&call(op, json!({ field: name }))?);
        Ok(())
    };
    const INSTANCE: &str = "NotebookInstanceName";
    const CONFIG: &str = "NotebookInstanceLifecycleConfigName";
    match command {
        InstanceCommand::Boot => {
            let code = crate::boot::boot().map_err(|e| anyhow::anyhow!("boot: {e}"))?;
            std::process::exit(code)
        }
        InstanceCommand::Create {
            name,
            instance_type,
            role_arn,
            lifecycle_config,
            volume_size,
            default_code_repository,
            additional_code_repository,
        } => {
            let mut input = json!({"NotebookInstanceName": name, "InstanceType": instance_type, "RoleArn": role_arn});
            if let Some(c) = lifecycle_config {
                input["LifecycleConfigName"] = json!(c);
            }
            if let Some(v) = volume_size {
                input["VolumeSizeInGB"] = json!(v);
            }
            if let Some(r) = default_code_repository {
                input["DefaultCodeRepository"] = json!(r);
            }
            if !additional_code_repository.is_empty() {
                input["AdditionalCodeRepositories"] = json!(additional_code_repository);
            }
            print(&call("CreateNotebookInstance", input)?);
        }
        InstanceCommand::Describe { name } => by_name("DescribeNotebookInstance", INSTANCE, name)?,
        InstanceCommand::List => print(&call("ListNotebookInstances", json!({}))?),
        InstanceCommand::Start { name } => by_name("StartNotebookInstance", INSTANCE, name)?,
        InstanceCommand::Stop { name } => by_name("StopNotebookInstance", INSTANCE, name)?,
        InstanceCommand::Delete { name } => by_name("DeleteNotebookInstance", INSTANCE, name)?,
        InstanceCommand::Url { name } => {
            let v = call(
                "CreatePresignedNotebookInstanceUrl",
                json!({ INSTANCE: name }),
            )?;
            println!("{}", v["AuthorizedUrl"].as_str().unwrap_or_default());
        }
        InstanceCommand::CreateLifecycleConfig {
            name,
            on_create,
            on_start,
        } => {
            let hook = |p: Option<PathBuf>| -> anyhow::Result<Value> {
                Ok(match p {
                    None => json!([]),
                    Some(p) => {
                        let text = std::fs::read_to_string(&p)
                            .with_context(|| format!("cannot read {}", p.display()))?;
                        json!([{"Content": encode_script(&text)}])
                    }
                })
            };
            print(&call(
                "CreateNotebookInstanceLifecycleConfig",
                json!({"NotebookInstanceLifecycleConfigName": name, "OnCreate": hook(on_create)?, "OnStart": hook(on_start)?}),
            )?);
        }
        InstanceCommand::DescribeLifecycleConfig { name } => {
            by_name("DescribeNotebookInstanceLifecycleConfig", CONFIG, name)?
        }
        InstanceCommand::DeleteLifecycleConfig { name } => {
            by_name("DeleteNotebookInstanceLifecycleConfig", CONFIG, name)?
        }
        InstanceCommand::Logs {
            name,
            hook,
            follow,
            state_dir,
        } => {
            let hook = match hook.to_ascii_lowercase().as_str() {
                "oncreate" => Hook::OnCreate,
                "onstart" => Hook::OnStart,
                other => bail!("--hook {other}: use OnCreate or OnStart"),
            };
            let root = state_dir.unwrap_or_else(default_state_dir).join("logs");
            let stream = LogStream::for_hook(&root, &name, hook);
            let (text, mut at) = stream.read_from(0);
            if text.is_empty() && !follow {
                bail!(
                    "the log stream {} is empty (no {} run yet, or another --state-dir)",
                    stream.name,
                    hook.as_str()
                );
            }
            print!("{text}");
            if follow {
                // Until interrupted, as `tail -f`.
                loop {
                    std::thread::sleep(Duration::from_millis(500));
                    let (more, next) = stream.read_from(at);
                    print!("{more}");
                    let _ = std::io::stdout().flush();
                    at = next;
                }
            }
        }
    }
    Ok(())
}
