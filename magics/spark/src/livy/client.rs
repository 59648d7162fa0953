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
    pub fn parse(kind: &str, user: &str, password: &str) -> Result<Auth, String> {
        match kind.to_ascii_lowercase().as_str() {
            "none" | "" if user.is_empty() => Ok(Auth::None),
            "none" | "" | "basic_access" | "basic" => Ok(Auth::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
            "kerberos" => Ok(Auth::Kerberos),
            other => Err(format!(
                "unknown authentication type `{other}`: use None, Basic_Access or Kerberos"
            )),
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

impl LivyError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            LivyError::Http { status, .. } => Some(*status),
            _ => None,
        }
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
        self.call(Method::GET, &format!("/sessions/{id}"), None)
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
        self.call(
            Method::GET,
            &format!("/sessions/{id}/statements/{statement}"),
            None,
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
                std::thread::sleep(self.retry.delay * attempt);
                continue;
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
