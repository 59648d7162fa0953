//! The sparkmagic surface: `%%spark` (and `%%pyspark`, `%%scala`, `%%sparkr`), `%%sql`,
//! `%%configure`, `%%info`, `%%send_to_spark`, `%%cleanup`, `%%delete`, `%%logs` and the
//! `%spark add|info|config|delete|cleanup|logs` line magic, with sparkmagic's option names.

mod cell_magics;
mod run;
mod send;
mod sessions;
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

impl SparkConnector for SparkHandle {
    /// Makes `endpoint` (a URL, `j-…` or `local`) the default session's endpoint. Refused
    /// while a default session is open elsewhere, so no one loses a session by surprise.
    fn use_endpoint(&self, endpoint: &str) -> Result<String, MagicError> {
        let spec = EndpointSpec::parse(endpoint, Auth::None).map_err(failed)?;
        let mut st = lock(&self.0);
        if let Some(s) = st.sessions.get(DEFAULT_SESSION) {
            return Err(failed(format!(
                "the default Spark session is open at {}: run `%spark delete -s default` first (its state is lost)",
                s.client.endpoint().url
            )));
        }
        let config = st.config()?.clone();
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
                    client.delete_session(id)?;
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
