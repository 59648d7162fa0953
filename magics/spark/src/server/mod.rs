//! `rustmaker livy serve`: a Livy-compatible REST server whose sessions are local PySpark
//! processes. It speaks Livy 0.7's JSON (sessions, statements, cancel, logs) so that any Livy
//! client, sparkmagic included, can use it; it binds to loopback unless told otherwise.

mod session;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::livy::Kind;
use session::{Launch, LocalSession};

/// The PySpark side of a session, written next to the server's state when it starts.
const DRIVER: &str = include_str!("driver.py");

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    /// The Python with pyspark installed.
    pub python: PathBuf,
    /// Where the driver script is written.
    pub state_dir: PathBuf,
    pub max_sessions: usize,
    /// A session that received no request for this long is deleted.
    pub session_idle_timeout: Duration,
    pub session_startup_timeout: Duration,
    /// Basic auth `(user, password)`; `None` serves without authentication.
    pub credentials: Option<(String, String)>,
    /// Stop the server after this long with no sessions and no requests.
    pub exit_when_idle: Option<Duration>,
}

struct App {
    config: ServerConfig,
    driver: PathBuf,
    sessions: Mutex<BTreeMap<u32, Arc<LocalSession>>>,
    next_id: AtomicU32,
    last_request: Mutex<Instant>,
}

/// Runs the server until it is idle for `exit_when_idle` or the process is stopped.
/// `on_ready` receives the bound address (port 0 picks a free port).
pub async fn serve(config: ServerConfig, on_ready: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    std::fs::create_dir_all(&config.state_dir)?;
    let driver = config.state_dir.join("livy_driver.py");
    std::fs::write(&driver, DRIVER)?;
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let app = Arc::new(App {
        config,
        driver,
        sessions: Mutex::new(BTreeMap::new()),
        next_id: AtomicU32::new(0),
        last_request: Mutex::new(Instant::now()),
    });
    let router = Router::new()
        .route("/sessions", get(list_sessions).post(create_session))
        .route("/sessions/{id}", get(get_session).delete(delete_session))
        .route("/sessions/{id}/state", get(session_state))
        .route("/sessions/{id}/log", get(session_log))
        .route(
            "/sessions/{id}/statements",
            get(list_statements).post(submit_statement),
        )
        .route("/sessions/{id}/statements/{sid}", get(get_statement))
        .route(
            "/sessions/{id}/statements/{sid}/cancel",
            post(cancel_statement),
        )
        .fallback(|| async { livy_error(StatusCode::NOT_FOUND, "not a Livy endpoint") })
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .with_state(app.clone());

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(reaper(app.clone(), stop_tx));
    on_ready(addr);
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            // Idle exit, SIGTERM or Ctrl-C: stop serving, then kill the sessions below.
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let terminated = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = stop_rx => {}
                _ = terminated => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await;
    for s in app.sessions.lock().unwrap().values() {
        s.shut_down("killed");
    }
    result
}

/// Deletes sessions past their heartbeat or idle timeout; stops an idle server.
async fn reaper(app: Arc<App>, stop: tokio::sync::oneshot::Sender<()>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut sessions = app.sessions.lock().unwrap();
        sessions.retain(|_, s| {
            let idle = s.idle_for();
            let expired =
                s.heartbeat.is_some_and(|h| idle > h) || idle > app.config.session_idle_timeout;
            if expired {
                tracing::info!(session = s.id, "deleting the session: idle timeout");
                s.shut_down("killed");
            }
            !expired
        });
        let empty = sessions.is_empty();
        drop(sessions);
        if let Some(limit) = app.config.exit_when_idle {
            if empty && app.last_request.lock().unwrap().elapsed() > limit {
                tracing::info!("no sessions and no requests: stopping the server");
                let _ = stop.send(());
                return;
            }
        }
    }
}

async fn authenticate(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    *app.last_request.lock().unwrap() = Instant::now();
    if let Some((user, password)) = &app.config.credentials {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            let mut r = livy_error(
                StatusCode::UNAUTHORIZED,
                "authentication required: this Livy server takes HTTP Basic credentials",
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"livy\""),
            );
            return r;
        }
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An error answer in Livy's shape: `{"msg": "..."}` with an HTTP status.
struct ApiError {
    status: StatusCode,
    msg: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"msg": self.msg}))).into_response()
    }
}

fn livy_error(status: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError {
        status,
        msg: msg.into(),
    }
}

fn session_error(e: session::SessionError) -> ApiError {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    livy_error(status, e.to_string())
}

type Reply = Result<Response, ApiError>;

fn session(app: &App, id: u32) -> Result<Arc<LocalSession>, ApiError> {
    let s = app.sessions.lock().unwrap().get(&id).cloned();
    let s =
        s.ok_or_else(|| livy_error(StatusCode::NOT_FOUND, format!("Session '{id}' not found.")))?;
    s.touch();
    Ok(s)
}

#[derive(Deserialize)]
struct Page {
    from: Option<usize>,
    size: Option<usize>,
}

async fn list_sessions(State(app): State<Arc<App>>, Query(page): Query<Page>) -> Reply {
    let sessions = app.sessions.lock().unwrap();
    let from = page.from.unwrap_or(0);
    let list: Vec<_> = sessions
        .values()
        .skip(from)
        .take(page.size.unwrap_or(100))
        .map(|s| s.to_livy())
        .collect();
    Ok(Json(json!({"from": from, "total": sessions.len(), "sessions": list})).into_response())
}

/// `POST /sessions` body, as Livy's CreateInteractiveRequest.
/// Read to validate the request (types, unknown fields); the driver reads the settings.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct CreateSession {
    kind: Option<String>,
    proxy_user: Option<String>,
    jars: Option<Vec<String>>,
    py_files: Option<Vec<String>>,
    files: Option<Vec<String>>,
    driver_memory: Option<String>,
    driver_cores: Option<u32>,
    executor_memory: Option<String>,
    executor_cores: Option<u32>,
    num_executors: Option<u32>,
    archives: Option<Vec<String>>,
    queue: Option<String>,
    name: Option<String>,
    conf: Option<BTreeMap<String, String>>,
    heartbeat_timeout_in_second: Option<u64>,
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let text = if body.is_empty() { &b"{}"[..] } else { body };
    serde_json::from_slice(text).map_err(|e| {
        livy_error(
            StatusCode::BAD_REQUEST,
            format!("the request body is not valid JSON for this request: {e}"),
        )
    })
}

async fn create_session(State(app): State<Arc<App>>, body: Bytes) -> Reply {
    let settings: Value = parse_body(&body)?;
    let request: CreateSession = parse_body(&body)?;
    let kind = match request.kind.as_deref() {
        None => Kind::PySpark,
        Some(k) => Kind::parse(k).ok_or_else(|| {
            livy_error(
                StatusCode::BAD_REQUEST,
                format!("unknown session kind `{k}`: use spark, pyspark, sparkr or sql"),
            )
        })?,
    };
    if matches!(kind, Kind::Spark | Kind::SparkR) {
        return Err(livy_error(
            StatusCode::BAD_REQUEST,
            format!(
                "this local Livy server runs PySpark sessions (kinds pyspark and sql); a `{}` session needs a Livy on a Spark cluster such as EMR",
                kind.as_str()
            ),
        ));
    }
    let mut sessions = app.sessions.lock().unwrap();
    let live = sessions.values().filter(|s| !s.is_finished()).count();
    if live >= app.config.max_sessions {
        return Err(livy_error(
            StatusCode::BAD_REQUEST,
            format!(
                "Rejected, too many sessions are running ({live} of at most {}): delete one (DELETE /sessions/ID, or %spark cleanup)",
                app.config.max_sessions
            ),
        ));
    }
    let id = app.next_id.fetch_add(1, Ordering::SeqCst);
    let mut driver_settings = settings.clone();
    driver_settings["id"] = json!(id);
    let launch = Launch {
        python: &app.config.python,
        driver: &app.driver,
        settings: driver_settings,
        startup_timeout: app.config.session_startup_timeout,
    };
    let s = LocalSession::spawn(id, kind.as_str().into(), &settings, launch).map_err(|e| {
        livy_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "cannot start Python `{}` for the session: {e}; set RUSTMAKER_PYTHON to a Python with pyspark",
                app.config.python.display()
            ),
        )
    })?;
    sessions.insert(id, s.clone());
    Ok((StatusCode::CREATED, Json(s.to_livy())).into_response())
}

async fn get_session(State(app): State<Arc<App>>, Path(id): Path<u32>) -> Reply {
    Ok(Json(session(&app, id)?.to_livy()).into_response())
}

async fn session_state(State(app): State<Arc<App>>, Path(id): Path<u32>) -> Reply {
    let s = session(&app, id)?;
    Ok(Json(json!({"id": id, "state": s.state()})).into_response())
}

async fn delete_session(State(app): State<Arc<App>>, Path(id): Path<u32>) -> Reply {
    let s = session(&app, id)?;
    s.shut_down("shutting_down");
    app.sessions.lock().unwrap().remove(&id);
    Ok(Json(json!({"msg": "deleted"})).into_response())
}

async fn session_log(
    State(app): State<Arc<App>>,
    Path(id): Path<u32>,
    Query(page): Query<Page>,
) -> Reply {
    let s = session(&app, id)?;
    let size = page.size.unwrap_or(100);
    let (_, total) = s.log_page(0, 0);
    // Livy's default page is the last `size` lines.
    let from = page.from.unwrap_or(total.saturating_sub(size));
    let (log, total) = s.log_page(from, size);
    Ok(Json(json!({"id": id, "from": from, "total": total, "log": log})).into_response())
}

async fn list_statements(State(app): State<Arc<App>>, Path(id): Path<u32>) -> Reply {
    let statements = session(&app, id)?.statements();
    Ok(
        Json(json!({"total_statements": statements.len(), "statements": statements}))
            .into_response(),
    )
}

#[derive(Deserialize)]
struct SubmitStatement {
    code: Option<String>,
    kind: Option<String>,
}

async fn submit_statement(State(app): State<Arc<App>>, Path(id): Path<u32>, body: Bytes) -> Reply {
    let s = session(&app, id)?;
    let request: SubmitStatement = parse_body(&body)?;
    let code = request
        .code
        .ok_or_else(|| livy_error(StatusCode::BAD_REQUEST, "the statement has no `code`"))?;
    let kind = match request.kind.as_deref() {
        None => s.kind.clone(),
        Some(k) => Kind::parse(k)
            .map(|k| k.as_str().to_owned())
            .ok_or_else(|| {
                livy_error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown code kind `{k}`: use spark, pyspark, sparkr or sql"),
                )
            })?,
    };
    let statement = s.submit(code, kind).await.map_err(session_error)?;
    Ok((StatusCode::CREATED, Json(statement)).into_response())
}

async fn get_statement(State(app): State<Arc<App>>, Path((id, sid)): Path<(u32, u32)>) -> Reply {
    let s = session(&app, id)?;
    let statement = s.statement(sid).ok_or_else(|| {
        livy_error(
            StatusCode::NOT_FOUND,
            format!("Statement '{sid}' not found in session '{id}'."),
        )
    })?;
    Ok(Json(statement).into_response())
}

async fn cancel_statement(State(app): State<Arc<App>>, Path((id, sid)): Path<(u32, u32)>) -> Reply {
    let s = session(&app, id)?;
    s.cancel(sid).await.map_err(session_error)?;
    Ok(Json(json!({"msg": "canceled"})).into_response())
}
