//! The instance manager: SageMaker's notebook-instance operations over the state store, the
//! lifecycle hooks and a [`Backend`]. Requests are answered at once; the work of a create,
//! start, stop or delete goes on in a thread of its own, as SageMaker's asynchronous states
//! (Pending, Stopping, Deleting) show. State is written before each step, so [`Manager::recover`]
//! can finish or redo whatever a crash interrupted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::backend::{Backend, Running};
use crate::config::{Hook, LifecycleConfig};
use crate::instance::{self, Instance};
use crate::logs::LogStream;
use crate::state::{InstanceStatus, Operation};
use crate::store::StateStore;
use crate::LifecycleError;

mod provision;

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
            e @ (LifecycleError::Io { .. }
            | LifecycleError::Store(_)
            | LifecycleError::Record(_)
            | LifecycleError::Server(_)
            | LifecycleError::Boot(_)) => ApiError::Internal(e.to_string()),
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

pub use rustmaker_process::random_hex;

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
        std::fs::create_dir_all(&settings.root).map_err(LifecycleError::io(format!(
            "cannot make {}",
            settings.root.display()
        )))?;
        let store = StateStore::open(&settings.root.join("state.db"))?;
        let key_path = settings.root.join("service.key");
        let secret = match std::fs::read_to_string(&key_path) {
            Ok(k) if !k.trim().is_empty() => k.trim().as_bytes().to_vec(),
            _ => {
                let k = random_hex(32);
                std::fs::write(&key_path, &k).map_err(LifecycleError::io(format!(
                    "cannot write {}",
                    key_path.display()
                )))?;
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
        crate::config::check_name(
            &r.name,
            "NotebookInstanceName",
            rustmaker_sagemaker::Resource::NotebookInstance,
        )?;
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
