//! A training job's definition in the field names of SageMaker's `TrainingJobDefinition`
//! (the shape CreateHyperParameterTuningJob takes), so that `%train` and `%tune` describe a
//! job the same way. A training job keeps its definition in `definition.json` in its
//! directory, which is what `%tune --job NAME` starts from.
//!
//! Where SageMaker points at a container, rustmaker reads `AlgorithmSpecification`'s
//! `AlgorithmName` as a built-in algorithm and `TrainingImage` as a script-mode entry point;
//! a channel's `S3Uri` may also be a frame or a local file. A built-in's target column is
//! `TargetAttributeName` (Autopilot's name for it), with `ProblemType`, `ValidationFraction`
//! and `Seed` beside it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::MlError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDefinition {
    pub name: String,
    pub regex: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlgorithmSpecification {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_input_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_definitions: Vec<MetricDefinition>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct S3DataSource {
    #[serde(rename = "S3Uri")]
    pub s3_uri: String,
    #[serde(
        rename = "S3DataType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub s3_data_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataSource {
    #[serde(rename = "S3DataSource")]
    pub s3_data_source: S3DataSource,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChannelConfig {
    pub channel_name: String,
    pub data_source: DataSource,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoppingCondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runtime_in_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrainingDefinition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition_name: Option<String>,
    pub algorithm_specification: AlgorithmSpecification,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub static_hyper_parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_data_config: Vec<ChannelConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping_condition: Option<StoppingCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_attribute_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_fraction: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_hook_config: Option<crate::debugger::DebugHookConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub debug_rule_configurations: Vec<crate::debugger::DebugRuleConfiguration>,
}

pub const DEFINITION_FILE: &str = "definition.json";

impl TrainingDefinition {
    /// Reads a definition given as JSON, turning numbers and booleans in
    /// `StaticHyperParameters` into the strings SageMaker requires (YAML users write them bare).
    pub fn from_value(mut value: serde_json::Value, field: &str) -> Result<Self, MlError> {
        if let Some(serde_json::Value::Object(map)) = value.get_mut("StaticHyperParameters") {
            for v in map.values_mut() {
                let text = match &*v {
                    serde_json::Value::String(_) => continue,
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                *v = serde_json::Value::String(text);
            }
        }
        serde_json::from_value(value).map_err(|e| MlError::Input(format!("{field}: {e}")))
    }

    pub fn channel(&self, name: &str) -> Option<&str> {
        self.input_data_config
            .iter()
            .find(|c| c.channel_name == name)
            .map(|c| c.data_source.s3_data_source.s3_uri.as_str())
    }

    pub fn save(&self, dir: &Path) -> Result<(), MlError> {
        let text = serde_json::to_string_pretty(self).expect("a definition serialises");
        std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(dir.join(DEFINITION_FILE), text))
            .map_err(|e| MlError::Input(format!("cannot write {}: {e}", dir.display())))
    }

    pub fn load(dir: &Path) -> Result<Self, MlError> {
        let path = dir.join(DEFINITION_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| MlError::Input(format!("cannot read {}: {e}", path.display())))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| MlError::Input(format!("{} is not JSON: {e}", path.display())))?;
        Self::from_value(value, &path.display().to_string())
    }
}
