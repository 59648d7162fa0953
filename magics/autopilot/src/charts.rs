//! Small SVG bar charts for the exploration notebook: the target's classes or its histogram,
//! and a column's missing share. Plain SVG, so the notebook needs no plotting library to be
//! read, and JupyterLab shows it as a markdown cell's attachment.

/// A horizontal bar chart: one bar a label, the value printed at its end.
pub fn bars(title: &str, bars: &[(String, f64)]) -> String {
    let (width, row, left) = (640.0, 22.0, 170.0);
    let height = 40.0 + row * bars.len() as f64;
    let top = bars
        .iter()
        .map(|b| b.1)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12"><text x="8" y="18" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = 30.0 + row * i as f64;
        let length = (width - left - 80.0) * value / top;
        svg.push_str(&format!(
            r##"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{left}" y="{}" width="{length:.1}" height="{}" fill="#4c78a8"/><text x="{:.1}" y="{}">{}</text>"##,
            left - 6.0,
            y + 14.0,
            escape(&shorten(label, 24)),
            y + 3.0,
            row - 6.0,
            left + length + 4.0,
            y + 14.0,
            number(*value)
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// A histogram of `values` in `bins` equal-width bins, as bars labelled by their ranges.
pub fn histogram(title: &str, values: &[f64], bins: usize) -> String {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    if values.is_empty() || !lo.is_finite() {
        return bars(title, &[]);
    }
    let step = ((hi - lo) / bins as f64).max(f64::MIN_POSITIVE);
    let mut counts = vec![0usize; bins];
    for v in values {
        counts[(((v - lo) / step) as usize).min(bins - 1)] += 1;
    }
    let labelled: Vec<(String, f64)> = counts
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let from = lo + step * i as f64;
            (
                format!("{} – {}", number(from), number(from + step)),
                *n as f64,
            )
        })
        .collect();
    bars(title, &labelled)
}

/// A number as a person reads it: whole numbers plain, others to four significant digits.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 1e-3 && v.abs() < 1e6 {
        let digits = (3 - v.abs().log10().floor() as i32).max(0) as usize;
        format!("{v:.digits$}")
    } else {
        format!("{v:.3e}")
    }
}

fn shorten(text: &str, at: usize) -> String {
    if text.chars().count() <= at {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(at - 1).collect::<String>())
    }
}

/// Text made safe for SVG and HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_a_bar_a_value_and_safe_text() {
        let svg = bars(
            "classes of <y>",
            &[("yes".into(), 30.0), ("a&b".into(), 10.0)],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("classes of &lt;y&gt;") && svg.contains("a&amp;b"));
        let h = histogram("y", &[0.0, 0.5, 1.0, 1.0, 2.0], 4);
        assert_eq!(h.matches("<rect").count(), 4);
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.123456), "0.1235");
        assert_eq!(number(1234.5678), "1235");
        assert_eq!(number(1.5e-7), "1.500e-7");
    }
}
