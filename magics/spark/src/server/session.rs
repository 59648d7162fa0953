//! One local Livy session: a PySpark driver process (driver.py) and the state Livy reports
//! for it (session state, log, statements).

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};

use crate::livy::{
    session_is_finished, statement_is_finished, Session, Statement, StatementOutput,
};

/// Lines of the driver's stderr kept per session (older lines are dropped).
const MAX_LOG_LINES: usize = 20_000;

/// Why a session cannot take or cancel a statement, answered with the HTTP status Livy uses.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("Session {session} is in state {state}; statements can run once it is idle")]
    NotReady { session: u32, state: String },
    #[error("Statement {statement} not found in session {session}")]
    NoStatement { session: u32, statement: u32 },
    #[error("Session {session} has ended")]
    Ended { session: u32 },
    #[error("Session {session} cannot take statements: {source}")]
    Pipe {
        session: u32,
        #[source]
        source: std::io::Error,
    },
}

impl SessionError {
    pub fn status(&self) -> u16 {
        match self {
            SessionError::NotReady { .. } | SessionError::Ended { .. } => 400,
            SessionError::NoStatement { .. } => 404,
            SessionError::Pipe { .. } => 500,
        }
    }
}

pub struct LocalSession {
    pub id: u32,
    pub kind: String,
    pub name: Option<String>,
    pub proxy_user: Option<String>,
    pub owner: Option<String>,
    pub heartbeat: Option<Duration>,
    pid: u32,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    state: Mutex<SessionState>,
}

struct SessionState {
    state: String,
    app_id: Option<String>,
    spark_ui: Option<String>,
    /// Log lines; `dropped` counts the lines removed from the front.
    log: VecDeque<String>,
    dropped: usize,
    statements: Vec<Statement>,
    last_activity: Instant,
}

/// What the server needs to start a session.
pub struct Launch<'a> {
    pub python: &'a Path,
    pub driver: &'a Path,
    pub settings: Value,
    pub startup_timeout: Duration,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl LocalSession {
    /// Starts the driver process and the tasks that follow it.
    pub fn spawn(
        id: u32,
        kind: String,
        settings: &Value,
        launch: Launch<'_>,
    ) -> std::io::Result<Arc<LocalSession>> {
        let mut child = Command::new(launch.python)
            .arg(launch.driver)
            .arg(launch.settings.to_string())
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .env("PYSPARK_PYTHON", launch.python)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: the kernel's SIGINT must not reach Spark, and deleting
            // the session kills the JVM with the Python driver.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().unwrap_or(0);
        let heartbeat = settings
            .get("heartbeatTimeoutInSecond")
            .and_then(Value::as_u64)
            .filter(|s| *s > 0)
            .map(Duration::from_secs);
        let text = |k: &str| settings.get(k).and_then(Value::as_str).map(str::to_owned);
        let session = Arc::new(LocalSession {
            id,
            kind,
            name: text("name"),
            proxy_user: text("proxyUser"),
            owner: None,
            heartbeat,
            pid,
            stdin: tokio::sync::Mutex::new(child.stdin.take()),
            state: Mutex::new(SessionState {
                state: "starting".into(),
                app_id: None,
                spark_ui: None,
                log: VecDeque::new(),
                dropped: 0,
                statements: Vec::new(),
                last_activity: Instant::now(),
            }),
        });
        session.push_log(format!(
            "starting a local PySpark session with {}",
            launch.python.display()
        ));

        let stdout = child.stdout.take().expect("piped stdout");
        let s = session.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Value>(&line) {
                    Ok(event) => s.on_event(event),
                    Err(_) => s.push_log(line),
                }
            }
        });
        let stderr = child.stderr.take().expect("piped stderr");
        let s = session.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                s.push_log(line);
            }
        });
        let s = session.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            s.on_exit(
                status
                    .map(|st| st.to_string())
                    .unwrap_or_else(|e| e.to_string()),
            );
        });
        let s = session.clone();
        let timeout = launch.startup_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            if s.state() == "starting" {
                s.push_log(format!(
                    "the session did not start within {} s; killing it",
                    timeout.as_secs()
                ));
                s.set_state("error");
                s.kill();
            }
        });
        Ok(session)
    }

    pub fn state(&self) -> String {
        self.state.lock().unwrap().state.clone()
    }

    fn set_state(&self, state: &str) {
        self.state.lock().unwrap().state = state.to_owned();
    }

    pub fn touch(&self) {
        self.state.lock().unwrap().last_activity = Instant::now();
    }

    pub fn idle_for(&self) -> Duration {
        self.state.lock().unwrap().last_activity.elapsed()
    }

    pub fn is_finished(&self) -> bool {
        session_is_finished(&self.state())
    }

    fn push_log(&self, line: String) {
        let mut st = self.state.lock().unwrap();
        st.log.push_back(line);
        if st.log.len() > MAX_LOG_LINES {
            st.log.pop_front();
            st.dropped += 1;
        }
    }

    /// Kills the driver and its JVM (the whole process group).
    pub fn kill(&self) {
        if self.pid > 0 {
            // SAFETY: kill(2) with a negative pid signals the process group we created.
            unsafe {
                libc::kill(-(self.pid as i32), libc::SIGKILL);
            }
        }
    }

    pub fn shut_down(&self, state: &str) {
        self.set_state(state);
        self.kill();
    }

    fn on_event(&self, event: Value) {
        let kind = event.get("event").and_then(Value::as_str).unwrap_or("");
        let mut st = self.state.lock().unwrap();
        match kind {
            "ready" => {
                st.app_id = event.get("appId").and_then(Value::as_str).map(Into::into);
                st.spark_ui = event
                    .get("sparkUiUrl")
                    .and_then(Value::as_str)
                    .map(Into::into);
                if st.state == "starting" {
                    st.state = "idle".into();
                }
            }
            "failed" => {
                st.state = "error".into();
                let error = event.get("error").and_then(Value::as_str).unwrap_or("");
                for line in error.lines() {
                    st.log.push_back(line.to_owned());
                }
            }
            "progress" => {
                let id = event.get("id").and_then(Value::as_u64).unwrap_or(u64::MAX);
                if let Some(s) = st.statements.iter_mut().find(|s| s.id as u64 == id) {
                    s.progress = event.get("progress").and_then(Value::as_f64).unwrap_or(0.0);
                }
            }
            "result" => {
                let id = event.get("id").and_then(Value::as_u64).unwrap_or(u64::MAX);
                let cancelled = event.get("cancelled").and_then(Value::as_bool) == Some(true);
                let output = event
                    .get("output")
                    .cloned()
                    .and_then(|o| serde_json::from_value::<StatementOutput>(o).ok());
                if let Some(s) = st.statements.iter_mut().find(|s| s.id as u64 == id) {
                    s.completed = now_ms();
                    s.progress = 1.0;
                    if cancelled {
                        s.state = "cancelled".into();
                        s.output = None;
                    } else {
                        s.state = "available".into();
                        s.output = output;
                    }
                }
                Self::advance(&mut st);
            }
            _ => {}
        }
    }

    /// The first unfinished statement is running; the session is busy while there is one.
    fn advance(st: &mut SessionState) {
        let mut running = false;
        for s in st.statements.iter_mut() {
            if statement_is_finished(&s.state) {
                continue;
            }
            if s.state == "waiting" {
                s.state = "running".into();
                s.started = now_ms();
            }
            running = true;
            break;
        }
        if matches!(st.state.as_str(), "idle" | "busy") {
            st.state = if running { "busy" } else { "idle" }.into();
        }
    }

    fn on_exit(&self, status: String) {
        let mut st = self.state.lock().unwrap();
        st.log
            .push_back(format!("the PySpark driver process exited ({status})"));
        if !matches!(st.state.as_str(), "killed" | "shutting_down" | "error") {
            st.state = "dead".into();
        }
        for s in st.statements.iter_mut() {
            if !statement_is_finished(&s.state) {
                s.state = "error".into();
                s.completed = now_ms();
                s.output = Some(StatementOutput {
                    status: "error".into(),
                    execution_count: s.id as i64,
                    data: None,
                    ename: Some("SessionDied".into()),
                    evalue: Some(format!(
                        "the Spark session's driver process exited ({status}) while this statement ran"
                    )),
                    traceback: Some(Vec::new()),
                });
            }
        }
    }

    /// Queues a statement; `Err` says why the session cannot take it.
    pub async fn submit(&self, code: String, kind: String) -> Result<Statement, SessionError> {
        let statement = {
            let mut st = self.state.lock().unwrap();
            if !matches!(st.state.as_str(), "idle" | "busy") {
                return Err(SessionError::NotReady {
                    session: self.id,
                    state: st.state.clone(),
                });
            }
            let statement = Statement {
                id: st.statements.len() as u32,
                code: code.clone(),
                state: "waiting".into(),
                output: None,
                progress: 0.0,
                started: 0,
                completed: 0,
            };
            st.statements.push(statement);
            Self::advance(&mut st);
            st.statements.last().cloned().expect("just pushed")
        };
        let msg = json!({"op": "run", "id": statement.id, "kind": kind, "code": code});
        self.send(msg).await?;
        Ok(statement)
    }

    pub async fn cancel(&self, statement: u32) -> Result<(), SessionError> {
        {
            let mut st = self.state.lock().unwrap();
            let s = st
                .statements
                .get_mut(statement as usize)
                .ok_or(SessionError::NoStatement {
                    session: self.id,
                    statement,
                })?;
            match s.state.as_str() {
                "waiting" => {
                    s.state = "cancelled".into();
                    s.completed = now_ms();
                }
                "running" => s.state = "cancelling".into(),
                _ => return Ok(()),
            }
        }
        self.send(json!({"op": "cancel", "id": statement})).await
    }

    async fn send(&self, msg: Value) -> Result<(), SessionError> {
        let mut stdin = self.stdin.lock().await;
        let Some(pipe) = stdin.as_mut() else {
            return Err(SessionError::Ended { session: self.id });
        };
        let mut line = msg.to_string();
        line.push('\n');
        pipe.write_all(line.as_bytes())
            .await
            .map_err(|source| SessionError::Pipe {
                session: self.id,
                source,
            })
    }

    pub fn statement(&self, id: u32) -> Option<Statement> {
        self.state
            .lock()
            .unwrap()
            .statements
            .get(id as usize)
            .cloned()
    }

    pub fn statements(&self) -> Vec<Statement> {
        self.state.lock().unwrap().statements.clone()
    }

    /// Log lines `from..from+size`, numbered from the session's first line; and the total.
    pub fn log_page(&self, from: usize, size: usize) -> (Vec<String>, usize) {
        let st = self.state.lock().unwrap();
        let total = st.dropped + st.log.len();
        let start = from.saturating_sub(st.dropped);
        let lines = st.log.iter().skip(start).take(size).cloned().collect();
        (lines, total)
    }

    /// The session as Livy shows it (`log` holds the last lines).
    pub fn to_livy(&self) -> Session {
        let st = self.state.lock().unwrap();
        let mut app_info = Map::new();
        app_info.insert("driverLogUrl".into(), Value::Null);
        app_info.insert(
            "sparkUiUrl".into(),
            st.spark_ui.clone().map_or(Value::Null, Value::String),
        );
        Session {
            id: self.id,
            name: self.name.clone(),
            app_id: st.app_id.clone(),
            owner: self.owner.clone(),
            proxy_user: self.proxy_user.clone(),
            state: st.state.clone(),
            kind: Some(self.kind.clone()),
            app_info,
            log: st.log.iter().rev().take(10).rev().cloned().collect(),
        }
    }
}
