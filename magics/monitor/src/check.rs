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
    CategoricalDriftMethod, CheckType, ComparisonMethod, Constraints, FeatureConstraints,
    InferredType, Statistics, Toggle, Violation,
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
    if dc.categorical_drift_method == Some(CategoricalDriftMethod::ChiSquared) {
        // The "distance" is the test's p-value: small means the distributions differ.
        let p = chi_square_p_value(&base_counts, &col.categories());
        return Some((p, threshold, p < threshold));
    }
    let d = linf_categorical(&base_counts, &col.categories());
    Some((d, threshold, d > threshold))
}

/// The p-value of Pearson's χ² test that two samples of categories come from one distribution
/// (a 2 × K contingency table; categories seen in neither sample are left out).
pub fn chi_square_p_value(a: &[(String, u64)], b: &[(String, u64)]) -> f64 {
    let mut cells: HashMap<&str, (f64, f64)> = HashMap::new();
    for (v, c) in a {
        cells.entry(v).or_default().0 += *c as f64;
    }
    for (v, c) in b {
        cells.entry(v).or_default().1 += *c as f64;
    }
    let (ta, tb): (f64, f64) = cells
        .values()
        .fold((0.0, 0.0), |s, c| (s.0 + c.0, s.1 + c.1));
    let n = ta + tb;
    if ta == 0.0 || tb == 0.0 || cells.len() < 2 {
        return 1.0;
    }
    let stat: f64 = cells
        .values()
        .map(|(x, y)| {
            let total = x + y;
            let (ex, ey) = (total * ta / n, total * tb / n);
            (x - ex).powi(2) / ex + (y - ey).powi(2) / ey
        })
        .sum();
    let df = (cells.len() - 1) as f64;
    upper_gamma_q(df / 2.0, stat / 2.0)
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos (g = 7, n = 9): about 15 significant digits.
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |s, (i, g)| s + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Q(a, x), the regularised upper incomplete gamma function: the χ² survival function is
/// Q(df / 2, stat / 2). A series below a + 1, a continued fraction above (Numerical Recipes).
fn upper_gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (1.0 - sum * front).clamp(0.0, 1.0)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (front * h).clamp(0.0, 1.0)
    }
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
    let chi_square = f.inferred_type == InferredType::String
        && constraints
            .monitoring_config
            .distribution_constraints
            .categorical_drift_method
            == Some(CategoricalDriftMethod::ChiSquared);
    flagged.then(|| Violation {
        feature_name: f.name.clone(),
        constraint_check_type: CheckType::BaselineDriftCheck,
        description: if chi_square {
            format!("Chi-squared test p-value: {d:?} is below threshold: {threshold:?}")
        } else {
            format!("Baseline drift distance: {d:?} exceeds threshold: {threshold:?}")
        },
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
    fn chi_square_p_values() {
        // Q(1, x) = exp(-x); the χ² survival function with 2 degrees of freedom at 5.991 is 0.05.
        assert!((upper_gamma_q(1.0, 2.0) - (-2.0f64).exp()).abs() < 1e-12);
        assert!((upper_gamma_q(1.0, 5.991 / 2.0) - 0.05).abs() < 1e-4);
        // 1 degree of freedom at 3.841 gives 0.05 (the series branch).
        assert!((upper_gamma_q(0.5, 3.841 / 2.0) - 0.05).abs() < 1e-4);
        let same = vec![("x".to_owned(), 500), ("y".to_owned(), 500)];
        assert!((chi_square_p_value(&same, &same) - 1.0).abs() < 1e-12);
        let shifted = vec![("x".to_owned(), 600), ("y".to_owned(), 400)];
        assert!(chi_square_p_value(&same, &shifted) < 1e-5);
    }

    #[test]
    fn linf_of_categories() {
        let a = vec![("x".to_owned(), 50), ("y".to_owned(), 50)];
        let b = vec![("x".to_owned(), 80), ("y".to_owned(), 20)];
        assert!((linf_categorical(&a, &b) - 0.3).abs() < 1e-12);
    }
}
