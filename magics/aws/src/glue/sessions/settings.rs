//! The settings of the next Glue interactive session: what `%worker_type`, `%iam_role`, … and
//! Glue's `%%configure` set, checked as Glue checks them, and the request fields they become.

use super::*;

/// The settings the next session is created with.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    pub iam_role: Option<String>,
    pub region: Option<String>,
    pub glue_version: String,
    pub worker_type: String,
    pub number_of_workers: i32,
    /// Minutes without a statement before Glue stops the session.
    pub idle_timeout: i32,
    pub session_id_prefix: String,
    pub connections: Vec<String>,
    pub extra_py_files: Vec<String>,
    pub additional_python_modules: Vec<String>,
    /// `--key: value` job arguments from `%%configure`.
    pub job_args: BTreeMap<String, String>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        // The defaults of AWS Glue's own magics, except the version (the newest).
        SessionConfig {
            iam_role: None,
            region: None,
            glue_version: "5.0".into(),
            worker_type: "G.1X".into(),
            number_of_workers: 5,
            idle_timeout: 2880,
            session_id_prefix: "rustmaker".into(),
            connections: Vec::new(),
            extra_py_files: Vec::new(),
            additional_python_modules: Vec::new(),
            job_args: BTreeMap::new(),
        }
    }
}

/// The option magics, by name, with what each sets.
pub const OPTIONS: [(&str, &str); 10] = [
    ("iam_role", "The IAM role ARN the session runs as."),
    (
        "region",
        "The AWS region of the Glue session (and of %glue).",
    ),
    ("glue_version", "The Glue version: 2.0, 3.0, 4.0 or 5.0."),
    (
        "worker_type",
        "The worker type: G.1X, G.2X, G.4X, G.8X, G.025X, Z.2X, …",
    ),
    ("number_of_workers", "How many workers (at least 2)."),
    (
        "idle_timeout",
        "Minutes without a statement before Glue stops the session.",
    ),
    ("session_id_prefix", "The prefix of new session IDs."),
    ("connections", "Glue connections, comma-separated."),
    (
        "extra_py_files",
        "s3:// Python files for the session, comma-separated.",
    ),
    (
        "additional_python_modules",
        "pip packages for the session, comma-separated.",
    ),
];

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn int(key: &str, text: &str) -> Result<i32, MagicError> {
    text.trim()
        .parse()
        .map_err(|_| failed(format!("{key}: `{text}` is not a whole number")))
}

impl SessionConfig {
    /// Sets one option from its text form; the option names are those of AWS Glue's magics,
    /// and `--name` keys are job arguments.
    pub fn set(&mut self, key: &str, text: &str) -> Result<(), MagicError> {
        let text = text.trim();
        match key {
            "iam_role" => {
                let arn_ok = text.starts_with("arn:aws") && text.contains(":role/");
                if !arn_ok {
                    return Err(failed(format!(
                        "iam_role: `{text}` is not a role ARN; write arn:aws:iam::ACCOUNT:role/NAME"
                    )));
                }
                self.iam_role = Some(text.to_owned());
            }
            "region" => {
                let ok = !text.is_empty()
                    && text.contains('-')
                    && text.ends_with(|c: char| c.is_ascii_digit())
                    && text
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !ok {
                    return Err(failed(format!(
                        "region: `{text}` is not an AWS region name (like us-east-1)"
                    )));
                }
                self.region = Some(text.to_owned());
            }
            "glue_version" => {
                check_glue_version(text)?;
                self.glue_version = text.to_owned();
            }
            "worker_type" => {
                check_worker_type(text)?;
                self.worker_type = text.to_owned();
            }
            "number_of_workers" => {
                let n = int(key, text)?;
                check_workers(n)?;
                self.number_of_workers = n;
            }
            "idle_timeout" => {
                let n = int(key, text)?;
                if n < 1 {
                    return Err(failed(format!(
                        "idle_timeout: {n} minutes; give at least 1"
                    )));
                }
                self.idle_timeout = n;
            }
            "session_id_prefix" => {
                let ok = !text.is_empty()
                    && text.len() <= 60
                    && text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !ok {
                    return Err(failed(format!(
                        "session_id_prefix: `{text}`: use 1 to 60 letters, digits, `-` and `_`"
                    )));
                }
                self.session_id_prefix = text.to_owned();
            }
            "connections" => self.connections = list(text),
            "extra_py_files" => {
                let files = list(text);
                if let Some(bad) = files.iter().find(|f| !f.starts_with("s3://")) {
                    return Err(failed(format!(
                        "extra_py_files: `{bad}` is not an s3:// URL (upload it with %s3 cp first)"
                    )));
                }
                self.extra_py_files = files;
            }
            "additional_python_modules" => self.additional_python_modules = list(text),
            arg if arg.starts_with("--") && arg.len() > 2 => {
                self.job_args.insert(arg.to_owned(), text.to_owned());
            }
            other => {
                let known: Vec<&str> = OPTIONS.iter().map(|(k, _)| *k).collect();
                return Err(failed(format!(
                    "`{other}` is not a Glue session setting; use one of {} or a `--job-argument`",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The value of an option as the magics show it.
    pub fn get(&self, key: &str) -> String {
        match key {
            "iam_role" => self.iam_role.clone().unwrap_or_else(|| "(not set)".into()),
            "region" => self
                .region
                .clone()
                .unwrap_or_else(|| "(the kernel's AWS region)".into()),
            "glue_version" => self.glue_version.clone(),
            "worker_type" => self.worker_type.clone(),
            "number_of_workers" => self.number_of_workers.to_string(),
            "idle_timeout" => self.idle_timeout.to_string(),
            "session_id_prefix" => self.session_id_prefix.clone(),
            "connections" => self.connections.join(","),
            "extra_py_files" => self.extra_py_files.join(","),
            "additional_python_modules" => self.additional_python_modules.join(","),
            arg => self.job_args.get(arg).cloned().unwrap_or_default(),
        }
    }

    /// The DefaultArguments the session is created with.
    pub(super) fn default_arguments(&self) -> std::collections::HashMap<String, String> {
        let mut args: std::collections::HashMap<String, String> =
            [("--enable-glue-datacatalog".to_owned(), "true".to_owned())].into();
        if !self.extra_py_files.is_empty() {
            args.insert("--extra-py-files".into(), self.extra_py_files.join(","));
        }
        if !self.additional_python_modules.is_empty() {
            args.insert(
                "--additional-python-modules".into(),
                self.additional_python_modules.join(","),
            );
        }
        args.extend(self.job_args.clone());
        args
    }
}

/// True for the keys of Glue's `%%configure` (which are not Livy's): the kernel routes a
/// `%%configure` whose keys are all Glue's to the Glue session.
pub fn is_configure_key(key: &str) -> bool {
    OPTIONS.iter().any(|(k, _)| *k == key) || (key.starts_with("--") && key.len() > 2)
}
