//! Constraint checks: the current data's profile against a baseline's statistics and
//! constraints, giving Model Monitor's violations.
//!
//! - `missing_column_check` / `extra_column_check`: a baseline feature absent now, a column the
//!   baseline does not know.
//! - `data_type_check`: the share of present values of the baseline's type is below
//!   `datatype_check_threshold` (an Integral also counts as Fractional).
//! - `completeness_check`: the share of present values is below the feature's `completeness`.
//! - `categorical_values_check`: the share of a string feature's values inside its `domains`
//!   is below `domain_content_threshold`.
//! - `baseline_drift_check`: numeric features compare CDFs from the two KLL sketches with the
//!   L-infinity distance (the two-sample Kolmogorov–Smirnov statistic). `Simple` flags a
//!   distance above `comparison_threshold`; `Robust` also requires the distance to exceed the
//!   KS test's critical value at the 5 % level for the two sample sizes, so small samples do
//!   not raise alarms by chance. String features compare category frequencies with the
//!   L-infinity distance against `categorical_comparison_threshold`.

use std::collections::HashMap;

use crate::format::{
    CheckType, ComparisonMethod, Constraints, FeatureConstraints, InferredType, Statistics, Toggle,
    Violation,
};
use crate::profile::{ColumnProfile, Profile};
use crate::sketch::Kll;

/// c(α) of the two-sample KS test at α = 0.05.
const KS_C_ALPHA: f64 = 1.358;

/// A percentage as SageMaker's container (Java) prints doubles: `100.0%`, `99.64592817400101%`.
fn pct(x: f64) -> String {
    format!("{:?}%", x * 100.0)
}

/// The two-sample KS statistic between two sketches: the largest gap between their CDFs.
pub fn ks_distance(a: &Kll, b: &Kll) -> f64 {
    let (wa, wb) = (a.weighted(), b.weighted());
    let (na, nb) = (a.count() as f64, b.count() as f64);
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    let (mut i, mut j) = (0, 0);
    let (mut ca, mut cb) = (0u64, 0u64);
    let mut d: f64 = 0.0;
    while i < wa.len() || j < wb.len() {
        let x = match (wa.get(i), wb.get(j)) {
            (Some(p), Some(q)) => p.0.min(q.0),
            (Some(p), None) => p.0,
            (None, Some(q)) => q.0,
            (None, None) => break,
        };
        while i < wa.len() && wa[i].0 <= x {
            ca += wa[i].1;
            i += 1;
        }
        while j < wb.len() && wb[j].0 <= x {
            cb += wb[j].1;
            j += 1;
        }
        d = d.max((ca as f64 / na - cb as f64 / nb).abs());
    }
    d
}

/// The L-infinity distance between two categorical distributions given as counts.
pub fn linf_categorical(a: &[(String, u64)], b: &[(String, u64)]) -> f64 {
    let ta: u64 = a.iter().map(|x| x.1).sum();
    let tb: u64 = b.iter().map(|x| x.1).sum();
    if ta == 0 || tb == 0 {
        return 0.0;
    }
    let mut p: HashMap<&str, (f64, f64)> = HashMap::new();
    for (v, c) in a {
        p.entry(v).or_default().0 = *c as f64 / ta as f64;
    }
    for (v, c) in b {
        p.entry(v).or_default().1 = *c as f64 / tb as f64;
    }
    p.values().map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

fn evaluated(f: &FeatureConstraints) -> bool {
    let overrides = f.monitoring_config_overrides.as_ref().or(f
        .string_constraints
        .as_ref()
        .and_then(|s| s.monitoring_config_overrides.as_ref()));
    overrides.and_then(|o| o.evaluate_constraints) != Some(Toggle::Disabled)
}

/// Every violation of `constraints` (and drift from `baseline`) by `current`.
pub fn violations(
    baseline: &Statistics,
    constraints: &Constraints,
    current: &Profile,
) -> Vec<Violation> {
    let config = &constraints.monitoring_config;
    if config.evaluate_constraints == Toggle::Disabled {
        return Vec::new();
    }
    let mut out = Vec::new();
    let v = |feature: &str, kind: CheckType, description: String| Violation {
        feature_name: feature.to_owned(),
        constraint_check_type: kind,
        description,
    };
    for f in &constraints.features {
        if !evaluated(f) {
            continue;
        }
        let Some(col) = current.column(&f.name) else {
            out.push(v(
                &f.name,
                CheckType::MissingColumnCheck,
                format!(
                    "There are missing columns in current dataset. Number of columns in current dataset: {}, Number of columns in baseline constraints: {}. Missing column: {}",
                    current.columns.len(),
                    constraints.features.len(),
                    f.name
                ),
            ));
            continue;
        };
        if matches!(
            f.inferred_type,
            InferredType::Integral | InferredType::Fractional
        ) {
            let matched = col.type_match(f.inferred_type);
            if matched < config.datatype_check_threshold {
                out.push(v(
                    &f.name,
                    CheckType::DataTypeCheck,
                    format!(
                        "Data type match requirement is not met. Expected data type: {}, Expected match: {}. Observed: Only {} of data is {}.",
                        f.inferred_type.as_str(),
                        pct(config.datatype_check_threshold),
                        pct(matched),
                        f.inferred_type.as_str()
                    ),
                ));
            }
        }
        if let Some(expected) = f.completeness {
            let observed = if current.rows == 0 {
                0.0
            } else {
                col.present() as f64 / current.rows as f64
            };
            if observed + 1e-12 < expected {
                out.push(v(
                    &f.name,
                    CheckType::CompletenessCheck,
                    format!(
                        "Data completeness requirement is not met. Expected completeness: {}. Observed: Only {} of data is complete.",
                        pct(expected),
                        pct(observed)
                    ),
                ));
            }
        }
        if let Some(domains) = f
            .string_constraints
            .as_ref()
            .map(|s| &s.domains)
            .filter(|d| !d.is_empty())
        {
            let present = col.present();
            let inside = if present == 0 {
                1.0
            } else {
                col.in_domain as f64 / present as f64
            };
            if inside < config.domain_content_threshold {
                let outside: Vec<String> = col
                    .categories()
                    .into_iter()
                    .filter(|(value, _)| !domains.contains(value))
                    .take(5)
                    .map(|(value, _)| value)
                    .collect();
                out.push(v(
                    &f.name,
                    CheckType::CategoricalValuesCheck,
                    format!(
                        "Data domain requirement is not met. Expected: {} of values in the baseline domain. Observed: Only {} of values are in it. Values outside it include: {}.",
                        pct(config.domain_content_threshold),
                        pct(inside),
                        outside.join(", ")
                    ),
                ));
            }
        }
        if let Some(violation) = drift(baseline, constraints, f, col) {
            out.push(violation);
        }
    }
    for col in &current.columns {
        if !constraints.features.iter().any(|f| f.name == col.name) {
            out.push(v(
                &col.name,
                CheckType::ExtraColumnCheck,
                format!(
                    "There are extra columns in current dataset. Number of columns in current dataset: {}, Number of columns in baseline constraints: {}. Extra column: {}",
                    current.columns.len(),
                    constraints.features.len(),
                    col.name
                ),
            ));
        }
    }
    out
}

/// The drift distance of one feature, with the threshold it is compared to, and whether it is
/// a violation; `None` when the feature cannot be compared.
pub fn drift_distance(
    baseline: &Statistics,
    constraints: &Constraints,
    name: &str,
    col: &ColumnProfile,
) -> Option<(f64, f64, bool)> {
    let dc = &constraints.monitoring_config.distribution_constraints;
    let base = baseline.features.iter().find(|b| b.name == name)?;
    if let Some(num) = &base.numerical_statistics {
        // The numbers among the current values, even if some values are not numbers now.
        if col.kll().count() == 0 {
            return None;
        }
        let sketch = &num.distribution.kll.sketch;
        let base_kll = Kll::from_levels(
            sketch.parameters.k as usize,
            sketch.parameters.c,
            sketch.data.clone(),
        );
        let d = ks_distance(&base_kll, col.kll());
        let (n, m) = (base_kll.count() as f64, col.kll().count() as f64);
        let flagged = match dc.comparison_method {
            ComparisonMethod::Simple => d > dc.comparison_threshold,
            ComparisonMethod::Robust => {
                d > dc.comparison_threshold && d > KS_C_ALPHA * ((n + m) / (n * m)).sqrt()
            }
        };
        return Some((d, dc.comparison_threshold, flagged));
    }
    let strings = base.string_statistics.as_ref()?;
    let base_counts: Vec<(String, u64)> = strings
        .distribution
        .categorical
        .buckets
        .iter()
        .map(|b| (b.value.clone(), b.count))
        .collect();
    let threshold = dc
        .categorical_comparison_threshold
        .unwrap_or(dc.comparison_threshold);
    let d = linf_categorical(&base_counts, &col.categories());
    Some((d, threshold, d > threshold))
}

fn drift(
    baseline: &Statistics,
    constraints: &Constraints,
    f: &FeatureConstraints,
    col: &ColumnProfile,
) -> Option<Violation> {
    if constraints
        .monitoring_config
        .distribution_constraints
        .perform_comparison
        == Toggle::Disabled
    {
        return None;
    }
    let (d, threshold, flagged) = drift_distance(baseline, constraints, &f.name, col)?;
    flagged.then(|| Violation {
        feature_name: f.name.clone(),
        constraint_check_type: CheckType::BaselineDriftCheck,
        description: format!("Baseline drift distance: {d:?} exceeds threshold: {threshold:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_of_identical_and_shifted_samples() {
        let (mut a, mut b, mut c) = (Kll::sagemaker(), Kll::sagemaker(), Kll::sagemaker());
        for i in 0..10_000 {
            a.update(i as f64);
            b.update(i as f64);
            c.update(i as f64 + 5000.0);
        }
        assert_eq!(ks_distance(&a, &b), 0.0);
        assert!((ks_distance(&a, &c) - 0.5).abs() < 0.01);
    }

    #[test]
    fn linf_of_categories() {
        let a = vec![("x".to_owned(), 50), ("y".to_owned(), 50)];
        let b = vec![("x".to_owned(), 80), ("y".to_owned(), 20)];
        assert!((linf_categorical(&a, &b) - 0.3).abs() < 1e-12);
    }
}
