//! Which built-in rules there are, their parameters and defaults, and a configuration
//! checked into a [`RuleSpec`].

use std::collections::BTreeMap;

use regex::Regex;

use super::super::config::DebugRuleConfiguration;
use super::super::trial::Mode;
use super::super::DebuggerError;

macro_rules! rule_kinds {
    ($($kind:ident: [$($coll:literal),*] {$($p:literal = $d:literal),*})*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum RuleKind { $($kind),* }
        impl RuleKind {
            pub const ALL: &'static [RuleKind] = &[$(RuleKind::$kind),*];
            pub fn name(self) -> &'static str {
                match self { $(RuleKind::$kind => stringify!($kind)),* }
            }
            /// The collections the rule reads (what SageMaker's rule configuration saves).
            pub fn collections(self) -> &'static [&'static str] {
                match self { $(RuleKind::$kind => &[$($coll),*]),* }
            }
            /// Its parameters and their defaults ("" for none).
            pub fn parameters(self) -> &'static [(&'static str, &'static str)] {
                match self { $(RuleKind::$kind => &[$(($p, $d)),*]),* }
            }
        }
    };
}

rule_kinds! {
    LossNotDecreasing: ["losses"] {"collection_names" = "", "tensor_regex" = "", "use_losses_collection" = "True", "num_steps" = "10", "diff_percent" = "0.1", "increase_threshold_percent" = "5", "mode" = "GLOBAL"}
    Overfit: ["losses"] {"tensor_regex" = "", "start_step" = "0", "patience" = "1", "ratio_threshold" = "0.1"}
    Overtraining: ["losses"] {"patience_train" = "5", "patience_validation" = "10", "delta" = "0.01"}
    VanishingGradient: ["gradients"] {"threshold" = "0.0000001"}
    ExplodingTensor: [] {"collection_names" = "", "tensor_regex" = "", "only_nan" = "False"}
    WeightUpdateRatio: ["weights"] {"num_steps" = "", "large_threshold" = "10.0", "small_threshold" = "0.00000001", "epsilon" = "0.000000001"}
    AllZero: [] {"collection_names" = "", "tensor_regex" = "", "threshold" = "100"}
    UnchangedTensor: [] {"collection_names" = "", "tensor_regex" = "", "num_steps" = "3", "rtol" = "1e-05", "atol" = "1e-08", "equal_nan" = "False"}
    TensorVariance: [] {"collection_names" = "", "tensor_regex" = "", "max_threshold" = "", "min_threshold" = ""}
    DeadRelu: ["relu_output"] {"tensor_regex" = ".*relu_output", "threshold_inactivity" = "1.0", "threshold_layer" = "50.0"}
    SaturatedActivation: [] {"collection_names" = "", "tensor_regex" = ".*tanh_input|.*sigmoid_input", "threshold_tanh_min" = "-9.4999", "threshold_tanh_max" = "9.4999", "threshold_sigmoid_min" = "-23", "threshold_sigmoid_max" = "16.99999", "threshold_inactivity" = "1.0", "threshold_layer" = "50.0"}
    PoorWeightInitialization: ["relu_input", "gradients"] {"activation_inputs_regex" = ".*relu_input", "threshold" = "10.0", "distribution_range" = "0.001", "patience" = "5", "steps" = "10"}
    ClassImbalance: ["predictions", "labels"] {"threshold_imbalance" = "10", "threshold_misprediction" = "0.7", "samples" = "500", "argmax" = "False", "labels_regex" = ".*labels", "predictions_regex" = ".*predictions"}
    TreeDepth: ["trees"] {"depth" = "4"}
    FeatureImportanceOverweight: ["feature_importance"] {"threshold" = "0.8", "nfeatures" = "3", "tensor_regex" = ".*feature_importance/weight"}
    StalledTrainingRule: [] {"threshold" = "1800", "stop_training_on_fire" = "False", "training_job_name_prefix" = ""}
}

impl RuleKind {
    pub fn parse(name: &str) -> Option<RuleKind> {
        RuleKind::ALL
            .iter()
            .copied()
            .find(|k| k.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Rules that look at named tensors and need a collection or a regex to know which.
    fn needs_selection(self) -> bool {
        matches!(
            self,
            RuleKind::AllZero | RuleKind::UnchangedTensor | RuleKind::TensorVariance
        )
    }
}

/// A configured rule: its name in the job, what it runs, its parameters (defaults filled).
#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub name: String,
    pub kind: RuleKind,
    pub params: BTreeMap<String, String>,
    /// The StopTraining action (in `action_json`, or StalledTrainingRule's own flag).
    pub stop_training: bool,
}

use super::super::is_true;

impl RuleSpec {
    pub fn parse(config: &DebugRuleConfiguration, field: &str) -> Result<RuleSpec, DebuggerError> {
        let bad = |key: &str, reason: String| DebuggerError::Config {
            field: format!("{field}.{key}"),
            reason,
        };
        if config.rule_configuration_name.trim().is_empty() {
            return Err(bad("RuleConfigurationName", "is empty".into()));
        }
        let invoke = config
            .rule_parameters
            .get("rule_to_invoke")
            .ok_or_else(|| {
                bad(
                    "RuleParameters",
                    "needs rule_to_invoke, the built-in rule to run".into(),
                )
            })?;
        let kind = RuleKind::parse(invoke).ok_or_else(|| {
            bad(
                "RuleParameters.rule_to_invoke",
                format!(
                    "`{invoke}` is not a built-in rule; known: {}",
                    RuleKind::ALL
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        let mut params: BTreeMap<String, String> = kind
            .parameters()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut stop_training = false;
        for (key, value) in &config.rule_parameters {
            match key.as_str() {
                "rule_to_invoke" | "base_trial" => {}
                "action_json" => {
                    let actions: serde_json::Value = serde_json::from_str(value)
                        .map_err(|e| bad("RuleParameters.action_json", format!("not JSON: {e}")))?;
                    let list = match &actions {
                        serde_json::Value::Array(a) => a.clone(),
                        other => vec![other.clone()],
                    };
                    for a in list {
                        match a["name"].as_str().map(str::to_ascii_lowercase).as_deref() {
                            Some("stoptraining") => stop_training = true,
                            Some("email" | "sms") => {}
                            other => {
                                return Err(bad(
                                    "RuleParameters.action_json",
                                    format!(
                                        "unknown action {}; known: stoptraining, email, sms",
                                        other.unwrap_or("without a name")
                                    ),
                                ))
                            }
                        }
                    }
                }
                _ if params.contains_key(key) => {
                    check_value(kind, key, value)
                        .map_err(|r| bad(&format!("RuleParameters.{key}"), r))?;
                    params.insert(key.clone(), value.clone());
                }
                _ => {
                    return Err(bad(
                        &format!("RuleParameters.{key}"),
                        format!(
                            "{} has no parameter `{key}`; it takes {}",
                            kind.name(),
                            kind.parameters()
                                .iter()
                                .map(|(k, _)| *k)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ))
                }
            }
        }
        if kind == RuleKind::StalledTrainingRule && is_true(&params["stop_training_on_fire"]) {
            stop_training = true;
        }
        if kind.needs_selection()
            && params["collection_names"].is_empty()
            && params["tensor_regex"].is_empty()
        {
            return Err(bad(
                "RuleParameters",
                format!("{} needs collection_names or tensor_regex", kind.name()),
            ));
        }
        if kind == RuleKind::TensorVariance
            && params["max_threshold"].is_empty()
            && params["min_threshold"].is_empty()
        {
            return Err(bad(
                "RuleParameters",
                "TensorVariance needs max_threshold or min_threshold".into(),
            ));
        }
        Ok(RuleSpec {
            name: config.rule_configuration_name.clone(),
            kind,
            params,
            stop_training,
        })
    }

    pub(super) fn float(&self, key: &str) -> f64 {
        self.params[key].trim().parse().unwrap_or(f64::NAN)
    }

    pub(super) fn opt_float(&self, key: &str) -> Option<f64> {
        self.params[key].trim().parse().ok()
    }

    pub(super) fn int(&self, key: &str) -> u64 {
        self.params[key]
            .trim()
            .parse::<f64>()
            .map_or(0, |v| v as u64)
    }

    pub(super) fn flag(&self, key: &str) -> bool {
        is_true(&self.params[key])
    }

    pub(super) fn text(&self, key: &str) -> &str {
        self.params.get(key).map_or("", String::as_str)
    }

    pub(super) fn regexes(&self, key: &str) -> Vec<Regex> {
        regex_list(self.text(key))
    }

    pub(super) fn list(&self, key: &str) -> Vec<String> {
        self.text(key)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// smdebug matches with `re.match`: from the start of the name. A list may be
/// comma-separated, unless the commas belong to the expression.
fn regex_list(text: &str) -> Vec<Regex> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    let parts: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let compiled: Option<Vec<Regex>> = parts
        .iter()
        .map(|p| Regex::new(&format!("^(?:{p})")).ok())
        .collect();
    compiled.unwrap_or_else(|| Regex::new(&format!("^(?:{text})")).into_iter().collect())
}

fn check_value(kind: RuleKind, key: &str, value: &str) -> Result<(), String> {
    let v = value.trim();
    let is_number = v.parse::<f64>().is_ok();
    let text_keys = ["collection_names", "training_job_name_prefix"];
    if key.ends_with("regex") {
        if regex_list(v).is_empty() && !v.is_empty() {
            return Err(format!("`{value}` is not a regular expression"));
        }
        return Ok(());
    }
    if text_keys.contains(&key) {
        return Ok(());
    }
    if key == "mode" {
        return match Mode::parse(v) {
            Some(Mode::Train | Mode::Eval | Mode::Global) => Ok(()),
            _ => Err(format!("`{value}` is not EVAL, TRAIN or GLOBAL")),
        };
    }
    let default = kind
        .parameters()
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, d)| *d);
    if matches!(default, "True" | "False") {
        return match v.to_ascii_lowercase().as_str() {
            "true" | "false" | "1" | "0" => Ok(()),
            _ => Err(format!("`{value}` is not True or False")),
        };
    }
    if !is_number {
        return Err(format!("`{value}` is not a number"));
    }
    if key == "diff_percent" || key == "increase_threshold_percent" {
        let f: f64 = v.parse().unwrap_or(-1.0);
        if !(0.0..=100.0).contains(&f) {
            return Err(format!("`{value}` is not a percentage from 0 to 100"));
        }
    }
    Ok(())
}
