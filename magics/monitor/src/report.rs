//! The report of a check: a standalone HTML page with a summary, the violations, and per
//! feature the baseline and current distributions overlaid as SVG (histograms rebuilt from the
//! KLL sketches over a common range, bars of category shares) with the drift distance.

use std::fmt::Write;
use std::path::Path;

use rustmaker_magics::table::escape;

use crate::check::{ks_distance, linf_categorical};
use crate::format::{FeatureStatistics, Statistics, Violations};
use crate::sketch::Kll;
use crate::MonitorError;

const BINS: usize = 20;
const WIDTH: f64 = 420.0;
const HEIGHT: f64 = 140.0;
const BASE_COLOR: &str = "#1f77b4";
const CURRENT_COLOR: &str = "#ff7f0e";

fn kll_of(f: &FeatureStatistics) -> Option<Kll> {
    let s = &f.numerical_statistics.as_ref()?.distribution.kll.sketch;
    Some(Kll::from_levels(
        s.parameters.k as usize,
        s.parameters.c,
        s.data.clone(),
    ))
}

fn categories_of(f: &FeatureStatistics) -> Vec<(String, u64)> {
    f.string_statistics
        .as_ref()
        .map(|s| {
            s.distribution
                .categorical
                .buckets
                .iter()
                .map(|b| (b.value.clone(), b.count))
                .collect()
        })
        .unwrap_or_default()
}

/// Bars for two series of shares (0..1) with labels under them.
fn bars_svg(labels: &[String], base: &[f64], current: &[f64]) -> String {
    let n = labels.len().max(1) as f64;
    let top = base
        .iter()
        .chain(current)
        .cloned()
        .fold(0.0, f64::max)
        .max(1e-9);
    let slot = WIDTH / n;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">"#,
        w = WIDTH,
        h = HEIGHT + 34.0
    );
    for (i, label) in labels.iter().enumerate() {
        let x = i as f64 * slot;
        for (j, (value, color)) in [(base[i], BASE_COLOR), (current[i], CURRENT_COLOR)]
            .into_iter()
            .enumerate()
        {
            let h = value / top * HEIGHT;
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}" fill-opacity="0.75"><title>{}: {:.1}%</title></rect>"#,
                x + slot * (0.1 + 0.4 * j as f64),
                HEIGHT - h,
                slot * 0.4,
                h,
                escape(label),
                value * 100.0
            );
        }
        if labels.len() <= 12 || i % (labels.len() / 6).max(1) == 0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle" font-family="sans-serif">{}</text>"#,
                x + slot / 2.0,
                HEIGHT + 12.0,
                escape(&label.chars().take(12).collect::<String>())
            );
        }
    }
    let _ = write!(
        svg,
        r#"<rect x="0" y="{y}" width="10" height="10" fill="{BASE_COLOR}"/><text x="14" y="{t}" font-size="10" font-family="sans-serif">baseline</text><rect x="80" y="{y}" width="10" height="10" fill="{CURRENT_COLOR}"/><text x="94" y="{t}" font-size="10" font-family="sans-serif">current</text></svg>"#,
        y = HEIGHT + 22.0,
        t = HEIGHT + 31.0
    );
    svg
}

fn numeric_plot(base: &Kll, current: &Kll) -> String {
    let lo = base
        .quantile(0.0)
        .into_iter()
        .chain(current.quantile(0.0))
        .fold(f64::INFINITY, f64::min);
    let hi = base
        .quantile(1.0)
        .into_iter()
        .chain(current.quantile(1.0))
        .fold(f64::NEG_INFINITY, f64::max);
    let share = |k: &Kll| -> Vec<f64> {
        let total = k.count().max(1) as f64;
        k.buckets(lo, hi, BINS)
            .iter()
            .map(|b| b.2 / total)
            .collect()
    };
    let width = (hi - lo) / BINS as f64;
    let labels: Vec<String> = (0..BINS)
        .map(|i| format!("{:.3}", lo + width * i as f64))
        .collect();
    bars_svg(&labels, &share(base), &share(current))
}

fn categorical_plot(base: &[(String, u64)], current: &[(String, u64)]) -> String {
    let total = |v: &[(String, u64)]| v.iter().map(|x| x.1).sum::<u64>().max(1) as f64;
    let (tb, tc) = (total(base), total(current));
    let mut labels: Vec<String> = base.iter().map(|x| x.0.clone()).collect();
    for (v, _) in current {
        if !labels.contains(v) {
            labels.push(v.clone());
        }
    }
    labels.truncate(12);
    let share = |v: &[(String, u64)], t: f64| -> Vec<f64> {
        labels
            .iter()
            .map(|l| {
                v.iter()
                    .find(|x| &x.0 == l)
                    .map(|x| x.1 as f64 / t)
                    .unwrap_or(0.0)
            })
            .collect()
    };
    bars_svg(&labels, &share(base, tb), &share(current, tc))
}

/// The HTML page for a check's output directory.
pub fn render(dir: &Path) -> Result<String, MonitorError> {
    let read = |name: &str| -> Result<String, MonitorError> {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| {
            MonitorError::Input(format!(
                "{}: {e}; give the output directory of `%monitor check`",
                path.display()
            ))
        })
    };
    let parse = |name: &str, text: String| -> Result<serde_json::Value, MonitorError> {
        serde_json::from_str(&text).map_err(|e| {
            MonitorError::Input(format!(
                "{} is not valid JSON: {e}",
                dir.join(name).display()
            ))
        })
    };
    let current: Statistics =
        serde_json::from_value(parse("statistics.json", read("statistics.json")?)?).map_err(
            |e| MonitorError::Input(format!("{}: {e}", dir.join("statistics.json").display())),
        )?;
    let baseline: Statistics = serde_json::from_value(parse(
        "baseline_statistics.json",
        read("baseline_statistics.json")?,
    )?)
    .map_err(|e| {
        MonitorError::Input(format!(
            "{}: {e}",
            dir.join("baseline_statistics.json").display()
        ))
    })?;
    let violations: Violations = serde_json::from_value(parse(
        "constraint_violations.json",
        read("constraint_violations.json")?,
    )?)
    .map_err(|e| {
        MonitorError::Input(format!(
            "{}: {e}",
            dir.join("constraint_violations.json").display()
        ))
    })?;

    let mut html =
        String::from("<div class=\"rustmaker-monitor-report\" style=\"font-family:sans-serif\">\n");
    let status = if violations.violations.is_empty() {
        "Completed"
    } else {
        "CompletedWithViolations"
    };
    let _ = write!(
        html,
        "<h2>Data quality report</h2>\n<p><b>{status}</b>: {} violation(s); {} rows checked against a baseline of {} rows; {} features.</p>\n",
        violations.violations.len(),
        current.dataset.item_count,
        baseline.dataset.item_count,
        current.features.len()
    );
    if !violations.violations.is_empty() {
        html.push_str("<h3>Violations</h3>\n<table border=\"1\" style=\"border-collapse:collapse\"><tr><th>feature_name</th><th>constraint_check_type</th><th>description</th></tr>\n");
        for v in &violations.violations {
            let kind = serde_json::to_value(v.constraint_check_type)
                .ok()
                .and_then(|k| k.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&v.feature_name),
                escape(&kind),
                escape(&v.description)
            );
        }
        html.push_str("</table>\n");
    }
    html.push_str("<h3>Features</h3>\n");
    for f in &current.features {
        let flagged: Vec<String> = violations
            .violations
            .iter()
            .filter(|v| v.feature_name == f.name)
            .filter_map(|v| {
                serde_json::to_value(v.constraint_check_type)
                    .ok()
                    .and_then(|k| k.as_str().map(str::to_owned))
            })
            .collect();
        let base = baseline.features.iter().find(|b| b.name == f.name);
        let (plot, distance) = match base {
            Some(b) => match (kll_of(b), kll_of(f)) {
                (Some(bk), Some(ck)) => (numeric_plot(&bk, &ck), Some(ks_distance(&bk, &ck))),
                _ => {
                    let (bc, cc) = (categories_of(b), categories_of(f));
                    if bc.is_empty() && cc.is_empty() {
                        (String::new(), None)
                    } else {
                        (categorical_plot(&bc, &cc), Some(linf_categorical(&bc, &cc)))
                    }
                }
            },
            None => (String::new(), None),
        };
        let _ = writeln!(
            html,
            "<div style=\"display:inline-block;vertical-align:top;margin:8px;padding:6px;border:1px solid #ddd\"><h4 style=\"margin:2px 0\">{}</h4><div>{} · {}{}</div>{}</div>",
            escape(&f.name),
            f.inferred_type.as_str(),
            match distance {
                Some(d) => format!("drift distance {d:.4}"),
                None => "not in the baseline".to_owned(),
            },
            if flagged.is_empty() {
                String::new()
            } else {
                format!(" · <b style=\"color:#c00\">{}</b>", escape(&flagged.join(", ")))
            },
            plot
        );
    }
    html.push_str("</div>\n");
    Ok(html)
}

/// Renders the report and writes it to `dir/report.html` (a whole page).
pub fn write(dir: &Path) -> Result<String, MonitorError> {
    let body = render(dir)?;
    let page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Data quality report</title></head><body>\n{body}</body></html>\n"
    );
    crate::write_atomic(&dir.join("report.html"), page.as_bytes())?;
    Ok(body)
}
