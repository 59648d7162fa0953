//! SageMaker's `DebugHookConfig` and `DebugRuleConfigurations`, and what a job makes of
//! them: the collections its hook saves and the rules that run beside it. Everything is
//! checked before training starts, each refusal naming its field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::rules::RuleSpec;
use super::trial::{Collection, Mode, SaveConfig};
use super::DebuggerError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CollectionConfiguration {
    pub collection_name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub collection_parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DebugHookConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_path: Option<String>,
    #[serde(
        rename = "S3OutputPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub s3_output_path: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hook_parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collection_configurations: Vec<CollectionConfiguration>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DebugRuleConfiguration {
    pub rule_configuration_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_path: Option<String>,
    #[serde(
        rename = "S3OutputPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub s3_output_path: Option<String>,
    /// SageMaker's rule container; any value is accepted, the rule runs here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_evaluator_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    #[serde(
        rename = "VolumeSizeInGB",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub volume_size_in_gb: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rule_parameters: BTreeMap<String, String>,
}

/// smdebug's save interval for XGBoost's hook, the learners most like ours (smdebug's
/// framework hooks save every 500 steps, which a 100-round job would never reach).
pub const DEFAULT_SAVE_INTERVAL: u64 = 10;

const SAVE_KEYS: [&str; 4] = ["save_interval", "save_steps", "start_step", "end_step"];
const REDUCTION_KEYS: [&str; 3] = ["reductions", "save_raw_tensor", "save_shape"];
/// smdebug's reductions and norms (`ReductionConfig`), each also as `abs_…`.
const REDUCTIONS: [&str; 9] = [
    "min", "max", "mean", "std", "variance", "sum", "prod", "l1_norm", "l2_norm",
];
const HOOK_KEYS: [&str; 6] = [
    "include_regex",
    "save_all",
    "include_workers",
    "export_tensorboard",
    "tensorboard_dir",
    "dry_run",
];

/// What a job's debugger does, resolved from its configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the tensors go on this machine (the job's `debug-output/` unless `LocalPath`).
    pub dir: PathBuf,
    /// Where they are copied when the job ends, when `S3OutputPath` is an s3:// URI.
    pub s3_output: Option<String>,
    pub collections: BTreeMap<String, Collection>,
    pub rules: Vec<RuleSpec>,
    /// The hook's own parameters as given (what a script's smdebug hook reads).
    pub hook_parameters: BTreeMap<String, String>,
    /// `export_tensorboard`: where the scalars go for TensorBoard (`tensorboard_dir`, or
    /// the job's `tensorboard/`).
    pub tensorboard_dir: Option<PathBuf>,
}

fn save_configs(
    params: &BTreeMap<String, String>,
    base: &BTreeMap<Mode, SaveConfig>,
    field: &str,
) -> Result<BTreeMap<Mode, SaveConfig>, DebuggerError> {
    let mut out = base.clone();
    let number = |key: &str, v: &str| {
        v.trim().parse::<u64>().map_err(|_| DebuggerError::Config {
            field: format!("{field}.{key}"),
            reason: format!("`{v}` is not a whole number of steps"),
        })
    };
    for (key, value) in params {
        let (modes, name): (Vec<Mode>, &str) = match key.split_once('.') {
            Some((mode, name)) => {
                let mode = Mode::parse(mode).ok_or_else(|| DebuggerError::Config {
                    field: format!("{field}.{key}"),
                    reason: "the prefix must be train., eval., predict. or global.".into(),
                })?;
                (vec![mode], name)
            }
            None => (Mode::ALL.to_vec(), key.as_str()),
        };
        if !SAVE_KEYS.contains(&name) {
            continue;
        }
        for mode in modes {
            let c = out.entry(mode).or_default();
            match name {
                "save_interval" => {
                    c.save_interval = number(key, value)?;
                    if c.save_interval == 0 {
                        return Err(DebuggerError::Config {
                            field: format!("{field}.{key}"),
                            reason: "must be at least 1".into(),
                        });
                    }
                }
                "save_steps" => {
                    c.save_steps = value
                        .split(',')
                        .filter(|s| !s.trim().is_empty())
                        .map(|s| number(key, s))
                        .collect::<Result<_, _>>()?
                }
                "start_step" => c.start_step = number(key, value)?,
                _ => c.end_step = Some(number(key, value)?),
            }
        }
    }
    Ok(out)
}

fn check_keys(
    params: &BTreeMap<String, String>,
    field: &str,
    extra: &[&str],
) -> Result<(), DebuggerError> {
    for key in params.keys() {
        let name = key.split_once('.').map_or(key.as_str(), |(_, n)| n);
        if SAVE_KEYS.contains(&name)
            || extra.contains(&key.as_str())
            || REDUCTION_KEYS.contains(&key.as_str())
        {
            continue;
        }
        return Err(DebuggerError::Config {
            field: format!("{field}.{key}"),
            reason: format!(
                "unknown parameter; known: {}",
                SAVE_KEYS
                    .iter()
                    .chain(extra.iter())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    Ok(())
}

/// A `reductions` list checked as smdebug's `ReductionConfig.from_dict` reads it, and
/// `save_raw_tensor`; `None` when the parameters name no reductions.
fn reductions_of(
    params: &BTreeMap<String, String>,
    field: &str,
) -> Result<Option<(Vec<String>, bool)>, DebuggerError> {
    let Some(list) = params.get("reductions") else {
        return Ok(None);
    };
    let reductions = split_list(list);
    for r in &reductions {
        if !REDUCTIONS.contains(&r.strip_prefix("abs_").unwrap_or(r)) {
            return Err(DebuggerError::Config {
                field: format!("{field}.reductions"),
                reason: format!(
                    "`{r}` is not one of smdebug's reductions: {} (each also as abs_…)",
                    REDUCTIONS.join(", ")
                ),
            });
        }
    }
    let raw = params
        .get("save_raw_tensor")
        .is_some_and(|v| super::is_true(v));
    Ok(Some((reductions, raw)))
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Resolves a job's debugger configuration. `emits` is the collections the job's learner
/// fills (`None` for a script, whose program may save anything); `job_dir` is where the
/// default output goes. `None` when neither a hook nor a rule is configured.
pub fn resolve(
    hook: Option<&DebugHookConfig>,
    rules: &[DebugRuleConfiguration],
    job_dir: &Path,
    emits: Option<&[&str]>,
) -> Result<Option<Settings>, DebuggerError> {
    if hook.is_none() && rules.is_empty() {
        return Ok(None);
    }
    let empty = DebugHookConfig::default();
    let hook = hook.unwrap_or(&empty);
    check_keys(
        &hook.hook_parameters,
        "DebugHookConfig.HookParameters",
        &HOOK_KEYS,
    )?;
    let default_save: BTreeMap<Mode, SaveConfig> = Mode::ALL
        .into_iter()
        .map(|m| {
            (
                m,
                SaveConfig {
                    save_interval: DEFAULT_SAVE_INTERVAL,
                    ..SaveConfig::default()
                },
            )
        })
        .collect();
    let base = save_configs(
        &hook.hook_parameters,
        &default_save,
        "DebugHookConfig.HookParameters",
    )?;
    let (dir, s3_output) = match (&hook.local_path, &hook.s3_output_path) {
        (Some(local), s3) => (
            PathBuf::from(local),
            s3.clone().filter(|s| s.starts_with("s3://")),
        ),
        (None, Some(out)) if out.starts_with("s3://") => {
            (job_dir.join("debug-output"), Some(out.clone()))
        }
        (None, Some(out)) => (PathBuf::from(out), None),
        (None, None) => (job_dir.join("debug-output"), None),
    };
    let known = |name: &str, field: String| -> Result<(), DebuggerError> {
        match emits {
            Some(list) if !list.contains(&name) => Err(DebuggerError::Config {
                field,
                reason: format!(
                    "this job saves no collection `{name}`; it saves {}",
                    list.join(", ")
                ),
            }),
            _ => Ok(()),
        }
    };
    let mut collections: BTreeMap<String, Collection> = BTreeMap::new();
    let hook_reductions = reductions_of(&hook.hook_parameters, "DebugHookConfig.HookParameters")?;
    let make = |params: &BTreeMap<String, String>, field: &str| {
        let save = save_configs(params, &base, field)?;
        // A collection's own reductions, else the hook's, as smdebug's defaults go.
        let (reductions, save_raw_tensor) = reductions_of(params, field)?
            .or_else(|| hook_reductions.clone())
            .unwrap_or((Vec::new(), true));
        let include_regex = params
            .get("include_regex")
            .map(|r| split_list(r))
            .unwrap_or_default();
        for r in &include_regex {
            regex::Regex::new(r).map_err(|e| DebuggerError::Config {
                field: format!("{field}.include_regex"),
                reason: format!("`{r}` is not a regular expression: {e}"),
            })?;
        }
        Ok::<Collection, DebuggerError>(Collection {
            include_regex,
            save,
            reductions,
            save_raw_tensor,
            ..Collection::default()
        })
    };
    for (i, c) in hook.collection_configurations.iter().enumerate() {
        let field = format!("DebugHookConfig.CollectionConfigurations[{i}]");
        if c.collection_name.trim().is_empty() {
            return Err(DebuggerError::Config {
                field: format!("{field}.CollectionName"),
                reason: "is empty".into(),
            });
        }
        known(&c.collection_name, format!("{field}.CollectionName"))?;
        let params_field = format!("{field}.CollectionParameters");
        check_keys(
            &c.collection_parameters,
            &params_field,
            &["include_regex", "save_histogram"],
        )?;
        collections.insert(
            c.collection_name.clone(),
            make(&c.collection_parameters, &params_field)?,
        );
    }
    let mut specs = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let field = format!("DebugRuleConfigurations[{i}]");
        let spec = RuleSpec::parse(r, &field)?;
        // A rule's collections are saved even when the hook does not name them, as the
        // SageMaker SDK adds a rule's `collections_to_save` to the hook.
        for name in spec.kind.collections() {
            if !collections.contains_key(*name) {
                known(name, format!("{field}.RuleParameters.rule_to_invoke")).map_err(
                    |e| match e {
                        DebuggerError::Config { field, reason } => DebuggerError::Config {
                            field,
                            reason: format!(
                                "{} reads the collection `{name}`, but {}",
                                spec.kind.name(),
                                reason.trim_start_matches("this job ")
                            ),
                        },
                        other => other,
                    },
                )?;
                collections.insert(name.to_string(), make(&BTreeMap::new(), &field)?);
            }
        }
        specs.push(spec);
    }
    if collections.is_empty() {
        // A hook with nothing named saves what smdebug's XGBoost hook saves by default.
        for name in ["losses", "metrics", "hyperparameters"] {
            if emits.is_none_or(|l| l.contains(&name)) {
                collections.insert(name.to_owned(), make(&BTreeMap::new(), "DebugHookConfig")?);
            }
        }
    }
    if !collections.contains_key("hyperparameters")
        && emits.is_none_or(|l| l.contains(&"hyperparameters"))
    {
        let mut only_first = BTreeMap::new();
        only_first.insert("save_steps".to_owned(), "0".to_owned());
        collections.insert(
            "hyperparameters".to_owned(),
            make(&only_first, "DebugHookConfig")?,
        );
    }
    let export = hook
        .hook_parameters
        .get("export_tensorboard")
        .is_some_and(|v| super::is_true(v));
    let tensorboard_dir = export.then(|| {
        hook.hook_parameters
            .get("tensorboard_dir")
            .map(PathBuf::from)
            .unwrap_or_else(|| job_dir.join("tensorboard"))
    });
    Ok(Some(Settings {
        tensorboard_dir,
        dir,
        s3_output,
        collections,
        rules: specs,
        hook_parameters: hook.hook_parameters.clone(),
    }))
}

/// `%train`'s short form of a hook: `--save-interval N`, `--collections a,b`.
pub fn hook_from_flags(save_interval: Option<u64>, collections: &[String]) -> DebugHookConfig {
    DebugHookConfig {
        hook_parameters: save_interval
            .map(|n| BTreeMap::from([("save_interval".to_owned(), n.to_string())]))
            .unwrap_or_default(),
        collection_configurations: collections
            .iter()
            .map(|c| CollectionConfiguration {
                collection_name: c.trim().to_owned(),
                collection_parameters: BTreeMap::new(),
            })
            .collect(),
        ..DebugHookConfig::default()
    }
}

/// `%train`'s short form of a rule: `NAME`, `NAME(key=value,…)`, either with `:stop` for
/// the StopTraining action, as the SageMaker SDK writes it into `action_json`.
pub fn rule_from_flag(text: &str, job: &str) -> Result<DebugRuleConfiguration, DebuggerError> {
    let bad = |reason: String| DebuggerError::Config {
        field: format!("--rule {text}"),
        reason,
    };
    let (body, stop) = match text.trim().strip_suffix(":stop") {
        Some(b) => (b, true),
        None => (text.trim(), false),
    };
    let (name, params) = match body.split_once('(') {
        Some((name, rest)) => {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| bad("the parameters must end with `)`".into()))?;
            let mut params = BTreeMap::new();
            for pair in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| bad(format!("`{pair}` is not key=value")))?;
                params.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            (name.trim(), params)
        }
        None => (body, BTreeMap::new()),
    };
    if name.is_empty() {
        return Err(bad("name a built-in rule, e.g. LossNotDecreasing".into()));
    }
    let mut rule_parameters = params;
    rule_parameters.insert("rule_to_invoke".into(), name.to_owned());
    if stop {
        rule_parameters.insert(
            "action_json".into(),
            serde_json::json!([{"name": "stoptraining", "training_job_prefix": job}]).to_string(),
        );
    }
    Ok(DebugRuleConfiguration {
        rule_configuration_name: name.to_owned(),
        rule_parameters,
        ..DebugRuleConfiguration::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(params: &[(&str, &str)], collections: &[(&str, &[(&str, &str)])]) -> DebugHookConfig {
        let map = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        DebugHookConfig {
            hook_parameters: map(params),
            collection_configurations: collections
                .iter()
                .map(|(n, p)| CollectionConfiguration {
                    collection_name: n.to_string(),
                    collection_parameters: map(p),
                })
                .collect(),
            ..DebugHookConfig::default()
        }
    }

    #[test]
    fn hook_and_collection_parameters_resolve_per_mode() {
        let dir = Path::new("/job");
        let h = hook(
            &[("save_interval", "5")],
            &[
                ("losses", &[("eval.save_interval", "1")]),
                ("weights", &[("save_steps", "0,3")]),
            ],
        );
        let s = resolve(Some(&h), &[], dir, None).unwrap().unwrap();
        assert_eq!(s.dir, dir.join("debug-output"));
        let losses = &s.collections["losses"].save;
        assert_eq!(losses[&Mode::Train].save_interval, 5);
        assert_eq!(losses[&Mode::Eval].save_interval, 1);
        assert_eq!(
            s.collections["weights"].save[&Mode::Train].save_steps,
            vec![0, 3]
        );
        // The hook's reductions are every collection's default; the whole tensor goes.
        let h = hook(
            &[("reductions", "abs_l2_norm")],
            &[
                ("weights", &[]),
                (
                    "biases",
                    &[("reductions", "max"), ("save_raw_tensor", "true")],
                ),
            ],
        );
        let s2 = resolve(Some(&h), &[], dir, None).unwrap().unwrap();
        assert_eq!(s2.collections["weights"].reductions, vec!["abs_l2_norm"]);
        assert!(!s2.collections["weights"].save_raw_tensor);
        assert_eq!(s2.collections["biases"].reductions, vec!["max"]);
        assert!(s2.collections["biases"].save_raw_tensor);
        // hyperparameters are added, saved at the first step only.
        assert!(s.collections["hyperparameters"].save[&Mode::Train].saves(0));
        assert!(!s.collections["hyperparameters"].save[&Mode::Train].saves(5));
    }

    #[test]
    fn misconfigurations_name_their_field() {
        let dir = Path::new("/job");
        let err = |h: DebugHookConfig, emits: Option<&[&str]>| {
            resolve(Some(&h), &[], dir, emits).unwrap_err().to_string()
        };
        let e = err(hook(&[("save_intervall", "5")], &[]), None);
        assert!(
            e.contains("HookParameters.save_intervall") && e.contains("unknown"),
            "{e}"
        );
        let e = err(hook(&[("save_interval", "often")], &[]), None);
        assert!(e.contains("not a whole number"), "{e}");
        let e = err(hook(&[("save_interval", "0")], &[]), None);
        assert!(e.contains("at least 1"), "{e}");
        let e = err(hook(&[("reductions", "mean,median")], &[]), None);
        assert!(
            e.contains("HookParameters.reductions") && e.contains("`median`"),
            "{e}"
        );
        let e = err(hook(&[("weekly.save_interval", "2")], &[]), None);
        assert!(e.contains("train., eval."), "{e}");
        let e = err(
            hook(&[], &[("gradients", &[])]),
            Some(&["losses", "metrics"]),
        );
        assert!(
            e.contains("CollectionConfigurations[0].CollectionName")
                && e.contains("saves losses, metrics"),
            "{e}"
        );
        let e = err(hook(&[], &[("weights", &[("include_regex", "w(")])]), None);
        assert!(
            e.contains("include_regex") && e.contains("not a regular expression"),
            "{e}"
        );
    }

    #[test]
    fn short_forms_are_sagemakers_fields() {
        let r = rule_from_flag("Overfit(patience=3, ratio_threshold=0.2):stop", "job-1").unwrap();
        assert_eq!(r.rule_configuration_name, "Overfit");
        assert_eq!(r.rule_parameters["rule_to_invoke"], "Overfit");
        assert_eq!(r.rule_parameters["patience"], "3");
        assert!(r.rule_parameters["action_json"].contains("\"stoptraining\""));
        let spec = RuleSpec::parse(&r, "rule").unwrap();
        assert!(spec.stop_training);
        assert!(rule_from_flag("Overfit(patience=3", "j")
            .unwrap_err()
            .to_string()
            .contains("end with `)`"));
        assert!(rule_from_flag("Overfit(patience)", "j")
            .unwrap_err()
            .to_string()
            .contains("key=value"));
        let h = hook_from_flags(Some(2), &["losses".into()]);
        assert_eq!(h.hook_parameters["save_interval"], "2");
        assert_eq!(h.collection_configurations[0].collection_name, "losses");
    }

    #[test]
    fn rules_are_checked_and_add_their_collections() {
        let dir = Path::new("/job");
        let rule = |text: &str| rule_from_flag(text, "j").unwrap();
        let s = resolve(
            None,
            &[rule("VanishingGradient")],
            dir,
            Some(&["losses", "gradients", "hyperparameters"]),
        )
        .unwrap()
        .unwrap();
        assert!(s.collections.contains_key("gradients"));
        let err = |rules: &[DebugRuleConfiguration], emits: Option<&[&str]>| {
            resolve(None, rules, dir, emits).unwrap_err().to_string()
        };
        let e = err(&[rule("LossNotDecreasin")], None);
        assert!(
            e.contains("rule_to_invoke") && e.contains("LossNotDecreasing"),
            "{e}"
        );
        let e = err(&[rule("Overfit(patiense=2)")], None);
        assert!(
            e.contains("RuleParameters.patiense") && e.contains("patience"),
            "{e}"
        );
        let e = err(&[rule("Overfit(patience=soon)")], None);
        assert!(e.contains("not a number"), "{e}");
        let e = err(&[rule("LossNotDecreasing(mode=PREDICT)")], None);
        assert!(e.contains("EVAL, TRAIN or GLOBAL"), "{e}");
        let e = err(&[rule("AllZero")], None);
        assert!(e.contains("collection_names or tensor_regex"), "{e}");
        let e = err(&[rule("DeadRelu")], Some(&["losses", "metrics"]));
        assert!(
            e.contains("DeadRelu reads the collection `relu_output`"),
            "{e}"
        );
        let mut bad_action = rule("Overfit");
        bad_action
            .rule_parameters
            .insert("action_json".into(), "[{\"name\": \"page\"}]".into());
        let e = err(&[bad_action], None);
        assert!(e.contains("unknown action page"), "{e}");
    }

    #[test]
    fn a_local_path_or_s3_output_path_says_where() {
        let dir = Path::new("/job");
        let mut h = hook(&[], &[]);
        h.s3_output_path = Some("s3://bucket/debug".into());
        let s = resolve(Some(&h), &[], dir, None).unwrap().unwrap();
        assert_eq!(
            (s.dir.clone(), s.s3_output.as_deref()),
            (dir.join("debug-output"), Some("s3://bucket/debug"))
        );
        h.local_path = Some("/tmp/tensors".into());
        let s = resolve(Some(&h), &[], dir, None).unwrap().unwrap();
        assert_eq!(s.dir, PathBuf::from("/tmp/tensors"));
        assert!(resolve(None, &[], dir, None).unwrap().is_none());
    }
}
