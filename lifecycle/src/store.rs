//! The service's state on disk: lifecycle configurations and instances in one SQLite file
//! (WAL, one transaction per write), so a crash or restart loses nothing that was answered.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::LifecycleConfig;
use crate::instance::Instance;
use crate::LifecycleError;

pub struct StateStore {
    conn: Mutex<Connection>,
}

impl StateStore {
    pub fn open(path: &Path) -> Result<StateStore, LifecycleError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(LifecycleError::io(format!(
                "cannot make {}",
                parent.display()
            )))?;
        }
        let conn = Connection::open(path).map_err(LifecycleError::from)?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(LifecycleError::from)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(LifecycleError::from)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS configs (name TEXT PRIMARY KEY, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS instances (name TEXT PRIMARY KEY, body TEXT NOT NULL);",
        )
        .map_err(LifecycleError::from)?;
        Ok(StateStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn put<T: Serialize>(&self, table: &str, name: &str, value: &T) -> Result<(), LifecycleError> {
        let body = serde_json::to_string(value).expect("state serialises");
        self.conn()
            .execute(
                &format!("INSERT OR REPLACE INTO {table} (name, body) VALUES (?1, ?2)"),
                params![name, body],
            )
            .map(|_| ())
            .map_err(LifecycleError::from)
    }

    /// Inserts only when the name is free; false when it is taken.
    fn insert<T: Serialize>(
        &self,
        table: &str,
        name: &str,
        value: &T,
    ) -> Result<bool, LifecycleError> {
        let body = serde_json::to_string(value).expect("state serialises");
        self.conn()
            .execute(
                &format!("INSERT OR IGNORE INTO {table} (name, body) VALUES (?1, ?2)"),
                params![name, body],
            )
            .map(|n| n == 1)
            .map_err(LifecycleError::from)
    }

    fn get<T: DeserializeOwned>(
        &self,
        table: &str,
        name: &str,
    ) -> Result<Option<T>, LifecycleError> {
        let body: Option<String> = self
            .conn()
            .query_row(
                &format!("SELECT body FROM {table} WHERE name = ?1"),
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(LifecycleError::from)?;
        body.map(|b| serde_json::from_str(&b).map_err(LifecycleError::from))
            .transpose()
    }

    fn all<T: DeserializeOwned>(&self, table: &str) -> Result<Vec<T>, LifecycleError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!("SELECT body FROM {table} ORDER BY name"))
            .map_err(LifecycleError::from)?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(LifecycleError::from)?;
        rows.map(|b| {
            b.map_err(LifecycleError::from)
                .and_then(|b| serde_json::from_str(&b).map_err(LifecycleError::from))
        })
        .collect()
    }

    fn delete(&self, table: &str, name: &str) -> Result<bool, LifecycleError> {
        self.conn()
            .execute(&format!("DELETE FROM {table} WHERE name = ?1"), [name])
            .map(|n| n == 1)
            .map_err(LifecycleError::from)
    }

    pub fn insert_config(&self, c: &LifecycleConfig) -> Result<bool, LifecycleError> {
        self.insert("configs", &c.name, c)
    }
    pub fn put_config(&self, c: &LifecycleConfig) -> Result<(), LifecycleError> {
        self.put("configs", &c.name, c)
    }
    pub fn config(&self, name: &str) -> Result<Option<LifecycleConfig>, LifecycleError> {
        self.get("configs", name)
    }
    pub fn configs(&self) -> Result<Vec<LifecycleConfig>, LifecycleError> {
        self.all("configs")
    }
    pub fn delete_config(&self, name: &str) -> Result<bool, LifecycleError> {
        self.delete("configs", name)
    }
    pub fn insert_instance(&self, i: &Instance) -> Result<bool, LifecycleError> {
        self.insert("instances", &i.name, i)
    }
    pub fn put_instance(&self, i: &Instance) -> Result<(), LifecycleError> {
        self.put("instances", &i.name, i)
    }
    pub fn instance(&self, name: &str) -> Result<Option<Instance>, LifecycleError> {
        self.get("instances", name)
    }
    pub fn instances(&self) -> Result<Vec<Instance>, LifecycleError> {
        self.all("instances")
    }
    pub fn delete_instance(&self, name: &str) -> Result<bool, LifecycleError> {
        self.delete("instances", name)
    }
}
