//! Creating or starting an instance, as named steps: reset the folders that do not persist,
//! make its Python environment, install the kernel, clone its repositories, run the
//! lifecycle hooks, launch the notebook server, mark it InService. Each step fails with its
//! own [`ProvisionError`], whose message becomes the instance's `FailureReason`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::{kill_instance_processes, now, random_hex, ApiError, Manager};
use crate::backend::{BootSpec, LaunchSpec, Running};
use crate::boot::parse_env_lines;
use crate::config::Hook;
use crate::hooks::{self, HookOutcome, HookRun};
use crate::instance::Instance;
use crate::state::InstanceStatus;
use crate::LifecycleError;

/// Why an instance could not be created or started; shown as its `FailureReason`.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The service's state could not be read or written.
    #[error("{0}")]
    State(#[from] ApiError),
    #[error("cannot make {}: {source}", .path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run {python}: {source}")]
    NoPython {
        python: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the instance's Python environment: {0}")]
    PythonEnvironment(String),
    #[error("cloning {repo} into the instance failed: {reason}")]
    Clone { repo: String, reason: String },
    /// A hook failed or ran too long; the reason names its log stream.
    #[error("{0}")]
    Hook(String),
    /// A hook or the notebook server could not be started.
    #[error("{0}")]
    Launch(#[from] LifecycleError),
}

fn folder(path: &Path) -> impl FnOnce(std::io::Error) -> ProvisionError + '_ {
    move |source| ProvisionError::Folder {
        path: path.to_owned(),
        source,
    }
}

/// The folders of one run of an instance.
struct Run {
    /// home/SageMaker: the only folder that survives a stop.
    keep: PathBuf,
    /// What one run uses: the script files, the Python environment, the server's log.
    dir: PathBuf,
}

impl Manager {
    /// Create (`first`) or start: on failure the instance's processes are killed and it is
    /// marked Failed with the step's reason.
    pub(super) fn provision(self: &Arc<Self>, name: &str, first: bool) {
        if let Err(reason) = self.try_provision(name, first) {
            if let Ok(i) = self.get(name) {
                kill_instance_processes(&i.jupyter_token);
            }
            self.set_status(name, InstanceStatus::Failed, Some(reason.to_string()));
        }
    }

    fn try_provision(self: &Arc<Self>, name: &str, first: bool) -> Result<(), ProvisionError> {
        let mut i = self.get(name)?;
        // A new run id (and Jupyter token) for every start.
        i.jupyter_token = random_hex(24);
        self.save(&i)?;
        let run = self.reset_folders(name)?;
        // An instance that boots itself brings JupyterLab and the kernel in its image.
        let boots_itself = self.backend.boots_itself();
        if !boots_itself {
            self.make_python_environment(&run)?;
            self.install_kernel(&run);
        }
        let env = self.environment(&i, &run.dir);
        if first {
            clone_repositories(&i, &run.keep)?;
        }
        i.volume_note = Some(format!(
            "VolumeSizeInGB {} is reported, not enforced: instances here have no per-folder quota",
            i.volume_size_gb
        ));
        let boot = if boots_itself {
            Some(self.boot_spec(name, &i, &run, first)?)
        } else {
            self.run_hooks(name, &i, &run, &env, first)?;
            None
        };
        let running = self.launch_server(&i, &run, env, boot)?;
        self.mark_in_service(name, &i, running)
    }

    /// Only home/SageMaker survives a stop: the rest of the instance starts afresh.
    fn reset_folders(&self, name: &str) -> Result<Run, ProvisionError> {
        let home = self.home(name);
        let dir = self.instance_dir(name).join("run");
        let keep = home.join("SageMaker");
        std::fs::create_dir_all(&keep).map_err(folder(&keep))?;
        if let Ok(entries) = std::fs::read_dir(&home) {
            for e in entries.flatten() {
                if e.path() != keep {
                    let _ = std::fs::remove_dir_all(e.path())
                        .or_else(|_| std::fs::remove_file(e.path()));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        let runtime = dir.join("runtime");
        std::fs::create_dir_all(&runtime).map_err(folder(&runtime))?;
        let environment = dir.join("environment");
        std::fs::write(&environment, "").map_err(folder(&environment))?;
        Ok(Run { keep, dir })
    }

    fn make_python_environment(&self, run: &Run) -> Result<(), ProvisionError> {
        let python = &self.settings.python;
        let venv = Command::new(python)
            .args(["-m", "venv", "--system-site-packages", "--without-pip"])
            .arg(run.dir.join("python"))
            .output()
            .map_err(|source| ProvisionError::NoPython {
                python: python.clone(),
                source,
            })?;
        if !venv.status.success() {
            return Err(ProvisionError::PythonEnvironment(
                String::from_utf8_lossy(&venv.stderr).into_owned(),
            ));
        }
        // A venv made from a venv links to the base interpreter: the packages of the Python
        // the service was given (JupyterLab among them) are added with a .pth file.
        let base = self.base_purelib.get_or_init(|| purelib(Path::new(python)));
        if let (Some(base), Some(mine)) = (base, purelib(&run.dir.join("python/bin/python"))) {
            if *base != mine {
                let _ = std::fs::write(
                    Path::new(&mine).join("rustmaker-base.pth"),
                    format!("{base}\n"),
                );
            }
        }
        Ok(())
    }

    /// The kernel is offered where the binary is known; an instance without it still serves
    /// Python notebooks, so a failure here is not the instance's.
    fn install_kernel(&self, run: &Run) {
        if let Some(exe) = &self.settings.rustmaker {
            let _ = Command::new(exe)
                .args(["install", "--prefix"])
                .arg(run.dir.join("jupyter"))
                .output();
        }
    }

    /// What an instance's own boot step runs: its hooks, with the service's limit.
    fn boot_spec(
        &self,
        name: &str,
        i: &Instance,
        run: &Run,
        first: bool,
    ) -> Result<BootSpec, ProvisionError> {
        let config = match &i.lifecycle_config {
            Some(c) => Some(self.config(c)?),
            None => None,
        };
        let script = |hook| config.as_ref().and_then(|c| c.script(hook));
        let logs = self
            .log_stream(name, Hook::OnStart)
            .path()
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| run.dir.join("logs"));
        Ok(BootSpec {
            instance: name.to_owned(),
            arn: i.arn.clone(),
            first,
            on_create: script(Hook::OnCreate),
            on_start: script(Hook::OnStart),
            hook_limit: self.settings.hook_limit,
            logs,
            run_dir: run.dir.clone(),
            volume_gb: i.volume_size_gb,
            volume_disk: self.instance_dir(name).join("volume.ext4"),
        })
    }

    /// OnCreate (first only), then OnStart, as SageMaker runs them.
    fn run_hooks(
        &self,
        name: &str,
        i: &Instance,
        run: &Run,
        env: &[(String, String)],
        first: bool,
    ) -> Result<(), ProvisionError> {
        let config = match &i.lifecycle_config {
            Some(c) => Some(self.config(c)?),
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
                workdir: &run.dir,
                env,
                limit: self.settings.hook_limit,
                log: &log,
            })?;
            if outcome != HookOutcome::Succeeded {
                return Err(ProvisionError::Hook(
                    outcome.failure_reason(*hook, &log).unwrap_or_default(),
                ));
            }
        }
        Ok(())
    }

    /// The notebook server, with what the hooks asked every process to see (the KEY=VALUE
    /// lines they wrote to the run's `environment` file).
    fn launch_server(
        &self,
        i: &Instance,
        run: &Run,
        mut env: Vec<(String, String)>,
        boot: Option<BootSpec>,
    ) -> Result<Running, ProvisionError> {
        let extra = std::fs::read_to_string(run.dir.join("environment")).unwrap_or_default();
        for (k, v) in parse_env_lines(&extra) {
            env.retain(|(key, _)| *key != k);
            env.push((k, v));
        }
        let spec = LaunchSpec {
            root_dir: run.keep.clone(),
            env,
            token: i.jupyter_token.clone(),
            log: run.dir.join("jupyter.log"),
            boot,
        };
        let running = self.backend.launch(&spec)?;
        let info = serde_json::json!({
            "url": format!("http://127.0.0.1:{}/", running.port),
            "token": i.jupyter_token,
        });
        let _ = std::fs::write(run.dir.join("jupyter.json"), info.to_string());
        Ok(running)
    }

    /// InService, unless the instance was stopped or deleted while it started: then the
    /// server just launched is stopped.
    fn mark_in_service(
        &self,
        name: &str,
        i: &Instance,
        running: Running,
    ) -> Result<(), ProvisionError> {
        let _guard = self.transitions.lock().unwrap_or_else(|p| p.into_inner());
        let mut now_i = self.get(name)?;
        if now_i.status != InstanceStatus::Pending {
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
        self.save(&now_i)?;
        Ok(())
    }
}

/// The default and additional code repositories, cloned into home/SageMaker on create.
fn clone_repositories(i: &Instance, keep: &Path) -> Result<(), ProvisionError> {
    for repo in i
        .default_code_repository
        .iter()
        .chain(&i.additional_code_repositories)
    {
        clone(repo, keep).map_err(|reason| ProvisionError::Clone {
            repo: repo.clone(),
            reason,
        })?;
    }
    Ok(())
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

/// `git clone` of a repository (a URL or a local path) into the instance's SageMaker folder;
/// `Err` holds what git said.
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
