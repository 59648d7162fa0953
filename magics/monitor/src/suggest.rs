//! Constraints suggested from a baseline's statistics, as Model Monitor's baselining job
//! suggests them: each feature's type and observed completeness, `is_non_negative` for numbers
//! whose minimum is not negative, and `domains` for string features with at most
//! [`MAX_DOMAIN`] distinct values. The monitoring config takes SageMaker's defaults.

use crate::format::{
    Constraints, FeatureConstraints, MonitoringConfig, NumConstraints, Statistics,
    StringConstraints,
};

/// String features with more distinct values than this get no domain.
pub const MAX_DOMAIN: usize = 20;

pub fn suggest(stats: &Statistics) -> Constraints {
    let features = stats
        .features
        .iter()
        .map(|f| {
            let common = f
                .numerical_statistics
                .as_ref()
                .map(|n| n.common)
                .or_else(|| f.string_statistics.as_ref().map(|s| s.common));
            let completeness = common.map(|c| {
                let total = c.num_present + c.num_missing;
                if total == 0 {
                    0.0
                } else {
                    c.num_present as f64 / total as f64
                }
            });
            let num_constraints = f.numerical_statistics.as_ref().map(|n| NumConstraints {
                is_non_negative: n.min >= 0.0,
            });
            let string_constraints = f
                .string_statistics
                .as_ref()
                .map(|s| &s.distribution.categorical.buckets)
                .filter(|b| !b.is_empty() && b.len() <= MAX_DOMAIN)
                .filter(|_| f.inferred_type == crate::format::InferredType::String)
                .map(|b| StringConstraints {
                    domains: b.iter().map(|x| x.value.clone()).collect(),
                    monitoring_config_overrides: None,
                });
            FeatureConstraints {
                name: f.name.clone(),
                inferred_type: f.inferred_type,
                completeness,
                num_constraints,
                string_constraints,
                monitoring_config_overrides: None,
            }
        })
        .collect();
    Constraints {
        version: 0.0,
        features,
        monitoring_config: MonitoringConfig::default(),
    }
}
