//! Livy's REST API: the JSON shapes (as Livy 0.7/0.8 serve them) and a blocking client.

pub mod client;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use client::{Auth, Endpoint, LivyClient, LivyError, RetryPolicy, UnknownAuth};

/// A session as `GET /sessions/{id}` returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: u32,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub proxy_user: Option<String>,
    pub state: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub app_info: Map<String, Value>,
    #[serde(default)]
    pub log: Vec<String>,
}

/// Session states that will not change any more.
pub fn session_is_finished(state: &str) -> bool {
    matches!(
        state,
        "shutting_down" | "error" | "dead" | "killed" | "success"
    )
}

/// A statement as `GET /sessions/{id}/statements/{sid}` returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Statement {
    pub id: u32,
    #[serde(default)]
    pub code: String,
    pub state: String,
    #[serde(default)]
    pub output: Option<StatementOutput>,
    #[serde(default)]
    pub progress: f64,
    #[serde(default)]
    pub started: i64,
    #[serde(default)]
    pub completed: i64,
}

/// Statement states that will not change any more.
pub fn statement_is_finished(state: &str) -> bool {
    matches!(state, "available" | "error" | "cancelled")
}

/// What a finished statement produced: `status` "ok" with MIME `data`, or "error".
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatementOutput {
    pub status: String,
    #[serde(default)]
    pub execution_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evalue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceback: Option<Vec<String>>,
}

/// `GET /sessions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionList {
    pub from: u32,
    pub total: u32,
    pub sessions: Vec<Session>,
}

/// `GET /sessions/{id}/log`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionLog {
    pub id: u32,
    pub from: u32,
    pub total: u32,
    pub log: Vec<String>,
}

/// Session kinds Livy knows, and the statement kind code for each language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Spark,
    PySpark,
    SparkR,
    Sql,
}

impl Kind {
    /// Livy's name for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Spark => "spark",
            Kind::PySpark => "pyspark",
            Kind::SparkR => "sparkr",
            Kind::Sql => "sql",
        }
    }

    /// A Livy kind, or one of sparkmagic's language names (`python`, `scala`, `r`, `sql`).
    pub fn parse(text: &str) -> Option<Kind> {
        Some(match text.to_ascii_lowercase().as_str() {
            "spark" | "scala" => Kind::Spark,
            "pyspark" | "python" | "python3" | "pyspark3" => Kind::PySpark,
            "sparkr" | "r" => Kind::SparkR,
            "sql" => Kind::Sql,
            _ => return None,
        })
    }
}
