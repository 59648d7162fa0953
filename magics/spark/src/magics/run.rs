//! Running one statement in a Livy session from a magic: submit, poll (fast at first, slower
//! as it runs), show live progress in one display, cancel on interrupt, report a dead session.

use rustmaker_magics::long_work;
use std::time::{Duration, Instant};

use rustmaker_magics::{MagicContext, MagicError, MimeBundle};
use serde_json::Value;

use crate::livy::{session_is_finished, statement_is_finished, LivyClient, StatementOutput};

/// A session a magic can run code in.
pub struct Target<'a> {
    pub name: &'a str,
    pub client: &'a LivyClient,
    pub id: u32,
}

/// Why a statement produced no output.
pub enum RunError {
    /// Shown to the user as is.
    Magic(MagicError),
    /// The session is gone; the caller forgets it. The message says why and what to do.
    SessionLost(String),
}

impl From<MagicError> for RunError {
    fn from(e: MagicError) -> Self {
        RunError::Magic(e)
    }
}

/// Polls after 1, 2, 4 … ms, at most every 250 ms: a short statement is seen as soon as it
/// finishes, a long one costs a few requests a second.
fn next_interval(current: Duration) -> Duration {
    (current * 2).min(Duration::from_millis(250))
}

/// Progress is shown only for statements that take longer than this.
const PROGRESS_AFTER: Duration = Duration::from_millis(700);

pub fn run_statement(
    target: &Target<'_>,
    code: &str,
    kind: &str,
    ctx: &mut dyn MagicContext,
) -> Result<StatementOutput, RunError> {
    let client = target.client;
    let submitted = client
        .submit(target.id, code, kind)
        .map_err(|e| lost_or_failed(target, e))?;
    let started = Instant::now();
    let mut interval = Duration::from_millis(1);
    let display_id =
        long_work::unique_display_id("spark-progress", &format!("{}-{}", target.id, submitted.id));
    let mut shown: Option<(String, f64)> = None;
    let mut statement = submitted;
    loop {
        if statement_is_finished(&statement.state) {
            break;
        }
        if ctx.is_interrupted() {
            cancel(target, statement.id, ctx);
            if shown.is_some() {
                ctx.update_display(
                    MimeBundle::text(format!("Statement {} cancelled.", statement.id)),
                    &display_id,
                );
            }
            return Err(rustmaker_magics::long_work::interrupted(
                format!("statement {} was cancelled", statement.id),
                format!("Spark session `{}` keeps its state", target.name),
            )
            .into());
        }
        if long_work::sleep(&*ctx, interval).is_err() {
            continue; // interrupted: the check above cancels the statement
        }
        interval = next_interval(interval);
        statement = match client.statement_until(target.id, statement.id, &|| ctx.is_interrupted())
        {
            Ok(s) => s,
            // Retries were cut short by the interrupt: the check above cancels the statement.
            Err(_) if ctx.is_interrupted() => continue,
            Err(e) => return Err(lost_or_failed(target, e)),
        };
        if started.elapsed() > PROGRESS_AFTER && !statement_is_finished(&statement.state) {
            let key = (
                statement.state.clone(),
                (statement.progress * 100.0).floor(),
            );
            if shown.as_ref() != Some(&key) {
                let bundle =
                    progress_bundle(statement.id, &statement.state, statement.progress, started);
                match shown {
                    None => ctx.display(bundle, Some(&display_id)),
                    Some(_) => ctx.update_display(bundle, &display_id),
                }
                shown = Some(key);
            }
        }
    }
    if shown.is_some() {
        ctx.update_display(
            MimeBundle::text(format!(
                "Statement {} finished in {:.1} s.",
                statement.id,
                started.elapsed().as_secs_f64()
            )),
            &display_id,
        );
    }
    match (statement.state.as_str(), statement.output) {
        ("cancelled", _) => Err(MagicError::Failed(format!(
            "statement {} was cancelled in Spark session `{}`",
            statement.id, target.name
        ))
        .into()),
        (_, Some(output)) => {
            if output.ename.as_deref() == Some("SessionDied") {
                return Err(RunError::SessionLost(session_lost_message(target, None)));
            }
            Ok(output)
        }
        (state, None) => Err(MagicError::Failed(format!(
            "statement {} ended in state `{state}` without output",
            statement.id
        ))
        .into()),
    }
}

fn progress_bundle(id: u32, state: &str, progress: f64, started: Instant) -> MimeBundle {
    let pct = (progress * 100.0).clamp(0.0, 100.0);
    let secs = started.elapsed().as_secs_f64();
    MimeBundle::text(format!("Statement {id}: {state}, {pct:.0}% ({secs:.0} s)")).with(
        "text/html",
        Value::String(format!(
            "<div>Spark statement {id}: {state} ({secs:.0} s)</div>\
             <progress value=\"{pct:.0}\" max=\"100\" style=\"width: 40em\"></progress> {pct:.0}%"
        )),
    )
}

/// Asks Livy to cancel and waits (bounded) for it to take effect.
fn cancel(target: &Target<'_>, statement: u32, ctx: &mut dyn MagicContext) {
    if let Err(e) = target.client.cancel(target.id, statement) {
        ctx.stderr(&format!("could not cancel statement {statement}: {e}\n"));
        return;
    }
    // The cell is already interrupted, so this clean-up wait is bounded, not interruptible.
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        match target.client.statement(target.id, statement) {
            Ok(s) if statement_is_finished(&s.state) => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => return,
        }
    }
    ctx.stderr(&format!(
        "statement {statement} is still being cancelled after 15 s\n"
    ));
}

/// A request failed: if the session is gone, say so with its last log lines.
fn lost_or_failed(target: &Target<'_>, error: crate::livy::LivyError) -> RunError {
    match target.client.session(target.id) {
        Ok(s) if !session_is_finished(&s.state) => {
            RunError::Magic(MagicError::Failed(error.to_string()))
        }
        Ok(s) => RunError::SessionLost(session_lost_message(target, Some(&s.state))),
        Err(e) if e.status() == Some(404) => {
            RunError::SessionLost(session_lost_message(target, Some("deleted")))
        }
        Err(_) => RunError::Magic(MagicError::Failed(error.to_string())),
    }
}

/// What the user reads when a session died: its state, the reason from its log, what to do.
pub fn session_lost_message(target: &Target<'_>, state: Option<&str>) -> String {
    let state = state.map(str::to_owned).unwrap_or_else(|| {
        target
            .client
            .session(target.id)
            .map(|s| s.state)
            .unwrap_or_else(|_| "gone".into())
    });
    let log = target
        .client
        .logs(target.id, u32::MAX, 0)
        .ok()
        .map(|page| page.total)
        .and_then(|total| {
            target
                .client
                .logs(target.id, total.saturating_sub(8), 8)
                .ok()
        })
        .map(|page| page.log.join("\n"))
        .unwrap_or_default();
    let mut msg = format!(
        "Spark session `{}` (Livy session {} at {}) is {state}; its state is lost.",
        target.name,
        target.id,
        target.client.endpoint().url
    );
    if !log.trim().is_empty() {
        msg.push_str(&format!("\nLast lines of its log:\n{log}"));
    }
    msg.push_str(&format!(
        "\nRun the cell again to start a new session{}.",
        if target.name == crate::magics::DEFAULT_SESSION {
            String::new()
        } else {
            format!(" (recreate it with `%spark add -s {} …`)", target.name)
        }
    ));
    msg
}

/// Shows a statement's output: text on stdout, images and rich data as displays, an error as
/// the remote error.
pub fn render_output(
    output: StatementOutput,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    if output.status != "ok" {
        let ename = output.ename.unwrap_or_else(|| "SparkError".into());
        let evalue = output.evalue.unwrap_or_default();
        let mut traceback = output.traceback.unwrap_or_default();
        if traceback.is_empty() {
            traceback.push(format!("{ename}: {evalue}"));
        }
        let traceback = traceback
            .into_iter()
            .map(|l| l.trim_end_matches('\n').to_owned())
            .collect();
        return Err(MagicError::Remote {
            ename,
            evalue,
            traceback,
        });
    }
    let data = output.data.unwrap_or_default();
    let mut rich = MimeBundle::default();
    for (mime, value) in data {
        match mime.as_str() {
            "text/plain" => {
                let text = value.as_str().unwrap_or_default();
                if !text.is_empty() {
                    ctx.stdout(&format!("{text}\n"));
                }
            }
            "application/vnd.livy.table.v1+json" => {
                rich = rich.with("text/html", Value::String(livy_table_html(&value)));
            }
            _ => rich = rich.with(&mime, value),
        }
    }
    if !rich.0.is_empty() {
        if !rich.0.contains_key("text/plain") {
            rich = rich.with("text/plain", Value::String(String::new()));
        }
        ctx.display(rich, None);
    }
    Ok(())
}

fn livy_table_html(table: &Value) -> String {
    let esc = |s: String| rustmaker_magics::table::escape(&s);
    let cell = |v: &Value| {
        esc(v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string()))
    };
    let mut html = String::from("<table><thead><tr>");
    for h in table["headers"].as_array().into_iter().flatten() {
        html.push_str(&format!("<th>{}</th>", cell(&h["name"])));
    }
    html.push_str("</tr></thead><tbody>");
    for row in table["data"].as_array().into_iter().flatten() {
        html.push_str("<tr>");
        for v in row.as_array().into_iter().flatten() {
            html.push_str(&format!("<td>{}</td>", cell(v)));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    html
}
