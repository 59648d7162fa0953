//! SageMaker Model Monitor's files, field for field: `statistics.json`, `constraints.json` and
//! `constraint_violations.json`. Reading is tolerant (unknown and legacy keys are ignored, both
//! spellings of the per-feature overrides are accepted); writing uses the current names.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InferredType {
    Integral,
    Fractional,
    String,
    Unknown,
}

impl InferredType {
    pub fn as_str(self) -> &'static str {
        match self {
            InferredType::Integral => "Integral",
            InferredType::Fractional => "Fractional",
            InferredType::String => "String",
            InferredType::Unknown => "Unknown",
        }
    }
}

// ---- statistics.json ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    pub version: f64,
    pub dataset: Dataset,
    pub features: Vec<FeatureStatistics>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub item_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureStatistics {
    pub name: String,
    pub inferred_type: InferredType,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub numerical_statistics: Option<NumericalStatistics>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub string_statistics: Option<StringStatistics>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Common {
    pub num_present: u64,
    pub num_missing: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericalStatistics {
    pub common: Common,
    pub mean: f64,
    pub sum: f64,
    pub std_dev: f64,
    pub min: f64,
    pub max: f64,
    pub distribution: NumericDistribution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericDistribution {
    pub kll: KllDistribution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KllDistribution {
    pub buckets: Vec<KllBucket>,
    pub sketch: KllSketch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KllBucket {
    pub lower_bound: f64,
    pub upper_bound: f64,
    pub count: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KllSketch {
    pub parameters: KllParameters,
    pub data: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KllParameters {
    pub c: f64,
    pub k: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StringStatistics {
    pub common: Common,
    pub distinct_count: f64,
    pub distribution: CategoricalDistribution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalDistribution {
    pub categorical: Categorical,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Categorical {
    pub buckets: Vec<CategoricalBucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalBucket {
    pub value: String,
    pub count: u64,
}

// ---- constraints.json ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    pub version: f64,
    pub features: Vec<FeatureConstraints>,
    #[serde(default)]
    pub monitoring_config: MonitoringConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureConstraints {
    pub name: String,
    pub inferred_type: InferredType,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub completeness: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub num_constraints: Option<NumConstraints>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub string_constraints: Option<StringConstraints>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        alias = "monitoringConfigOverrides"
    )]
    pub monitoring_config_overrides: Option<Overrides>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NumConstraints {
    pub is_non_negative: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StringConstraints {
    #[serde(default)]
    pub domains: Vec<String>,
    /// The legacy place of the overrides (older SDK files).
    #[serde(skip_serializing, default)]
    pub monitoring_config_overrides: Option<Overrides>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub evaluate_constraints: Option<Toggle>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub emit_metrics: Option<Toggle>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Toggle {
    Enabled,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComparisonMethod {
    Simple,
    Robust,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CategoricalDriftMethod {
    LInfinity,
    ChiSquared,
}

fn enabled() -> Toggle {
    Toggle::Enabled
}
fn one() -> f64 {
    1.0
}
fn tenth() -> f64 {
    0.1
}
fn robust() -> ComparisonMethod {
    ComparisonMethod::Robust
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitoringConfig {
    #[serde(default = "enabled")]
    pub evaluate_constraints: Toggle,
    #[serde(default = "enabled")]
    pub emit_metrics: Toggle,
    /// The share of values that must have the baseline's type.
    #[serde(default = "one")]
    pub datatype_check_threshold: f64,
    /// The share of a string feature's values that must be in its domain.
    #[serde(default = "one")]
    pub domain_content_threshold: f64,
    #[serde(default)]
    pub distribution_constraints: DistributionConstraints,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            evaluate_constraints: Toggle::Enabled,
            emit_metrics: Toggle::Enabled,
            datatype_check_threshold: 1.0,
            domain_content_threshold: 1.0,
            distribution_constraints: DistributionConstraints::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistributionConstraints {
    #[serde(default = "enabled")]
    pub perform_comparison: Toggle,
    #[serde(default = "tenth")]
    pub comparison_threshold: f64,
    #[serde(default = "robust")]
    pub comparison_method: ComparisonMethod,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub categorical_comparison_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub categorical_drift_method: Option<CategoricalDriftMethod>,
}

impl Default for DistributionConstraints {
    fn default() -> Self {
        DistributionConstraints {
            perform_comparison: Toggle::Enabled,
            comparison_threshold: 0.1,
            comparison_method: ComparisonMethod::Robust,
            categorical_comparison_threshold: Some(0.1),
            categorical_drift_method: Some(CategoricalDriftMethod::LInfinity),
        }
    }
}

// ---- constraint_violations.json ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violations {
    pub violations: Vec<Violation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckType {
    DataTypeCheck,
    CompletenessCheck,
    BaselineDriftCheck,
    MissingColumnCheck,
    ExtraColumnCheck,
    CategoricalValuesCheck,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub feature_name: String,
    pub constraint_check_type: CheckType,
    pub description: String,
}
