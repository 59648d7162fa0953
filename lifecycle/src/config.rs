//! A lifecycle configuration: a name and at most one OnCreate and one OnStart script. The API
//! carries each script base64-encoded (`NotebookInstanceLifecycleHook {Content}`), 1 to 16,384
//! characters of base64, as SageMaker limits it.

use base64::Engine;
use rustmaker_sagemaker::Resource;
use serde::{Deserialize, Serialize};

use crate::LifecycleError;

/// SageMaker's limit on a hook's `Content` (base64 characters).
pub const MAX_CONTENT: usize = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hook {
    OnCreate,
    OnStart,
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::OnCreate => "OnCreate",
            Hook::OnStart => "OnStart",
        }
    }

    /// The log stream's name after the instance's: `<instance>/LifecycleConfigOnCreate`.
    pub fn stream_suffix(self) -> &'static str {
        match self {
            Hook::OnCreate => "LifecycleConfigOnCreate",
            Hook::OnStart => "LifecycleConfigOnStart",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleConfig {
    pub name: String,
    /// The scripts as the API carries them (base64).
    pub on_create: Option<String>,
    pub on_start: Option<String>,
    pub creation_time: f64,
    pub last_modified_time: f64,
}

/// A resource's name in the request's `field`, checked against SageMaker's pattern and limit.
pub fn check_name(name: &str, field: &str, resource: Resource) -> Result<(), LifecycleError> {
    rustmaker_sagemaker::check_name(name, resource).map_err(|e| {
        LifecycleError::Validation(format!("{field} `{name}` is not valid: {}", e.rule()))
    })
}

/// Checks one hook's `Content` and returns the script it encodes.
pub fn decode_content(content: &str, field: &str) -> Result<String, LifecycleError> {
    if content.is_empty() {
        return Err(LifecycleError::Validation(format!(
            "{field}.Content is empty; give the script base64-encoded"
        )));
    }
    if content.len() > MAX_CONTENT {
        return Err(LifecycleError::Validation(format!(
            "{field}.Content has {} characters; the limit is {MAX_CONTENT} (base64). Move the work into a script the hook downloads, or into the instance's image",
            content.len()
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(content.trim())
        .map_err(|e| LifecycleError::Validation(format!("{field}.Content is not base64: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|_| LifecycleError::Validation(format!("{field}.Content is not UTF-8 text")))
}

pub fn encode_script(script: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(script)
}

impl LifecycleConfig {
    /// A configuration from the API's hook lists (`OnCreate: [{Content}]`, at most one each).
    pub fn new(
        name: &str,
        on_create: &[String],
        on_start: &[String],
        now: f64,
    ) -> Result<LifecycleConfig, LifecycleError> {
        check_name(
            name,
            "NotebookInstanceLifecycleConfigName",
            Resource::LifecycleConfig,
        )?;
        let one = |list: &[String], field: &str| -> Result<Option<String>, LifecycleError> {
            match list {
                [] => Ok(None),
                [content] => decode_content(content, field).map(|_| Some(content.clone())),
                _ => Err(LifecycleError::Validation(format!(
                    "{field} has {} entries; give at most one script",
                    list.len()
                ))),
            }
        };
        Ok(LifecycleConfig {
            name: name.to_owned(),
            on_create: one(on_create, "OnCreate")?,
            on_start: one(on_start, "OnStart")?,
            creation_time: now,
            last_modified_time: now,
        })
    }

    pub fn script(&self, hook: Hook) -> Option<String> {
        let content = match hook {
            Hook::OnCreate => self.on_create.as_deref(),
            Hook::OnStart => self.on_start.as_deref(),
        }?;
        decode_content(content, hook.as_str()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_limits_and_encoding() {
        let script = "#!/bin/bash\necho hello\n";
        let c = LifecycleConfig::new("setup", &[encode_script(script)], &[], 1.0).unwrap();
        assert_eq!(c.script(Hook::OnCreate).as_deref(), Some(script));
        assert_eq!(c.script(Hook::OnStart), None);
        let big = "A".repeat(MAX_CONTENT + 4);
        let e = LifecycleConfig::new("setup", &[], &[big], 1.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("16388 characters; the limit is 16384"), "{e}");
        let exact = encode_script(&"#".repeat(MAX_CONTENT / 4 * 3));
        assert_eq!(exact.len(), MAX_CONTENT);
        assert!(LifecycleConfig::new("setup", &[exact], &[], 1.0).is_ok());
        let e = LifecycleConfig::new("setup", &["***".into()], &[], 1.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("OnCreate.Content is not base64"), "{e}");
        let e = LifecycleConfig::new("bad_name", &[], &[], 1.0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("NotebookInstanceLifecycleConfigName `bad_name`"),
            "{e}"
        );
        let two = vec![encode_script("a"), encode_script("b")];
        assert!(LifecycleConfig::new("x", &two, &[], 1.0).is_err());
    }
}
