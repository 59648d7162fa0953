//! Where Spark magics connect and with what session settings: the environment
//! (`RUSTMAKER_LIVY_URL`, …), then sparkmagic's own `~/.sparkmagic/config.json` (so a user's
//! sparkmagic set-up carries over), then the embedded local server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::livy::{Auth, RetryPolicy, UnknownAuth};

/// Why the Spark settings could not be read; each names the setting or file to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "`{0}` is not a Livy endpoint: give an http(s):// URL, an EMR cluster id (j-…) or `local`"
    )]
    NotAnEndpoint(String),
    #[error(transparent)]
    Auth(#[from] UnknownAuth),
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid JSON ({source}); fix it or set SPARKMAGIC_CONF_DIR to another folder", .path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: `session_configs` must be a JSON object", .path.display())]
    SessionConfigs { path: PathBuf },
    #[error("{var} must be a whole number, not `{value}`")]
    NotANumber { var: &'static str, value: String },
    /// A setting from the environment or sparkmagic's file that is wrong.
    #[error("{setting}: {source}")]
    Setting {
        setting: String,
        #[source]
        source: Box<ConfigError>,
    },
}

/// A setting to fix: the work cannot start until it is.
impl From<ConfigError> for rustmaker_magics::MagicError {
    fn from(e: ConfigError) -> rustmaker_magics::MagicError {
        rustmaker_magics::failed(e)
    }
}

impl ConfigError {
    fn in_setting(setting: impl Into<String>) -> impl FnOnce(ConfigError) -> ConfigError {
        let setting = setting.into();
        move |e| ConfigError::Setting {
            setting,
            source: Box::new(e),
        }
    }
}

/// Where the default session lives.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointSpec {
    /// The embedded local Livy-compatible server, started on first use.
    Local,
    /// A Livy URL.
    Url(String, Auth),
    /// An EMR cluster id (`j-…`): Livy on its master node.
    Emr(String, Auth),
}

impl EndpointSpec {
    /// `local`, a `j-…` cluster id or a URL, as given to `-u` or `RUSTMAKER_LIVY_URL`.
    pub fn parse(text: &str, auth: Auth) -> Result<EndpointSpec, ConfigError> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("local") {
            Ok(EndpointSpec::Local)
        } else if text.starts_with("j-") && !text.contains('/') {
            Ok(EndpointSpec::Emr(text.to_owned(), auth))
        } else if text.starts_with("http://") || text.starts_with("https://") {
            Ok(EndpointSpec::Url(text.to_owned(), auth))
        } else {
            Err(ConfigError::NotAnEndpoint(text.to_owned()))
        }
    }

    pub fn describe(&self) -> String {
        match self {
            EndpointSpec::Local => "the local Livy server".into(),
            EndpointSpec::Url(u, _) => u.clone(),
            EndpointSpec::Emr(id, _) => format!("EMR cluster {id}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SparkConfig {
    pub endpoint: EndpointSpec,
    /// The body of `POST /sessions` for new sessions (sparkmagic's `session_configs`).
    pub session_properties: Value,
    pub startup_timeout: Duration,
    /// Rows `%%sql` brings back when `-n` is not given (sparkmagic's `default_maxrows`).
    pub max_rows: i64,
    pub retry: RetryPolicy,
}

impl Default for SparkConfig {
    fn default() -> Self {
        SparkConfig {
            endpoint: EndpointSpec::Local,
            // sparkmagic's heartbeat, so idle sessions of a dead kernel are reclaimed.
            session_properties: json!({"heartbeatTimeoutInSecond": 60}),
            startup_timeout: Duration::from_secs(120),
            max_rows: 2500,
            retry: RetryPolicy::default(),
        }
    }
}

fn sparkmagic_config_path() -> Option<PathBuf> {
    let dir = std::env::var_os("SPARKMAGIC_CONF_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".sparkmagic")))?;
    let file = std::env::var("SPARKMAGIC_CONF_FILE").unwrap_or_else(|_| "config.json".into());
    Some(dir.join(file))
}

/// Reads sparkmagic's config file. An empty (or whitespace-only) file means "no overrides",
/// as sparkmagic reads it: sparkmagic itself creates an empty `config.json` the first time it
/// is imported, so such a file is common and must not break the Spark magics.
fn read_sparkmagic_file(path: &Path) -> Result<Option<Value>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| ConfigError::Json {
            path: path.to_owned(),
            source,
        })
}

impl SparkConfig {
    /// Reads the environment and sparkmagic's config file. A broken file is an error that
    /// names it; a missing one is not.
    pub fn load() -> Result<SparkConfig, ConfigError> {
        let mut config = SparkConfig::default();
        if let Some(path) = sparkmagic_config_path().filter(|p| p.exists()) {
            if let Some(file) = read_sparkmagic_file(&path)? {
                config.apply_sparkmagic(&file, &path)?;
            }
        }
        let number = |var: &'static str| -> Result<Option<u64>, ConfigError> {
            match std::env::var(var) {
                Ok(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| ConfigError::NotANumber { var, value: v }),
                Err(_) => Ok(None),
            }
        };
        if let Some(n) = number("RUSTMAKER_LIVY_RETRIES")? {
            config.retry.retries = n as u32;
        }
        if let Some(s) = number("RUSTMAKER_LIVY_TIMEOUT_SECONDS")? {
            config.retry.request_timeout = Duration::from_secs(s.max(1));
        }
        if let Ok(url) = std::env::var("RUSTMAKER_LIVY_URL") {
            let user = std::env::var("RUSTMAKER_LIVY_USER").unwrap_or_default();
            let password = std::env::var("RUSTMAKER_LIVY_PASSWORD").unwrap_or_default();
            let kind = std::env::var("RUSTMAKER_LIVY_AUTH").unwrap_or_default();
            let auth = Auth::parse(&kind, &user, &password)
                .map_err(|e| ConfigError::in_setting("RUSTMAKER_LIVY_AUTH")(e.into()))?;
            config.endpoint = EndpointSpec::parse(&url, auth)
                .map_err(ConfigError::in_setting("RUSTMAKER_LIVY_URL"))?;
        }
        Ok(config)
    }

    /// Applies sparkmagic's settings from `file`, read from `path` (named in errors).
    fn apply_sparkmagic(&mut self, file: &Value, path: &Path) -> Result<(), ConfigError> {
        if let Some(creds) = file.get("kernel_python_credentials") {
            let text = |k: &str| creds.get(k).and_then(Value::as_str).unwrap_or("");
            if !text("url").is_empty() {
                let setting = format!("{} (kernel_python_credentials)", path.display());
                let auth = Auth::parse(text("auth"), text("username"), text("password"))
                    .map_err(|e| ConfigError::in_setting(setting.clone())(e.into()))?;
                self.endpoint = EndpointSpec::parse(text("url"), auth)
                    .map_err(ConfigError::in_setting(setting))?;
            }
        }
        if let Some(props) = file.get("session_configs") {
            if !props.is_object() {
                return Err(ConfigError::SessionConfigs {
                    path: path.to_owned(),
                });
            }
            let mut merged = self.session_properties.clone();
            for (k, v) in props.as_object().into_iter().flatten() {
                merged[k] = v.clone();
            }
            self.session_properties = merged;
        }
        if let Some(s) = file
            .get("livy_session_startup_timeout_seconds")
            .and_then(Value::as_u64)
        {
            self.startup_timeout = Duration::from_secs(s);
        }
        if let Some(n) = file.get("default_maxrows").and_then(Value::as_i64) {
            self.max_rows = n;
        }
        if let Some(n) = file
            .get("configurable_retry_policy_max_retries")
            .and_then(Value::as_u64)
        {
            self.retry.retries = n as u32;
        }
        if let Some(s) = file
            .get("retry_seconds_to_sleep_list")
            .and_then(Value::as_array)
            .and_then(|l| l.first())
            .and_then(Value::as_f64)
        {
            self.retry.delay = Duration::from_secs_f64(s.max(0.0));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_specs() {
        assert_eq!(
            EndpointSpec::parse("", Auth::None).unwrap(),
            EndpointSpec::Local
        );
        assert_eq!(
            EndpointSpec::parse("j-2AXXXXXXGAPLF", Auth::None).unwrap(),
            EndpointSpec::Emr("j-2AXXXXXXGAPLF".into(), Auth::None)
        );
        assert!(matches!(
            EndpointSpec::parse("http://h:8998/", Auth::None),
            Ok(EndpointSpec::Url(..))
        ));
        assert!(EndpointSpec::parse("h:8998", Auth::None)
            .unwrap_err()
            .to_string()
            .contains("not a Livy endpoint"));
    }

    #[test]
    fn empty_sparkmagic_file_means_no_overrides() {
        let dir = std::env::temp_dir().join(format!("rm-sparkconf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        for blank in ["", "  \n\t\n"] {
            std::fs::write(&path, blank).unwrap();
            assert_eq!(read_sparkmagic_file(&path).unwrap(), None, "{blank:?}");
        }
        std::fs::write(&path, r#"{"default_maxrows": 5}"#).unwrap();
        assert_eq!(
            read_sparkmagic_file(&path).unwrap(),
            Some(json!({"default_maxrows": 5}))
        );
        std::fs::write(&path, "{\"default_maxrows\": ").unwrap();
        let err = read_sparkmagic_file(&path).unwrap_err().to_string();
        assert!(err.contains("is not valid JSON"), "{err}");
        assert!(err.contains("SPARKMAGIC_CONF_DIR"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_sparkmagic_settings() {
        let mut c = SparkConfig::default();
        let path = Path::new("config.json");
        c.apply_sparkmagic(&json!({
            "kernel_python_credentials": {"username": "u", "password": "p", "url": "http://l:8998", "auth": "Basic_Access"},
            "session_configs": {"driverMemory": "2g"},
            "livy_session_startup_timeout_seconds": 7,
            "default_maxrows": 10,
            "configurable_retry_policy_max_retries": 5,
            "retry_seconds_to_sleep_list": [0.5, 1, 3]
        }), path)
        .unwrap();
        assert_eq!(
            c.endpoint,
            EndpointSpec::Url(
                "http://l:8998".into(),
                Auth::Basic {
                    user: "u".into(),
                    password: "p".into()
                }
            )
        );
        assert_eq!(c.session_properties["driverMemory"], "2g");
        assert_eq!(c.session_properties["heartbeatTimeoutInSecond"], 60);
        assert_eq!(c.startup_timeout, Duration::from_secs(7));
        assert_eq!(c.max_rows, 10);
        assert_eq!(c.retry.retries, 5);
        assert_eq!(c.retry.delay, Duration::from_millis(500));
        let err = c
            .apply_sparkmagic(&json!({"session_configs": 3}), path)
            .unwrap_err();
        assert!(err.to_string().starts_with("config.json: "), "{err}");
        let err = c
            .apply_sparkmagic(
                &json!({"kernel_python_credentials": {"url": "h:1", "auth": "None"}}),
                path,
            )
            .unwrap_err();
        assert!(err.to_string().contains("is not a Livy endpoint"), "{err}");
    }
}
