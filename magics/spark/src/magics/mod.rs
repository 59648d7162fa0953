//! The sparkmagic surface: `%%spark` (and `%%pyspark`, `%%scala`, `%%sparkr`), `%%sql`,
//! `%%configure`, `%%info`, `%%send_to_spark`, `%%cleanup`, `%%delete`, `%%logs` and the
//! `%spark add|info|config|delete|cleanup|logs` line magic, with sparkmagic's option names.

mod cell_magics;
mod run;
mod send;
mod sql;

use cell_magics::{
    CleanupMagic, CodeMagic, ConfigureMagic, DeleteMagic, InfoMagic, LogsMagic, SendMagic, SqlMagic,
};
use rustmaker_magics::long_work;
use rustmaker_magics::services::{ClusterResolver, NoClusterResolver, SparkConnector};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use rustmaker_magics::parse_args;
use rustmaker_magics::table::frame_bundle;
use rustmaker_magics::{
    Magic, MagicCall, MagicContext, MagicError, MagicForm, MagicRegistry, MimeBundle,
};
use serde_json::{json, Value};

use crate::config::{EndpointSpec, SparkConfig};
use crate::livy::{session_is_finished, Auth, Kind, LivyClient, Session};
use run::{render_output, run_statement, RunError, Target};
use sql::Sampling;

/// `text` as a string literal in Python, Scala or R: JSON's escapes are valid in all three
/// (`$` is plain in a non-interpolated Scala string).
fn code_literal(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialise")
}

/// The session `%%spark`, `%%sql` … use when no `-s` is given.
pub const DEFAULT_SESSION: &str = "default";

/// Rows of a `%%sql` result shown in the notebook (all of them go to `-o`).
const SHOWN_ROWS: usize = 1000;

/// What other engines may do to the Spark magics (`%emr connect`).
#[derive(Clone)]
pub struct SparkHandle(Arc<Spark>);

impl SparkHandle {
    /// Makes `endpoint` (a URL, `j-…` or `local`) the default session's endpoint. Refused
    /// while a default session is open elsewhere, so no one loses a session by surprise.
    pub fn use_endpoint(&self, endpoint: &str) -> Result<String, String> {
        let spec = EndpointSpec::parse(endpoint, Auth::None)?;
        let mut st = lock(&self.0);
        if let Some(s) = st.sessions.get(DEFAULT_SESSION) {
            return Err(format!(
                "the default Spark session is open at {}: run `%spark delete -s default` first (its state is lost)",
                s.client.endpoint().url
            ));
        }
        let config = st.config().map_err(|e| e.to_string())?.clone();
        st.config = Some(SparkConfig {
            endpoint: spec.clone(),
            ..config
        });
        Ok(format!(
            "The Spark magics now use {}; the next %%spark cell starts a session there.",
            spec.describe()
        ))
    }
}

impl SparkConnector for SparkHandle {
    fn use_endpoint(&self, endpoint: &str) -> Result<String, MagicError> {
        SparkHandle::use_endpoint(self, endpoint).map_err(MagicError::Failed)
    }
}

/// Registers every Spark magic; they share one set of sessions. `clusters` finds EMR
/// clusters' masters for `j-…` endpoints.
pub fn register(
    registry: &mut MagicRegistry,
    clusters: Arc<dyn ClusterResolver>,
) -> Result<SparkHandle, MagicError> {
    // Not through `lock()`: its guard would start the heartbeat thread before any session.
    let spark = Arc::new(Spark {
        state: Mutex::new(State {
            clusters: Some(clusters),
            ..State::default()
        }),
        heartbeat: Heartbeat::default(),
    });
    let handle = SparkHandle(spark.clone());
    let magics: Vec<Arc<dyn Magic>> = vec![
        Arc::new(SparkMagic(spark.clone())),
        Arc::new(CodeMagic {
            spark: spark.clone(),
            name: "pyspark",
            kind: Kind::PySpark,
        }),
        Arc::new(CodeMagic {
            spark: spark.clone(),
            name: "scala",
            kind: Kind::Spark,
        }),
        Arc::new(CodeMagic {
            spark: spark.clone(),
            name: "sparkr",
            kind: Kind::SparkR,
        }),
        Arc::new(SqlMagic(spark.clone())),
        Arc::new(ConfigureMagic(spark.clone())),
        Arc::new(InfoMagic(spark.clone())),
        Arc::new(SendMagic(spark.clone())),
        Arc::new(CleanupMagic(spark.clone())),
        Arc::new(DeleteMagic(spark.clone())),
        Arc::new(LogsMagic(spark)),
    ];
    for m in magics {
        registry.register(m)?;
    }
    Ok(handle)
}

/// A session this kernel opened.
struct LiveSession {
    client: LivyClient,
    id: u32,
    kind: Kind,
    /// Livy's `heartbeatTimeoutInSecond` for it (0: none).
    heartbeat_timeout: u64,
}

#[derive(Default)]
struct State {
    config: Option<SparkConfig>,
    /// Finds EMR clusters' masters (the AWS magics' settings); none: cluster ids are refused.
    clusters: Option<Arc<dyn ClusterResolver>>,
    sessions: BTreeMap<String, LiveSession>,
    /// `%%configure` / `%spark config`: replaces the configured session properties.
    properties: Option<Value>,
}

struct Spark {
    state: Mutex<State>,
    heartbeat: Heartbeat,
}

/// Livy deletes a session whose client stops asking about it for `heartbeatTimeoutInSecond`
/// (sparkmagic's 60 s): a thread asks for every open session, also while the user is idle.
/// It has its own list so that it never waits for a running cell.
#[derive(Default)]
struct Heartbeat {
    sessions: Arc<Mutex<Vec<(LivyClient, u32, u64)>>>,
    started: std::sync::OnceLock<()>,
}

/// Every open session is asked about this often, or four times per its timeout if shorter.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);

impl Heartbeat {
    fn set(&self, sessions: &BTreeMap<String, LiveSession>) {
        let list = sessions
            .values()
            .map(|s| (s.client.clone(), s.id, s.heartbeat_timeout))
            .collect();
        *self.sessions.lock().unwrap_or_else(|p| p.into_inner()) = list;
        let shared = self.sessions.clone();
        self.started.get_or_init(|| {
            let _ = std::thread::Builder::new()
                .name("livy-heartbeat".into())
                .spawn(move || loop {
                    let list = shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    let every = list
                        .iter()
                        .filter(|(_, _, t)| *t > 0)
                        .map(|(_, _, t)| Duration::from_millis(t * 250))
                        .min()
                        .unwrap_or(HEARTBEAT_EVERY)
                        .clamp(Duration::from_secs(1), HEARTBEAT_EVERY);
                    std::thread::sleep(every);
                    for (client, id, _) in list {
                        let _ = client.session(id);
                    }
                });
        });
    }
}

use rustmaker_magics::failed;

fn kind_of(language: &str) -> Result<Kind, MagicError> {
    Kind::parse(language).ok_or_else(|| {
        failed(format!(
            "unknown language `{language}`: use python, scala, r or sql"
        ))
    })
}

impl State {
    fn config(&mut self) -> Result<&SparkConfig, MagicError> {
        if self.config.is_none() {
            self.config = Some(SparkConfig::load().map_err(failed)?);
        }
        Ok(self.config.as_ref().expect("just loaded"))
    }

    fn properties(&mut self, kind: Kind) -> Result<Value, MagicError> {
        let mut props = self.config()?.session_properties.clone();
        if let Some(Value::Object(over)) = &self.properties {
            for (k, v) in over {
                props[k] = v.clone();
            }
        }
        props["kind"] = json!(kind.as_str());
        Ok(props)
    }

    fn client(&mut self, spec: &EndpointSpec) -> Result<LivyClient, MagicError> {
        let retry = self.config()?.retry.clone();
        let clusters: &dyn ClusterResolver = match &self.clusters {
            Some(c) => c.as_ref(),
            None => &NoClusterResolver,
        };
        let endpoint = crate::endpoint::resolve(spec, clusters).map_err(failed)?;
        LivyClient::new(endpoint, retry).map_err(failed)
    }

    /// The default session, started on first use.
    fn default_session(
        &mut self,
        kind: Kind,
        ctx: &mut dyn MagicContext,
    ) -> Result<&LiveSession, MagicError> {
        if !self.sessions.contains_key(DEFAULT_SESSION) {
            let spec = self.config()?.endpoint.clone();
            let client = self.client(&spec)?;
            let props = self.properties(kind)?;
            self.start_session(DEFAULT_SESSION, client, kind, props, ctx)?;
        }
        Ok(&self.sessions[DEFAULT_SESSION])
    }

    fn named(&self, name: &str) -> Result<&LiveSession, MagicError> {
        self.sessions.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.sessions.keys().map(String::as_str).collect();
            failed(format!(
                "no Spark session named `{name}`{}; create it with `%spark add -s {name} -l python -u URL`",
                if known.is_empty() {
                    String::new()
                } else {
                    format!(" (sessions: {})", known.join(", "))
                }
            ))
        })
    }

    /// The language of session `name` (the default one's, or pyspark before it starts).
    fn kind_of(&self, name: Option<&str>) -> Result<Kind, MagicError> {
        match name {
            Some(n) if n != DEFAULT_SESSION => Ok(self.named(n)?.kind),
            _ => Ok(self
                .sessions
                .get(DEFAULT_SESSION)
                .map_or(Kind::PySpark, |s| s.kind)),
        }
    }

    fn session(
        &mut self,
        name: Option<&str>,
        kind: Kind,
        ctx: &mut dyn MagicContext,
    ) -> Result<(String, &LiveSession), MagicError> {
        match name {
            None | Some(DEFAULT_SESSION) => {
                Ok((DEFAULT_SESSION.to_owned(), self.default_session(kind, ctx)?))
            }
            Some(n) => Ok((n.to_owned(), self.named(n)?)),
        }
    }

    /// Creates a Livy session and waits until it is idle, showing its state as it starts.
    fn start_session(
        &mut self,
        name: &str,
        client: LivyClient,
        kind: Kind,
        properties: Value,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let timeout = self.config()?.startup_timeout;
        let url = client.endpoint().url.clone();
        let created = client.create_session(&properties).map_err(failed)?;
        let display_id = format!("spark-session-{}", uuid::Uuid::new_v4().simple());
        let started = Instant::now();
        let status = |state: &str| {
            MimeBundle::text(format!(
                "Starting Spark session `{name}` (Livy session {} at {url}): {state}, {:.0} s",
                created.id,
                started.elapsed().as_secs_f64()
            ))
        };
        ctx.display(status(&created.state), Some(&display_id));
        let mut session = created.clone();
        let mut last_shown = Instant::now();
        while session.state != "idle" {
            if session_is_finished(&session.state) {
                let log = client
                    .logs(session.id, 0, 10_000)
                    .map(|l| l.log)
                    .unwrap_or(session.log.clone());
                let tail: Vec<String> = log.iter().rev().take(15).rev().cloned().collect();
                let _ = client.delete_session(session.id);
                ctx.update_display(MimeBundle::text(""), &display_id);
                return Err(failed(format!(
                    "Spark session `{name}` failed to start (state {}) at {url}.\nLast lines of its log:\n{}\nFix the session settings (`%%configure -f {{…}}`) and try again.",
                    session.state,
                    tail.join("\n")
                )));
            }
            if ctx.is_interrupted() {
                let _ = client.delete_session(session.id);
                ctx.update_display(MimeBundle::text(""), &display_id);
                return Err(long_work::interrupted(
                    format!(
                        "the start of Spark session `{name}` was stopped and the session deleted"
                    ),
                    "the other sessions are kept",
                ));
            }
            if started.elapsed() > timeout {
                let _ = client.delete_session(session.id);
                ctx.update_display(MimeBundle::text(""), &display_id);
                return Err(failed(format!(
                    "Spark session `{name}` at {url} was still `{}` after {} s, so it was deleted; \
                     raise livy_session_startup_timeout_seconds in ~/.sparkmagic/config.json if the cluster is slow",
                    session.state,
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
            session = client.session(session.id).map_err(failed)?;
            if last_shown.elapsed() > Duration::from_millis(500) {
                ctx.update_display(status(&session.state), &display_id);
                last_shown = Instant::now();
            }
        }
        ctx.update_display(
            session_table(&[session.clone()], Some(session.id), &url),
            &display_id,
        );
        let heartbeat_timeout = properties
            .get("heartbeatTimeoutInSecond")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        self.sessions.insert(
            name.to_owned(),
            LiveSession {
                client,
                id: session.id,
                kind,
                heartbeat_timeout,
            },
        );
        Ok(())
    }

    /// Runs code and shows its output; a session found dead is forgotten, so the next cell
    /// starts a new one.
    fn run_code(
        &mut self,
        name: Option<&str>,
        kind: Kind,
        code: &str,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let output = {
            let (name, session) = self.session(name, kind, ctx)?;
            let target = Target {
                name: &name,
                client: &session.client,
                id: session.id,
            };
            match run_statement(&target, code, kind.as_str(), ctx) {
                Ok(output) => output,
                Err(RunError::Magic(e)) => return Err(e),
                Err(RunError::SessionLost(msg)) => {
                    self.sessions.remove(&name);
                    return Err(failed(msg));
                }
            }
        };
        render_output(output, ctx)
    }

    fn run_sql(
        &mut self,
        session: Option<&str>,
        query: &str,
        opts: &SqlOptions,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let default_rows = self.config()?.max_rows;
        let max_rows = opts.maxrows.unwrap_or(default_rows);
        let sample_fraction = match opts.samplemethod.as_deref().unwrap_or("take") {
            "take" => None,
            "sample" => {
                let r = opts.samplefraction.unwrap_or(0.1);
                if !(r > 0.0 && r <= 1.0) {
                    return Err(failed(format!(
                        "-r {r}: the sample fraction must be in (0, 1]"
                    )));
                }
                Some(r)
            }
            other => {
                return Err(failed(format!(
                    "-m {other}: the sample method is `take` or `sample`"
                )))
            }
        };
        if let Some(name) = &opts.output {
            rustmaker_magics::frames::check_name(name)?;
        }
        let sampling = Sampling {
            sample_fraction,
            max_rows: u64::try_from(max_rows).ok(),
        };
        let query = query.trim();
        if query.is_empty() {
            return Err(MagicError::usage("sql", "the cell holds no SQL query"));
        }
        let data = {
            let (name, s) = self.session(session, Kind::PySpark, ctx)?;
            let (code, code_kind) = sql::query_code(query, s.kind, &sampling).map_err(failed)?;
            let target = Target {
                name: &name,
                client: &s.client,
                id: s.id,
            };
            match run_statement(&target, &code, code_kind, ctx) {
                Ok(out) if out.status == "ok" => out.data.unwrap_or_default(),
                Ok(out) => return render_output(out, ctx),
                Err(RunError::Magic(e)) => return Err(e),
                Err(RunError::SessionLost(msg)) => {
                    self.sessions.remove(&name);
                    return Err(failed(msg));
                }
            }
        };
        let frame = sql::decode(&data).map_err(failed)?;
        if !opts.quiet {
            ctx.display(frame_bundle(&frame, SHOWN_ROWS), None);
        }
        if let Some(name) = &opts.output {
            ctx.frames().insert(name, frame)?;
        }
        Ok(())
    }

    fn endpoint_client(
        &mut self,
        url: Option<&str>,
        user: &str,
        password: &str,
        auth: Option<&str>,
    ) -> Result<LivyClient, MagicError> {
        match url {
            Some(url) => {
                let auth = Auth::parse(auth.unwrap_or(""), user, password).map_err(failed)?;
                let spec = EndpointSpec::parse(url, auth).map_err(failed)?;
                self.client(&spec)
            }
            None => match self.sessions.get(DEFAULT_SESSION) {
                Some(s) => Ok(s.client.clone()),
                None => {
                    let spec = self.config()?.endpoint.clone();
                    self.client(&spec)
                }
            },
        }
    }

    fn info(&mut self, url: Option<&str>, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let props = self.properties(Kind::PySpark)?;
        ctx.stdout(&format!(
            "Current session configs: {}\n",
            serde_json::to_string(&props).unwrap_or_default()
        ));
        for (name, s) in &self.sessions {
            ctx.stdout(&format!(
                "Session `{name}`: Livy session {} ({}) at {}\n",
                s.id,
                s.kind.as_str(),
                s.client.endpoint().url
            ));
        }
        let local_idle = url.is_none()
            && self.sessions.is_empty()
            && self.config()?.endpoint == EndpointSpec::Local
            && !crate::endpoint::local_state_file().exists();
        if local_idle {
            ctx.stdout(
                "No active sessions (the local Livy server starts with the first Spark cell).\n",
            );
            return Ok(());
        }
        let client = self.endpoint_client(url, "", "", None)?;
        let list = client.list_sessions().map_err(failed)?;
        let current = self.sessions.get(DEFAULT_SESSION).map(|s| s.id);
        if list.sessions.is_empty() {
            ctx.stdout(&format!(
                "No active sessions at {}.\n",
                client.endpoint().url
            ));
        } else {
            ctx.display(
                session_table(&list.sessions, current, &client.endpoint().url),
                None,
            );
        }
        Ok(())
    }

    fn logs(&mut self, name: Option<&str>, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let name = name.unwrap_or(DEFAULT_SESSION);
        let s = self.sessions.get(name).ok_or_else(|| {
            failed(format!(
                "no Spark session `{name}` is open in this kernel; run a %%spark cell first"
            ))
        })?;
        let mut from = 0;
        loop {
            let page = s.client.logs(s.id, from, 1000).map_err(failed)?;
            for line in &page.log {
                ctx.stdout(&format!("{line}\n"));
            }
            from += page.log.len() as u32;
            if page.log.is_empty() || from >= page.total || from >= 100_000 {
                break;
            }
        }
        Ok(())
    }

    /// Deletes every session at the endpoint (the default one's, or `url`).
    fn cleanup(
        &mut self,
        url: Option<&str>,
        user: &str,
        password: &str,
        auth: Option<&str>,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let client = self.endpoint_client(url, user, password, auth)?;
        let list = client.list_sessions().map_err(failed)?;
        for s in &list.sessions {
            client.delete_session(s.id).map_err(failed)?;
        }
        let endpoint = client.endpoint().url.clone();
        self.sessions
            .retain(|_, s| s.client.endpoint().url != endpoint);
        ctx.stdout(&format!(
            "Deleted {} session(s) at {endpoint}.\n",
            list.sessions.len()
        ));
        Ok(())
    }

    fn delete_named(&mut self, name: &str, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let s = self.named(name)?;
        match s.client.delete_session(s.id) {
            Ok(()) => {}
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(failed(e)),
        }
        ctx.stdout(&format!(
            "Deleted Spark session `{name}` (Livy session {}).\n",
            s.id
        ));
        self.sessions.remove(name);
        Ok(())
    }
}

/// sparkmagic's session table: id, application, kind, state, links, user, current.
fn session_table(sessions: &[Session], current: Option<u32>, url: &str) -> MimeBundle {
    let esc = rustmaker_magics::table::escape;
    let link = |v: Option<&Value>, label: &str| match v.and_then(Value::as_str) {
        Some(u) if !u.is_empty() => format!("<a target=\"_blank\" href=\"{}\">{label}</a>", esc(u)),
        _ => String::new(),
    };
    let mut html = String::from("<table>\n<tr><th>ID</th><th>Application ID</th><th>Kind</th><th>State</th><th>Spark UI</th><th>Driver log</th><th>User</th><th>Current session?</th></tr>\n");
    let mut text = format!("Livy sessions at {url}:\n");
    for s in sessions {
        let is_current = current == Some(s.id);
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            s.id,
            esc(s.app_id.as_deref().unwrap_or("")),
            esc(s.kind.as_deref().unwrap_or("")),
            esc(&s.state),
            link(s.app_info.get("sparkUiUrl"), "Link"),
            link(s.app_info.get("driverLogUrl"), "Link"),
            esc(s.proxy_user.as_deref().or(s.owner.as_deref()).unwrap_or("")),
            if is_current { "✔" } else { "" }
        ));
        text.push_str(&format!(
            "  {} {} {} {}{}\n",
            s.id,
            s.kind.as_deref().unwrap_or("-"),
            s.state,
            s.app_id.as_deref().unwrap_or("-"),
            if is_current { " (current)" } else { "" }
        ));
    }
    html.push_str("</table>");
    MimeBundle::text(text).with("text/html", Value::String(html))
}

fn lock(spark: &Spark) -> SessionsGuard<'_> {
    SessionsGuard {
        state: spark.state.lock().unwrap_or_else(|p| p.into_inner()),
        heartbeat: &spark.heartbeat,
    }
}

/// The magics' access to the state; on release the heartbeat learns the open sessions.
struct SessionsGuard<'a> {
    state: std::sync::MutexGuard<'a, State>,
    heartbeat: &'a Heartbeat,
}

impl std::ops::Deref for SessionsGuard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for SessionsGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Drop for SessionsGuard<'_> {
    fn drop(&mut self) {
        self.heartbeat.set(&self.state.sessions);
    }
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct SqlOptions {
    #[arg(short = 's', long = "session")]
    session: Option<String>,
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    #[arg(short = 'm', long = "samplemethod")]
    samplemethod: Option<String>,
    #[arg(short = 'n', long = "maxrows", allow_negative_numbers = true)]
    maxrows: Option<i64>,
    #[arg(short = 'r', long = "samplefraction")]
    samplefraction: Option<f64>,
    /// sparkmagic's pandas type coercion; frames here always carry Spark's types.
    #[arg(long = "coerce")]
    coerce: Option<String>,
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct SparkOptions {
    command: Vec<String>,
    #[arg(short = 'c', long = "context", default_value = "spark")]
    context: String,
    #[arg(short = 'u', long = "url")]
    url: Option<String>,
    #[arg(short = 'a', long = "user", default_value = "")]
    user: String,
    #[arg(short = 'p', long = "password", default_value = "")]
    password: String,
    #[arg(short = 't', long = "auth")]
    auth: Option<String>,
    #[arg(short = 'l', long = "language")]
    language: Option<String>,
    #[arg(short = 'k', long = "skip")]
    skip: bool,
    #[arg(short = 'i', long = "id")]
    id: Option<u32>,
    #[command(flatten)]
    sql: SqlOptions,
}

const SQL_OPTIONS_HELP: &str = "  -s NAME      the session (default: this kernel's default session)
  -o NAME      store the result as a polars DataFrame in the frame store
  -q           do not display the result
  -m take|sample  take the first rows (default) or sample them
  -n N         at most N rows (default 2500; -1 for all)
  -r F         the sample fraction for -m sample (default 0.1)";

struct SparkMagic(Arc<Spark>);

/// How long the kernel's exit waits for its sessions to be deleted.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

impl Magic for SparkMagic {
    /// Deletes the sessions this kernel opened, as sparkmagic does when its kernel exits.
    fn shutdown(&self) {
        let mut st = lock(&self.0);
        let sessions = std::mem::take(&mut st.sessions);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        for (_, s) in sessions {
            let done = done_tx.clone();
            std::thread::spawn(move || {
                let _ = s.client.delete_session(s.id);
                let _ = done.send(());
            });
        }
        drop(done_tx);
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        while let Ok(()) = done_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
        }
    }

    fn name(&self) -> &str {
        "spark"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line, MagicForm::Cell]
    }
    fn summary(&self) -> &str {
        "Run Spark code through Livy; `%spark add|info|config|delete|cleanup|logs` manage sessions."
    }
    fn help(&self) -> String {
        format!(
            "%%spark [-s NAME] [-c spark|sql] [sql options]   run the cell in a Spark session (Livy)
%spark add -s NAME -l python|scala|r|sql -u URL|j-CLUSTER|local [-a USER -p PASSWORD -t None|Basic_Access|Kerberos] [-k]
%spark info [-u URL]        sessions at an endpoint and the session settings
%%spark config              the cell's JSON replaces the properties of new sessions (POST /sessions body)
%spark delete -s NAME       delete a session this kernel added (or -u URL -i ID)
%spark cleanup [-u URL]     delete every session at the endpoint
%spark logs -s NAME         the session's log

With no -s the cell runs in the default session, started on first use at the configured endpoint:
RUSTMAKER_LIVY_URL (a URL, an EMR cluster id j-…, or `local`), else kernel_python_credentials
in ~/.sparkmagic/config.json, else the local Livy server running PySpark on this machine.
SQL options (with -c sql):
{SQL_OPTIONS_HELP}

Example:
  %spark add -s emr -l python -u j-2AXXXXXXGAPLF
  %%spark -s emr
  spark.range(10).count()"
        )
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let opts: SparkOptions = parse_args("spark", call.argv()?)?;
        let mut st = lock(&self.0);
        let sub = opts.command.first().map(|s| s.to_ascii_lowercase());
        let url = opts.url.as_deref();
        match sub.as_deref() {
            None | Some("run") => {
                if call.form == MagicForm::Line {
                    return Err(MagicError::usage(
                        "spark",
                        "give a subcommand (add, info, config, delete, cleanup, logs) or use %%spark as a cell magic",
                    ));
                }
                match opts.context.as_str() {
                    "spark" => {
                        let kind = st.kind_of(opts.sql.session.as_deref())?;
                        st.run_code(opts.sql.session.as_deref(), kind, &call.body, ctx)
                    }
                    "sql" => st.run_sql(opts.sql.session.as_deref(), &call.body, &opts.sql, ctx),
                    other => Err(failed(format!(
                        "-c {other}: the context is `spark` or `sql`"
                    ))),
                }
            }
            Some("add") => {
                let name = opts.sql.session.as_deref().ok_or_else(|| {
                    MagicError::usage("spark", "add needs a session name (-s NAME)")
                })?;
                let url = url.ok_or_else(|| {
                    MagicError::usage(
                        "spark",
                        "add needs an endpoint (-u https://host:8998, -u j-CLUSTERID or -u local)",
                    )
                })?;
                if st.sessions.contains_key(name) {
                    if opts.skip {
                        ctx.stdout(&format!("Session `{name}` already exists; skipped (-k).\n"));
                        return Ok(());
                    }
                    return Err(failed(format!(
                        "a session named `{name}` already exists: `%spark delete -s {name}` first, or add -k to keep it"
                    )));
                }
                let kind = kind_of(opts.language.as_deref().unwrap_or("python"))?;
                let client = st.endpoint_client(
                    Some(url),
                    &opts.user,
                    &opts.password,
                    opts.auth.as_deref(),
                )?;
                let props = st.properties(kind)?;
                st.start_session(name, client, kind, props, ctx)
            }
            Some("info") => st.info(url, ctx),
            Some("config") => {
                let props: Value = serde_json::from_str(&call.body).map_err(|e| {
                    MagicError::usage(
                        "spark",
                        format!("config takes a JSON object in the cell body: {e}"),
                    )
                })?;
                if !props.is_object() {
                    return Err(MagicError::usage(
                        "spark",
                        "config takes a JSON object in the cell body",
                    ));
                }
                st.properties = Some(props);
                ctx.stdout("Session properties set; new sessions use them.\n");
                Ok(())
            }
            Some("delete") => match (opts.sql.session.as_deref(), url, opts.id) {
                (Some(name), _, _) => st.delete_named(name, ctx),
                (None, Some(u), Some(id)) => {
                    let client = st.endpoint_client(
                        Some(u),
                        &opts.user,
                        &opts.password,
                        opts.auth.as_deref(),
                    )?;
                    client.delete_session(id).map_err(failed)?;
                    st.sessions.retain(|_, s| {
                        !(s.id == id && s.client.endpoint().url == client.endpoint().url)
                    });
                    ctx.stdout(&format!(
                        "Deleted Livy session {id} at {}.\n",
                        client.endpoint().url
                    ));
                    Ok(())
                }
                (None, Some(_), None) => Err(MagicError::usage(
                    "spark",
                    "delete at a URL needs the session id (-i ID)",
                )),
                (None, None, _) => Err(MagicError::usage(
                    "spark",
                    "delete needs a session name (-s NAME) or a URL and id (-u URL -i ID)",
                )),
            },
            Some("cleanup") => {
                if url.is_none() {
                    // sparkmagic: without -u, delete the sessions this kernel added.
                    let names: Vec<String> = st.sessions.keys().cloned().collect();
                    for name in names {
                        st.delete_named(&name, ctx)?;
                    }
                    return Ok(());
                }
                st.cleanup(url, &opts.user, &opts.password, opts.auth.as_deref(), ctx)
            }
            Some("logs") => {
                let name = opts.sql.session.as_deref().ok_or_else(|| {
                    MagicError::usage("spark", "logs needs a session name (-s NAME)")
                })?;
                st.named(name)?;
                st.logs(Some(name), ctx)
            }
            Some(other) => Err(MagicError::usage(
                "spark",
                format!(
                    "unknown subcommand `{other}`: use add, info, config, delete, cleanup or logs"
                ),
            )),
        }
    }
}
