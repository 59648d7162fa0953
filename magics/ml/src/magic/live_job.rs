//! The live view of a running training job: its status, latest metrics with their curves,
//! and its log lines, coalesced, in one display that is updated in place.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rustmaker_magics::{MagicContext, MimeBundle};
use serde_json::json;

use crate::job::Watcher;
use crate::metrics::lower_is_better;
use crate::render;
use crate::store::Status;

/// One display for a running job, redrawn at most every 0.25 s: status, the latest metrics
/// and a curve of the main one. A script's output streams into the cell as it comes.
pub(super) struct LiveJob<'a> {
    pub(super) ctx: &'a mut dyn MagicContext,
    name: String,
    id: String,
    started: Instant,
    shown: Option<Instant>,
    latest: BTreeMap<String, (u64, f64)>,
    history: BTreeMap<String, Vec<(u64, f64)>>,
    logs: String,
    logs_sent: Instant,
    /// Debugger rules and their statuses, shown beside the metrics.
    rules: Vec<(String, String)>,
}

impl<'a> LiveJob<'a> {
    pub(super) fn new(name: &str, ctx: &'a mut dyn MagicContext) -> LiveJob<'a> {
        LiveJob {
            ctx,
            name: name.to_owned(),
            id: rustmaker_magics::long_work::unique_display_id("train", name),
            started: Instant::now(),
            shown: None,
            latest: BTreeMap::new(),
            history: BTreeMap::new(),
            logs: String::new(),
            logs_sent: Instant::now(),
            rules: Vec::new(),
        }
    }

    fn main_metric(&self) -> Option<&String> {
        let keys: Vec<&String> = self.history.keys().collect();
        ["validation:", "train:", ""].iter().find_map(|p| {
            keys.iter()
                .copied()
                .filter(|k| k.starts_with(p) && self.history[*k].len() > 1)
                .find(|k| lower_is_better(k))
                .or_else(|| {
                    keys.iter()
                        .copied()
                        .find(|k| k.starts_with(p) && self.history[*k].len() > 1)
                })
        })
    }

    fn bundle(&self, status: &str, extra: &[(String, String)]) -> MimeBundle {
        let mut rows = vec![
            ("status".to_owned(), status.to_owned()),
            (
                "elapsed".into(),
                format!("{:.1} s", self.started.elapsed().as_secs_f64()),
            ),
        ];
        rows.extend(extra.iter().cloned());
        for (k, (step, v)) in &self.latest {
            rows.push((k.clone(), format!("{} (step {step})", render::short(*v))));
        }
        rows.extend(self.rules.iter().cloned());
        let text = format!(
            "{}: {}",
            self.name,
            rows.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("  ")
        );
        let mut html = render::pairs(&format!("training job {}", self.name), &rows);
        if let Some(metric) = self.main_metric() {
            html.push_str(&render::curves(
                metric,
                &[(metric.clone(), self.history[metric].clone())],
            ));
        }
        MimeBundle::text(text).with("text/html", json!(html))
    }

    fn redraw(&mut self, force: bool) {
        if !force
            && self
                .shown
                .is_some_and(|t| t.elapsed() < Duration::from_millis(250))
        {
            return;
        }
        self.flush_logs();
        let bundle = self.bundle("InProgress", &[]);
        match self.shown {
            None => self.ctx.display(bundle, Some(&self.id.clone())),
            Some(_) => self.ctx.update_display(bundle, &self.id.clone()),
        }
        self.shown = Some(Instant::now());
    }

    fn flush_logs(&mut self) {
        if !self.logs.is_empty() {
            let text = std::mem::take(&mut self.logs);
            self.ctx.stdout(&text);
        }
        self.logs_sent = Instant::now();
    }

    pub(super) fn finish(&mut self, status: Status, reason: Option<&str>, model: Option<&Path>) {
        self.flush_logs();
        let mut extra = Vec::new();
        if let Some(r) = reason {
            extra.push(("reason".to_owned(), r.to_owned()));
        }
        if let Some(m) = model {
            extra.push(("model".to_owned(), m.display().to_string()));
        }
        let bundle = self.bundle(status.as_str(), &extra);
        match self.shown {
            None => self.ctx.display(bundle, Some(&self.id.clone())),
            Some(_) => self.ctx.update_display(bundle, &self.id.clone()),
        }
    }
}

impl Watcher for LiveJob<'_> {
    fn metrics(&mut self, step: u64, values: &[(String, f64)]) {
        for (k, v) in values {
            self.latest.insert(k.clone(), (step, *v));
            self.history.entry(k.clone()).or_default().push((step, *v));
        }
        self.redraw(false);
    }

    fn log(&mut self, line: &str) {
        self.logs.push_str(line);
        self.logs.push('\n');
        // Coalesce a flood of lines into few stream messages.
        if self.logs_sent.elapsed() > Duration::from_millis(100) || self.logs.len() > 64 * 1024 {
            self.flush_logs();
        }
    }

    fn rules(&mut self, statuses: &[(String, &'static str, Option<String>)]) {
        self.rules = statuses
            .iter()
            .map(|(name, status, details)| {
                let shown = match details {
                    Some(d) => format!("{status}: {d}"),
                    None => status.to_string(),
                };
                (format!("rule {name}"), shown)
            })
            .collect();
        self.redraw(true);
    }

    fn should_stop(&mut self) -> bool {
        if self.shown.is_none() && self.started.elapsed() > Duration::from_millis(300) {
            self.redraw(true);
        }
        if self.logs_sent.elapsed() > Duration::from_millis(100) {
            self.flush_logs();
        }
        self.ctx.is_interrupted()
    }
}
