//! The instance manager: SageMaker's notebook-instance operations over the state store, the
//! lifecycle hooks and a [`Backend`]. Requests are answered at once; the work of a create,
//! start, stop or delete goes on in a thread of its own, as SageMaker's asynchronous states
//! (Pending, Stopping, Deleting) show. State is written before each step, so [`Manager::recover`]
//! can finish or redo whatever a crash interrupted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::backend::{Backend, LaunchSpec, Running};
use crate::config::{Hook, LifecycleConfig};
use crate::hooks::{self, HookOutcome, HookRun};
use crate::instance::{self, Instance};
use crate::logs::LogStream;
use crate::state::{InstanceStatus, Operation};
use crate::store::StateStore;
use crate::LifecycleError;

/// The API's error kinds, with SageMaker's codes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "ValidationException",
            ApiError::NotFound(_) => "ResourceNotFound",
            ApiError::LimitExceeded(_) => "ResourceLimitExceeded",
            ApiError::InUse(_) => "ResourceInUse",
            ApiError::Internal(_) => "InternalFailure",
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> ApiError {
        match e {
            LifecycleError::Validation(m) | LifecycleError::State(m) => ApiError::Validation(m),
            LifecycleError::Io(m) => ApiError::Internal(m),
        }
    }
}

pub struct Settings {
    /// The service's folder: state.db, instances/, logs/.
    pub root: PathBuf,
    pub hook_limit: Duration,
    pub max_instances: usize,
    /// The Python whose packages instances start from (JupyterLab).
    pub python: String,
    /// The rustmaker binary, to install the kernel into each instance.
    pub rustmaker: Option<PathBuf>,
    /// The service's own URL (for pre-signed URLs and the instances' API endpoint).
    pub public_url: String,
    pub presigned_url_seconds: u64,
}

/// What CreateNotebookInstance asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub instance_type: String,
    pub role_arn: String,
    pub lifecycle_config: Option<String>,
    pub volume_size_gb: Option<u64>,
    pub default_code_repository: Option<String>,
    pub additional_code_repositories: Vec<String>,
    pub root_access: Option<String>,
    pub direct_internet_access: Option<String>,
    pub platform_identifier: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// What UpdateNotebookInstance may change.
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    pub instance_type: Option<String>,
    pub role_arn: Option<String>,
    pub lifecycle_config: Option<String>,
    pub disassociate_lifecycle_config: bool,
    pub volume_size_gb: Option<u64>,
    pub default_code_repository: Option<String>,
    pub disassociate_default_code_repository: bool,
    pub additional_code_repositories: Option<Vec<String>>,
    pub disassociate_additional_code_repositories: bool,
    pub root_access: Option<String>,
}

pub struct Manager {
    settings: Settings,
    store: StateStore,
    backend: Box<dyn Backend>,
    /// Serialises the check-then-write of state transitions.
    transitions: Mutex<()>,
    secret: Vec<u8>,
    /// Where the service's Python keeps its packages (asked once).
    base_purelib: std::sync::OnceLock<Option<String>>,
}

pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Random bytes as hex (keys, tokens), from the kernel's generator.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    hex::encode(buf)
}

fn check_choice(value: &Option<String>, field: &str, allowed: &[&str]) -> Result<(), ApiError> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(ApiError::Validation(format!(
            "{field} `{v}` is not one of {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

fn check_volume(v: Option<u64>) -> Result<(), ApiError> {
    match v {
        Some(v) if !(5..=16_384).contains(&v) => Err(ApiError::Validation(format!(
            "VolumeSizeInGB {v} is outside 5 to 16384"
        ))),
        _ => Ok(()),
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("Notebook instance {name} does not exist"))
}

fn config_not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!(
        "Notebook Instance Lifecycle Config {name} does not exist"
    ))
}

/// Every process this instance started (found by the run id in its environment) is killed:
/// the notebook server, its kernels, and what the hooks left in the background.
fn kill_instance_processes(run_id: &str) {
    let needle = format!("RUSTMAKER_INSTANCE_RUN={run_id}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if environ.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

impl Manager {
    pub fn new(
        settings: Settings,
        backend: Box<dyn Backend>,
    ) -> Result<Arc<Manager>, LifecycleError> {
        std::fs::create_dir_all(&settings.root).map_err(|e| {
            LifecycleError::Io(format!("cannot make {}: {e}", settings.root.display()))
        })?;
        let store = StateStore::open(&settings.root.join("state.db"))?;
        let key_path = settings.root.join("service.key");
        let secret = match std::fs::read_to_string(&key_path) {
            Ok(k) if !k.trim().is_empty() => k.trim().as_bytes().to_vec(),
            _ => {
                let k = random_hex(32);
                std::fs::write(&key_path, &k).map_err(|e| {
                    LifecycleError::Io(format!("cannot write {}: {e}", key_path.display()))
                })?;
                k.into_bytes()
            }
        };
        Ok(Arc::new(Manager {
            settings,
            store,
            backend,
            transitions: Mutex::new(()),
            secret,
            base_purelib: std::sync::OnceLock::new(),
        }))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn instance_dir(&self, name: &str) -> PathBuf {
        self.settings.root.join("instances").join(name)
    }

    pub fn log_stream(&self, name: &str, hook: Hook) -> LogStream {
        LogStream::for_hook(&self.settings.root.join("logs"), name, hook)
    }

    pub fn home(&self, name: &str) -> PathBuf {
        self.instance_dir(name).join("home")
    }

    fn get(&self, name: &str) -> Result<Instance, ApiError> {
        self.store.instance(name)?.ok_or_else(|| not_found(name))
    }

    fn save(&self, i: &Instance) -> Result<(), ApiError> {
        self.store.put_instance(i).map_err(ApiError::from)
    }

    /// Changes an instance's status if `op` is allowed in its current one.
    fn transition(
        &self,
        name: &str,
        op: Operation,
        to: InstanceStatus,
        edit: impl FnOnce(&mut Instance) -> Result<(), ApiError>,
    ) -> Result<Instance, ApiError> {
        let _guard = self.transitions.lock().unwrap_or_else(|p| p.into_inner());
        let mut i = self.get(name)?;
        i.status.check(op, name)?;
        edit(&mut i)?;
        i.status = to;
        i.last_modified_time = now();
        self.save(&i)?;
        Ok(i)
    }

    fn set_status(&self, name: &str, status: InstanceStatus, reason: Option<String>) {
        let _guard = self.transitions.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(Some(mut i)) = self.store.instance(name) {
            i.status = status;
            i.failure_reason = reason;
            i.last_modified_time = now();
            if status != InstanceStatus::InService {
                i.port = None;
                i.pid = None;
            }
            let _ = self.store.put_instance(&i);
        }
    }

    fn spawn(self: &Arc<Self>, name: &str, work: fn(&Arc<Manager>, &str)) {
        let me = self.clone();
        let name = name.to_owned();
        std::thread::spawn(move || work(&me, &name));
    }

    // ---- lifecycle configurations ----

    pub fn create_config(
        &self,
        name: &str,
        on_create: &[String],
        on_start: &[String],
    ) -> Result<LifecycleConfig, ApiError> {
        let c = LifecycleConfig::new(name, on_create, on_start, now())?;
        if !self.store.insert_config(&c)? {
            return Err(ApiError::Validation(format!(
                "Unable to create Notebook Instance Lifecycle Config {name}: a config with this name already exists"
            )));
        }
        Ok(c)
    }

    pub fn config(&self, name: &str) -> Result<LifecycleConfig, ApiError> {
        self.store
            .config(name)?
            .ok_or_else(|| config_not_found(name))
    }

    pub fn configs(&self) -> Result<Vec<LifecycleConfig>, ApiError> {
        Ok(self.store.configs()?)
    }

    pub fn update_config(
        &self,
        name: &str,
        on_create: &[String],
        on_start: &[String],
    ) -> Result<(), ApiError> {
        let old = self.config(name)?;
        let mut c = LifecycleConfig::new(name, on_create, on_start, old.creation_time)?;
        c.last_modified_time = now();
        self.store.put_config(&c)?;
        Ok(())
    }

    pub fn delete_config(&self, name: &str) -> Result<(), ApiError> {
        self.config(name)?;
        let users: Vec<String> = self
            .store
            .instances()?
            .into_iter()
            .filter(|i| i.lifecycle_config.as_deref() == Some(name))
            .map(|i| i.name)
            .collect();
        if !users.is_empty() {
            return Err(ApiError::InUse(format!(
                "Notebook Instance Lifecycle Config {name} is used by {}; update them first",
                users.join(", ")
            )));
        }
        self.store.delete_config(name)?;
        Ok(())
    }

    // ---- instances ----

    pub fn instances(&self) -> Result<Vec<Instance>, ApiError> {
        Ok(self.store.instances()?)
    }

    pub fn describe(&self, name: &str) -> Result<Instance, ApiError> {
        self.get(name)
    }

    pub fn create(self: &Arc<Self>, r: CreateRequest) -> Result<Instance, ApiError> {
        crate::config::check_name(&r.name, "NotebookInstanceName")?;
        if !r.instance_type.starts_with("ml.") {
            return Err(ApiError::Validation(format!(
                "InstanceType `{}` is not a notebook instance type (ml.t3.medium, ml.m5.xlarge, …)",
                r.instance_type
            )));
        }
        if r.role_arn.len() < 20 {
            return Err(ApiError::Validation(
                "RoleArn is required (an IAM role ARN; this host does not use it)".into(),
            ));
        }
        check_volume(r.volume_size_gb)?;
        check_choice(&r.root_access, "RootAccess", &["Enabled", "Disabled"])?;
        check_choice(
            &r.direct_internet_access,
            "DirectInternetAccess",
            &["Enabled", "Disabled"],
        )?;
        if r.additional_code_repositories.len() > 3 {
            return Err(ApiError::Validation(
                "AdditionalCodeRepositories takes at most 3 repositories".into(),
            ));
        }
        if let Some(c) = &r.lifecycle_config {
            self.config(c).map_err(|_| {
                ApiError::Validation(format!(
                    "Unable to create Notebook Instance: the lifecycle config {c} does not exist"
                ))
            })?;
        }
        let _guard = self.transitions.lock().unwrap_or_else(|p| p.into_inner());
        let live = self.store.instances()?.len();
        if live >= self.settings.max_instances {
            return Err(ApiError::LimitExceeded(format!(
                "The account-level service limit 'Number of notebook instances' is {} Instances, with current utilization of {live} Instances; delete instances or raise --max-instances",
                self.settings.max_instances
            )));
        }
        let t = now();
        let i = Instance {
            arn: instance::arn(&r.name),
            name: r.name.clone(),
            status: InstanceStatus::Pending,
            failure_reason: None,
            instance_type: r.instance_type,
            role_arn: r.role_arn,
            lifecycle_config: r.lifecycle_config,
            volume_size_gb: r.volume_size_gb.unwrap_or(5),
            default_code_repository: r.default_code_repository,
            additional_code_repositories: r.additional_code_repositories,
            root_access: r.root_access.unwrap_or_else(|| "Enabled".into()),
            direct_internet_access: r.direct_internet_access.unwrap_or_else(|| "Enabled".into()),
            platform_identifier: r
                .platform_identifier
                .unwrap_or_else(|| "notebook-al2-v2".into()),
            creation_time: t,
            last_modified_time: t,
            port: None,
            pid: None,
            jupyter_token: String::new(),
            access_key: format!("RMI{}", random_hex(8).to_ascii_uppercase()),
            secret_key: random_hex(20),
            volume_note: None,
            tags: r.tags,
        };
        if !self.store.insert_instance(&i)? {
            return Err(ApiError::Validation(format!(
                "Cannot create a duplicate Notebook Instance ({})",
                r.name
            )));
        }
        drop(_guard);
        self.spawn(&i.name, |m, n| m.provision(n, true));
        Ok(i)
    }

    pub fn start(self: &Arc<Self>, name: &str) -> Result<(), ApiError> {
        self.transition(name, Operation::Start, InstanceStatus::Pending, |i| {
            i.failure_reason = None;
            Ok(())
        })?;
        self.spawn(name, |m, n| m.provision(n, false));
        Ok(())
    }

    pub fn stop(self: &Arc<Self>, name: &str) -> Result<(), ApiError> {
        self.transition(name, Operation::Stop, InstanceStatus::Stopping, |_| Ok(()))?;
        self.spawn(name, |m, n| m.halt(n));
        Ok(())
    }

    pub fn delete(self: &Arc<Self>, name: &str) -> Result<(), ApiError> {
        self.transition(
            name,
            Operation::Delete,
            InstanceStatus::Deleting,
            |_| Ok(()),
        )?;
        self.spawn(name, |m, n| m.remove(n));
        Ok(())
    }

    pub fn update(&self, name: &str, u: UpdateRequest) -> Result<(), ApiError> {
        check_volume(u.volume_size_gb)?;
        check_choice(&u.root_access, "RootAccess", &["Enabled", "Disabled"])?;
        if let Some(t) = &u.instance_type {
            if !t.starts_with("ml.") {
                return Err(ApiError::Validation(format!(
                    "InstanceType `{t}` is not a notebook instance type"
                )));
            }
        }
        if let Some(c) = &u.lifecycle_config {
            self.config(c).map_err(|_| {
                ApiError::Validation(format!("the lifecycle config {c} does not exist"))
            })?;
        }
        self.transition(name, Operation::Update, InstanceStatus::Updating, |i| {
            if let Some(v) = u.volume_size_gb {
                if v < i.volume_size_gb {
                    return Err(ApiError::Validation(format!(
                        "VolumeSizeInGB can only grow (it is {} GB, asked {v})",
                        i.volume_size_gb
                    )));
                }
                i.volume_size_gb = v;
            }
            if let Some(t) = u.instance_type {
                i.instance_type = t;
            }
            if let Some(r) = u.role_arn {
                i.role_arn = r;
            }
            if u.disassociate_lifecycle_config {
                i.lifecycle_config = None;
            } else if let Some(c) = u.lifecycle_config {
                i.lifecycle_config = Some(c);
            }
            if u.disassociate_default_code_repository {
                i.default_code_repository = None;
            } else if let Some(r) = u.default_code_repository {
                i.default_code_repository = Some(r);
            }
            if u.disassociate_additional_code_repositories {
                i.additional_code_repositories.clear();
            } else if let Some(r) = u.additional_code_repositories {
                i.additional_code_repositories = r;
            }
            if let Some(r) = u.root_access {
                i.root_access = r;
            }
            Ok(())
        })?;
        // Nothing runs while Stopped: the update is done once written.
        self.set_status(name, InstanceStatus::Stopped, None);
        Ok(())
    }

    /// A URL that opens the instance's JupyterLab, valid for `presigned_url_seconds`.
    pub fn presigned_url(&self, name: &str) -> Result<String, ApiError> {
        let i = self.get(name)?;
        i.status.check(Operation::PresignedUrl, name)?;
        let expires = now() as u64 + self.settings.presigned_url_seconds;
        let signature = self.sign(&format!("{name}\n{expires}"));
        Ok(format!(
            "{}/notebook-instances/{name}/open?expires={expires}&signature={signature}",
            self.settings.public_url.trim_end_matches('/')
        ))
    }

    fn sign(&self, text: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Checks a pre-signed URL and returns where it leads: the instance's JupyterLab, logged
    /// in with its token.
    pub fn open(&self, name: &str, expires: u64, signature: &str) -> Result<String, ApiError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(format!("{name}\n{expires}").as_bytes());
        let given = hex::decode(signature).unwrap_or_default();
        if mac.verify_slice(&given).is_err() {
            return Err(ApiError::Validation(
                "the URL's signature is not valid".into(),
            ));
        }
        if (now() as u64) > expires {
            return Err(ApiError::Validation(
                "the pre-signed URL has expired; ask for a new one (CreatePresignedNotebookInstanceUrl)".into(),
            ));
        }
        let i = self.get(name)?;
        i.status.check(Operation::PresignedUrl, name)?;
        let port = i
            .port
            .ok_or_else(|| ApiError::Internal(format!("{name} has no server")))?;
        Ok(format!(
            "http://127.0.0.1:{port}/lab?token={}",
            i.jupyter_token
        ))
    }

    /// Which instance an access key belongs to (instances may describe and stop themselves).
    pub fn instance_key(&self, access_key: &str) -> Option<(String, String)> {
        self.store
            .instances()
            .ok()?
            .into_iter()
            .find(|i| i.access_key == access_key)
            .map(|i| (i.name, i.secret_key))
    }

    // ---- the work behind the states ----

    fn environment(&self, i: &Instance, run: &Path) -> Vec<(String, String)> {
        let home = self.home(&i.name);
        let venv = run.join("python");
        let path = format!(
            "{}:{}",
            venv.join("bin").display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
        );
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in [
            ("HOME", home.display().to_string()),
            (
                "USER",
                std::env::var("USER").unwrap_or_else(|_| "root".into()),
            ),
            ("PATH", path),
            ("LANG", "C.UTF-8".into()),
            ("VIRTUAL_ENV", venv.display().to_string()),
            ("NOTEBOOK_INSTANCE_NAME", i.name.clone()),
            ("RUSTMAKER_INSTANCE_NAME", i.name.clone()),
            ("RUSTMAKER_INSTANCE_RUN", i.jupyter_token.clone()),
            (
                "RUSTMAKER_INSTANCE_ENV",
                run.join("environment").display().to_string(),
            ),
            (
                "RUSTMAKER_JUPYTER_INFO",
                run.join("jupyter.json").display().to_string(),
            ),
            (
                "JUPYTER_PATH",
                run.join("jupyter/share/jupyter").display().to_string(),
            ),
            (
                "JUPYTER_RUNTIME_DIR",
                run.join("runtime").display().to_string(),
            ),
            ("AWS_ACCESS_KEY_ID", i.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", i.secret_key.clone()),
            ("AWS_DEFAULT_REGION", instance::REGION.into()),
            ("AWS_REGION", instance::REGION.into()),
            (
                "AWS_ENDPOINT_URL_SAGEMAKER",
                self.settings.public_url.clone(),
            ),
        ] {
            env.insert(k.into(), v);
        }
        env.into_iter().collect()
    }

    /// Create (`first`) or start: reset what does not persist, clone repositories, run the
    /// hooks, launch the server.
    fn provision(self: &Arc<Self>, name: &str, first: bool) {
        match self.try_provision(name, first) {
            Ok(()) => {}
            Err(reason) => {
                if let Ok(i) = self.get(name) {
                    kill_instance_processes(&i.jupyter_token);
                }
                self.set_status(name, InstanceStatus::Failed, Some(reason));
            }
        }
    }

    fn try_provision(self: &Arc<Self>, name: &str, first: bool) -> Result<(), String> {
        let dir = self.instance_dir(name);
        let home = self.home(name);
        let run = dir.join("run");
        let mut i = self.get(name).map_err(|e| e.to_string())?;
        // A new run id (and Jupyter token) for every start.
        i.jupyter_token = random_hex(24);
        self.save(&i).map_err(|e| e.to_string())?;
        // Only home/SageMaker survives a stop: the rest of the instance starts afresh.
        let keep = home.join("SageMaker");
        std::fs::create_dir_all(&keep)
            .map_err(|e| format!("cannot make {}: {e}", keep.display()))?;
        if let Ok(entries) = std::fs::read_dir(&home) {
            for e in entries.flatten() {
                if e.path() != keep {
                    let _ = std::fs::remove_dir_all(e.path())
                        .or_else(|_| std::fs::remove_file(e.path()));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&run);
        std::fs::create_dir_all(run.join("runtime")).map_err(|e| e.to_string())?;
        std::fs::write(run.join("environment"), "").map_err(|e| e.to_string())?;
        let venv = Command::new(&self.settings.python)
            .args(["-m", "venv", "--system-site-packages", "--without-pip"])
            .arg(run.join("python"))
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.settings.python))?;
        if !venv.status.success() {
            return Err(format!(
                "cannot make the instance's Python environment: {}",
                String::from_utf8_lossy(&venv.stderr)
            ));
        }
        // A venv made from a venv links to the base interpreter: the packages of the Python
        // the service was given (JupyterLab among them) are added with a .pth file.
        let base = self
            .base_purelib
            .get_or_init(|| purelib(Path::new(&self.settings.python)));
        if let (Some(base), Some(mine)) = (base, purelib(&run.join("python/bin/python"))) {
            if *base != mine {
                let _ = std::fs::write(
                    Path::new(&mine).join("rustmaker-base.pth"),
                    format!("{base}\n"),
                );
            }
        }
        if let Some(exe) = &self.settings.rustmaker {
            let _ = Command::new(exe)
                .args(["install", "--prefix"])
                .arg(run.join("jupyter"))
                .output();
        }
        let env = self.environment(&i, &run);
        if first {
            let repos: Vec<String> = i
                .default_code_repository
                .iter()
                .chain(&i.additional_code_repositories)
                .cloned()
                .collect();
            for repo in repos {
                clone(&repo, &keep)
                    .map_err(|e| format!("cloning {repo} into the instance failed: {e}"))?;
            }
        }
        i.volume_note = Some(format!(
            "VolumeSizeInGB {} is reported, not enforced: the local backend has no per-folder quota",
            i.volume_size_gb
        ));
        let config = match &i.lifecycle_config {
            Some(c) => Some(self.config(c).map_err(|e| e.to_string())?),
            None => None,
        };
        let hooks: &[Hook] = if first {
            &[Hook::OnCreate, Hook::OnStart]
        } else {
            &[Hook::OnStart]
        };
        for hook in hooks {
            let Some(script) = config.as_ref().and_then(|c| c.script(*hook)) else {
                continue;
            };
            let log = self.log_stream(name, *hook);
            let outcome = hooks::run(HookRun {
                hook: *hook,
                script: &script,
                workdir: &run,
                env: &env,
                limit: self.settings.hook_limit,
                log: &log,
            })
            .map_err(|e| e.to_string())?;
            if outcome != HookOutcome::Succeeded {
                return Err(outcome.failure_reason(*hook, &log).unwrap_or_default());
            }
        }
        // What the hooks asked every process to see (KEY=VALUE lines).
        let mut server_env = env.clone();
        let extra = std::fs::read_to_string(run.join("environment")).unwrap_or_default();
        for line in extra.lines() {
            if let Some((k, v)) = line.trim().split_once('=') {
                let k = k.trim().trim_start_matches("export ").trim();
                if !k.is_empty() {
                    server_env.retain(|(key, _)| key != k);
                    server_env.push((k.to_owned(), v.trim().trim_matches('"').to_owned()));
                }
            }
        }
        let spec = LaunchSpec {
            root_dir: keep,
            env: server_env,
            token: i.jupyter_token.clone(),
            log: run.join("jupyter.log"),
        };
        let running = self.backend.launch(&spec).map_err(|e| e.to_string())?;
        let info = serde_json::json!({
            "url": format!("http://127.0.0.1:{}/", running.port),
            "token": i.jupyter_token,
        });
        let _ = std::fs::write(run.join("jupyter.json"), info.to_string());
        let _guard = self.transitions.lock().unwrap_or_else(|p| p.into_inner());
        let mut now_i = self.get(name).map_err(|e| e.to_string())?;
        if now_i.status != InstanceStatus::Pending {
            // Stopped or deleted while it started.
            drop(_guard);
            self.backend.stop(&running);
            return Ok(());
        }
        now_i.status = InstanceStatus::InService;
        now_i.port = Some(running.port);
        now_i.pid = Some(running.pid);
        now_i.volume_note = i.volume_note.clone();
        if let Some(note) = &i.volume_note {
            eprintln!("{name}: {note}");
        }
        now_i.last_modified_time = now();
        self.save(&now_i).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn halt(self: &Arc<Self>, name: &str) {
        if let Ok(i) = self.get(name) {
            if let (Some(pid), Some(port)) = (i.pid, i.port) {
                self.backend.stop(&Running { pid, port });
            }
            kill_instance_processes(&i.jupyter_token);
        }
        self.set_status(name, InstanceStatus::Stopped, None);
    }

    fn remove(self: &Arc<Self>, name: &str) {
        if let Ok(i) = self.get(name) {
            kill_instance_processes(&i.jupyter_token);
        }
        let _ = std::fs::remove_dir_all(self.instance_dir(name));
        let _ = self.store.delete_instance(name);
    }

    /// After a restart: instances that were serving and still are keep serving; those whose
    /// server is gone start again (OnStart runs, as after a reboot); interrupted stops,
    /// updates and deletes are finished.
    pub fn recover(self: &Arc<Self>) -> Result<Vec<(String, String)>, ApiError> {
        let mut done = Vec::new();
        for i in self.store.instances()? {
            let running = match (i.pid, i.port) {
                (Some(pid), Some(port)) => Some(Running { pid, port }),
                _ => None,
            };
            match i.status {
                InstanceStatus::InService
                    if running.as_ref().is_some_and(|r| self.backend.alive(r)) =>
                {
                    done.push((i.name, "still InService".into()));
                }
                InstanceStatus::InService | InstanceStatus::Pending => {
                    if let Some(r) = running {
                        self.backend.stop(&r);
                    }
                    kill_instance_processes(&i.jupyter_token);
                    self.set_status(&i.name, InstanceStatus::Pending, None);
                    self.spawn(&i.name, |m, n| m.provision(n, false));
                    done.push((i.name, "started again".into()));
                }
                InstanceStatus::Stopping => {
                    self.spawn(&i.name, |m, n| m.halt(n));
                    done.push((i.name, "stop finished".into()));
                }
                InstanceStatus::Updating => {
                    self.set_status(&i.name, InstanceStatus::Stopped, None);
                    done.push((i.name, "update finished".into()));
                }
                InstanceStatus::Deleting => {
                    self.spawn(&i.name, |m, n| m.remove(n));
                    done.push((i.name, "delete finished".into()));
                }
                InstanceStatus::Stopped | InstanceStatus::Failed => {}
            }
        }
        Ok(done)
    }
}

/// Where a Python installs pure packages (its site-packages).
fn purelib(python: &Path) -> Option<String> {
    Command::new(python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

/// `git clone` of a repository (a URL or a local path) into the instance's SageMaker folder.
fn clone(repo: &str, into: &Path) -> Result<(), String> {
    let base = repo
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("repository")
        .trim_end_matches(".git");
    let dest = into.join(if base.is_empty() { "repository" } else { base });
    if dest.exists() {
        return Ok(());
    }
    let out = Command::new("git")
        .args(["clone", "--quiet", repo])
        .arg(&dest)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}
