//! HTML and SVG for the notebook: key/value tables, metric curves, and the live job card.

use rustmaker_magics::table::escape;

/// A two-column table.
pub fn pairs(title: &str, rows: &[(String, String)]) -> String {
    let mut html = format!(
        "<table><caption style=\"text-align:left\"><b>{}</b></caption>",
        escape(title)
    );
    for (k, v) in rows {
        html.push_str(&format!(
            "<tr><th style=\"text-align:left\">{}</th><td style=\"text-align:left;white-space:pre-wrap\">{}</td></tr>",
            escape(k),
            escape(v)
        ));
    }
    html.push_str("</table>");
    html
}

/// A table with a header row.
pub fn grid(header: &[String], rows: &[Vec<String>]) -> String {
    let mut html = String::from("<table><thead><tr>");
    for h in header {
        html.push_str(&format!("<th>{}</th>", escape(h)));
    }
    html.push_str("</tr></thead><tbody>");
    for row in rows {
        html.push_str("<tr>");
        for cell in row {
            html.push_str(&format!("<td>{}</td>", escape(cell)));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    html
}

const COLOURS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

/// Line chart of one metric for one or more series (label, points).
pub fn curves(title: &str, series: &[(String, Vec<(u64, f64)>)]) -> String {
    let (w, h, pad) = (360.0, 180.0, 36.0);
    let points: Vec<&(u64, f64)> = series.iter().flat_map(|(_, p)| p.iter()).collect();
    if points.is_empty() {
        return String::new();
    }
    let (mut x0, mut x1) = (f64::MAX, f64::MIN);
    let (mut y0, mut y1) = (f64::MAX, f64::MIN);
    for (x, y) in &points {
        x0 = x0.min(*x as f64);
        x1 = x1.max(*x as f64);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1e-9_f64.max(y0.abs() * 1e-6);
    }
    let sx = |x: f64| pad + (x - x0) / (x1 - x0) * (w - 2.0 * pad);
    let sy = |y: f64| h - pad + -(y - y0) / (y1 - y0) * (h - 2.0 * pad);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"10\">\
         <text x=\"{pad}\" y=\"14\" font-size=\"12\">{}</text>\
         <line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\"/>\
         <line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{b}\" stroke=\"#888\"/>\
         <text x=\"2\" y=\"{b}\">{}</text><text x=\"2\" y=\"{pad}\">{}</text>\
         <text x=\"{pad}\" y=\"{bl}\">{}</text><text x=\"{r}\" y=\"{bl}\" text-anchor=\"end\">{}</text>",
        escape(title),
        short(y0),
        short(y1),
        x0,
        x1,
        b = h - pad,
        r = w - pad,
        bl = h - pad + 14.0,
    );
    for (i, (label, pts)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x as f64), sy(*y)))
            .collect();
        if path.len() == 1 {
            svg.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>",
                sx(pts[0].0 as f64),
                sy(pts[0].1)
            ));
        } else {
            svg.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>",
                path.join(" ")
            ));
        }
        if series.len() > 1 {
            svg.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{}</text>",
                w - pad - 100.0,
                pad + 12.0 * i as f64,
                escape(label)
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}

pub fn short(v: f64) -> String {
    if v == 0.0 || (v.abs() >= 1e-3 && v.abs() < 1e6) {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        format!("{v:.3e}")
    }
}

pub fn timestamp(secs: Option<f64>) -> String {
    secs.and_then(|s| chrono::DateTime::from_timestamp_millis((s * 1000.0) as i64))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}
