//! A blocking Livy REST client: sessions, statements, cancel, logs; retries for transient
//! failures; every error names the endpoint, the request and the HTTP status.

use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::{Session, SessionList, SessionLog, Statement};

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic {
        user: String,
        password: String,
    },
    /// SPNEGO/Kerberos. Refused with a clear error: this build has no GSSAPI support.
    Kerberos,
}

impl Auth {
    /// sparkmagic's `-t` names: `None`, `Basic_Access`, `Kerberos` (case-insensitive).
    pub fn parse(kind: &str, user: &str, password: &str) -> Result<Auth, UnknownAuth> {
        match kind.to_ascii_lowercase().as_str() {
            "none" | "" if user.is_empty() => Ok(Auth::None),
            "none" | "" | "basic_access" | "basic" => Ok(Auth::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
            "kerberos" => Ok(Auth::Kerberos),
            other => Err(UnknownAuth(other.to_owned())),
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Auth::None => "None",
            Auth::Basic { .. } => "Basic_Access",
            Auth::Kerberos => "Kerberos",
        }
    }
}

/// An authentication type sparkmagic does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown authentication type `{0}`: use None, Basic_Access or Kerberos")]
pub struct UnknownAuth(pub String);

/// A Livy server: its base URL (without a trailing `/`) and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub auth: Auth,
}

impl Endpoint {
    pub fn new(url: &str, auth: Auth) -> Endpoint {
        Endpoint {
            url: url.trim_end_matches('/').to_owned(),
            auth,
        }
    }
}

/// Retries for transient failures: connection errors, timeouts, HTTP 502/503/504 (and any
/// 5xx on requests that are safe to repeat).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub retries: u32,
    pub delay: Duration,
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 2,
            delay: Duration::from_millis(250),
            request_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LivyError {
    #[error("Livy at {url} answered {method} {path} with HTTP {status}: {message}")]
    Http {
        url: String,
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    #[error("cannot reach Livy at {url} ({method} {path}): {reason}. Check that the server is running and the URL is right (`%spark info` shows the endpoints in use).")]
    Unreachable {
        url: String,
        method: String,
        path: String,
        reason: String,
    },
    #[error("Livy at {url} sent a response to {method} {path} that is not the JSON Livy sends ({reason}): {snippet}")]
    BadResponse {
        url: String,
        method: String,
        path: String,
        reason: String,
        snippet: String,
    },
    #[error("Kerberos authentication is not available in this build of rustmaker (no GSSAPI support); use Basic_Access or None, or reach Livy through a Kerberos-aware proxy")]
    KerberosUnavailable,
}

/// Livy refusing, failing or not answering is a service error in the notebook.
impl From<LivyError> for rustmaker_magics::MagicError {
    fn from(e: LivyError) -> rustmaker_magics::MagicError {
        rustmaker_magics::service_error(e)
    }
}

impl LivyError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            LivyError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Sleeps `length` in short slices; false as soon as `stop` is true.
fn pause(length: Duration, stop: &dyn Fn() -> bool) -> bool {
    let end = std::time::Instant::now() + length;
    loop {
        if stop() {
            return false;
        }
        let now = std::time::Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(25)));
    }
}

/// A client for one endpoint.
#[derive(Clone)]
pub struct LivyClient {
    endpoint: Endpoint,
    http: Client,
    retry: RetryPolicy,
}

impl LivyClient {
    pub fn new(endpoint: Endpoint, retry: RetryPolicy) -> Result<LivyClient, LivyError> {
        if endpoint.auth == Auth::Kerberos {
            return Err(LivyError::KerberosUnavailable);
        }
        let http = Client::builder()
            .timeout(retry.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| LivyError::Unreachable {
                url: endpoint.url.clone(),
                method: "-".into(),
                path: "-".into(),
                reason: format!("cannot create an HTTP client: {e}"),
            })?;
        Ok(LivyClient {
            endpoint,
            http,
            retry,
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn list_sessions(&self) -> Result<SessionList, LivyError> {
        self.call(Method::GET, "/sessions?from=0&size=1000", None)
    }

    /// `POST /sessions` with the session properties (`kind`, `conf`, `driverMemory`, …).
    pub fn create_session(&self, properties: &Value) -> Result<Session, LivyError> {
        self.call(Method::POST, "/sessions", Some(properties))
    }

    pub fn session(&self, id: u32) -> Result<Session, LivyError> {
        self.session_until(id, &|| false)
    }

    /// [`LivyClient::session`] whose retries end as soon as `stop` is true (the cell was
    /// interrupted); the last failure is returned then.
    pub fn session_until(&self, id: u32, stop: &dyn Fn() -> bool) -> Result<Session, LivyError> {
        self.call_until(Method::GET, &format!("/sessions/{id}"), None, stop)
    }

    pub fn delete_session(&self, id: u32) -> Result<(), LivyError> {
        self.call::<Value>(Method::DELETE, &format!("/sessions/{id}"), None)
            .map(drop)
    }

    /// One page of the session's log (`from` is a line number; Livy pages 100 lines by default).
    pub fn logs(&self, id: u32, from: u32, size: u32) -> Result<SessionLog, LivyError> {
        self.call(
            Method::GET,
            &format!("/sessions/{id}/log?from={from}&size={size}"),
            None,
        )
    }

    pub fn submit(&self, id: u32, code: &str, kind: &str) -> Result<Statement, LivyError> {
        let body = json!({"code": code, "kind": kind});
        self.call(
            Method::POST,
            &format!("/sessions/{id}/statements"),
            Some(&body),
        )
    }

    pub fn statement(&self, id: u32, statement: u32) -> Result<Statement, LivyError> {
        self.statement_until(id, statement, &|| false)
    }

    /// [`LivyClient::statement`] whose retries end as soon as `stop` is true.
    pub fn statement_until(
        &self,
        id: u32,
        statement: u32,
        stop: &dyn Fn() -> bool,
    ) -> Result<Statement, LivyError> {
        self.call_until(
            Method::GET,
            &format!("/sessions/{id}/statements/{statement}"),
            None,
            stop,
        )
    }

    pub fn cancel(&self, id: u32, statement: u32) -> Result<(), LivyError> {
        self.call::<Value>(
            Method::POST,
            &format!("/sessions/{id}/statements/{statement}/cancel"),
            Some(&json!({})),
        )
        .map(drop)
    }

    fn request(&self, method: &Method, path: &str, body: Option<&Value>) -> RequestBuilder {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{}", self.endpoint.url, path))
            // Livy with CSRF protection refuses state-changing requests without it.
            .header("X-Requested-By", "rustmaker")
            .header("Accept", "application/json");
        if let Auth::Basic { user, password } = &self.endpoint.auth {
            req = req.basic_auth(user, Some(password));
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        req
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, LivyError> {
        self.call_until(method, path, body, &|| false)
    }

    fn call_until<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        stop: &dyn Fn() -> bool,
    ) -> Result<T, LivyError> {
        let idempotent = method != Method::POST;
        let mut attempt = 0;
        loop {
            let outcome = self.request(&method, path, body).send();
            let retry = match &outcome {
                Err(e) => e.is_connect() || (idempotent && e.is_timeout()),
                Ok(r) => {
                    let s = r.status();
                    matches!(
                        s,
                        StatusCode::BAD_GATEWAY
                            | StatusCode::SERVICE_UNAVAILABLE
                            | StatusCode::GATEWAY_TIMEOUT
                    ) || (idempotent && s.is_server_error())
                }
            };
            if retry && attempt < self.retry.retries {
                attempt += 1;
                if pause(self.retry.delay * attempt, stop) {
                    continue;
                }
            }
            return self.read(&method, path, outcome);
        }
    }

    fn read<T: DeserializeOwned>(
        &self,
        method: &Method,
        path: &str,
        outcome: reqwest::Result<Response>,
    ) -> Result<T, LivyError> {
        let url = self.endpoint.url.clone();
        let (m, p) = (method.to_string(), path.to_owned());
        let response = outcome.map_err(|e| LivyError::Unreachable {
            url: url.clone(),
            method: m.clone(),
            path: p.clone(),
            reason: describe_transport_error(&e),
        })?;
        let status = response.status();
        let bytes = response.bytes().map_err(|e| LivyError::Unreachable {
            url: url.clone(),
            method: m.clone(),
            path: p.clone(),
            reason: describe_transport_error(&e),
        })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("msg").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| snippet(&bytes));
            let reason = status.canonical_reason().unwrap_or("");
            return Err(LivyError::Http {
                url,
                method: m,
                path: p,
                status: status.as_u16(),
                message: if message.is_empty() {
                    reason.to_owned()
                } else {
                    format!("{reason}: {message}")
                },
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| LivyError::BadResponse {
            url,
            method: m,
            path: p,
            reason: e.to_string(),
            snippet: snippet(&bytes),
        })
    }
}

fn describe_transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the request timed out".into()
    } else if e.is_connect() {
        let mut source = std::error::Error::source(e);
        let mut reason = "connection failed".to_owned();
        while let Some(s) = source {
            reason = s.to_string();
            source = s.source();
        }
        format!("connection failed: {reason}")
    } else {
        e.to_string()
    }
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A port nothing listens on: every request fails to connect, which is retried.
    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    fn client(retries: u32, delay: Duration) -> LivyClient {
        let url = format!("http://127.0.0.1:{}", closed_port());
        let retry = RetryPolicy {
            retries,
            delay,
            request_timeout: Duration::from_secs(5),
        };
        LivyClient::new(Endpoint::new(&url, Auth::None), retry).unwrap()
    }

    #[test]
    fn retries_wait_between_attempts_and_then_fail_with_the_endpoint() {
        let started = Instant::now();
        let err = client(2, Duration::from_millis(100))
            .session(0)
            .unwrap_err();
        // 100 ms, then 200 ms.
        assert!(started.elapsed() >= Duration::from_millis(300), "{err}");
        assert!(matches!(err, LivyError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("cannot reach Livy"), "{err}");
    }

    #[test]
    fn an_interrupt_ends_the_retry_wait_at_once() {
        let started = Instant::now();
        let stop = || started.elapsed() > Duration::from_millis(150);
        let err = client(5, Duration::from_secs(10))
            .statement_until(0, 0, &stop)
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "{err}");
        assert!(matches!(err, LivyError::Unreachable { .. }), "{err}");
    }
}
