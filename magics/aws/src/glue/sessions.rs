//! The Glue interactive session: its settings (the magics of AWS Glue's own Jupyter kernel,
//! `%iam_role`, `%worker_type`, … and `%%configure`), its life (started by the first `%%glue`
//! cell, `%status`, `%stop_session`, `%delete_session`, deleted when the kernel exits), and
//! statements run in it (RunStatement, then GetStatement until the statement ends, with live
//! progress; an interrupt is CancelStatement).

mod magics;
mod settings;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_glue::types::{
    ConnectionsList, SessionCommand, SessionStatus, StatementState, WorkerType,
};
use polars::prelude::*;
use rustmaker_magics::long_work;
use rustmaker_magics::{Magic, MagicCall, MagicContext, MagicError, MagicForm, MimeBundle};
use serde_json::Value;

use super::{check_glue_version, check_worker_type, check_workers, client};
use crate::client::{aws_error, failed, has_code, Aws};
use crate::show_frame;

pub use magics::{ConfigureMagic, Control, ControlMagic, OptionMagic};
pub use settings::{is_configure_key, SessionConfig, OPTIONS};

/// How long a new session may take to become READY before the cell gives up waiting.
const PROVISIONING_LIMIT: Duration = Duration::from_secs(600);
/// How long a cancelled statement may take to report CANCELLED.
const CANCEL_LIMIT: Duration = Duration::from_secs(30);
/// Progress is shown for statements that run longer than this.
const PROGRESS_AFTER: Duration = Duration::from_millis(700);

#[derive(Debug, Clone)]
struct Current {
    id: String,
    region: Option<String>,
}

/// The kernel's Glue session: the settings for the next one and the one in use.
#[derive(Default)]
pub struct Session {
    inner: Mutex<(SessionConfig, Option<Current>)>,
}

fn new_session_id(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    format!("{prefix}-{:016x}", h.finish())
}

impl Session {
    fn lock(&self) -> std::sync::MutexGuard<'_, (SessionConfig, Option<Current>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn region(&self) -> Option<String> {
        self.lock().0.region.clone()
    }

    pub fn config(&self) -> SessionConfig {
        self.lock().0.clone()
    }

    fn current(&self) -> Option<Current> {
        self.lock().1.clone()
    }

    fn forget(&self, id: &str) {
        let mut inner = self.lock();
        if inner.1.as_ref().is_some_and(|c| c.id == id) {
            inner.1 = None;
        }
    }

    /// Applies settings; all of them or none (the first bad one is reported).
    pub fn set_all(
        &self,
        pairs: &[(String, String)],
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let mut inner = self.lock();
        let mut config = inner.0.clone();
        for (k, v) in pairs {
            config.set(k, v)?;
        }
        let changed = config != inner.0;
        inner.0 = config;
        if let (true, Some(current)) = (changed, &inner.1) {
            ctx.stdout(&format!(
                "The new settings apply to the next session; session {} keeps its own. \
                 `%stop_session` ends it.\n",
                current.id
            ));
        }
        Ok(())
    }

    /// `%%configure` with Glue's keys: a JSON object of settings.
    pub fn configure(&self, body: &str, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let value: Value = serde_json::from_str(body).map_err(|e| {
            MagicError::usage("configure", format!("the cell is not valid JSON: {e}"))
        })?;
        let Value::Object(map) = value else {
            return Err(MagicError::usage(
                "configure",
                "the cell must be a JSON object, like {\"worker_type\": \"G.2X\"}",
            ));
        };
        let pairs = map
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    Value::Array(items) => items
                        .iter()
                        .map(|i| {
                            i.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| i.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => {
                        return Err(failed(format!(
                            "{k}: {other} is not a value a Glue setting takes"
                        )))
                    }
                };
                Ok((k, text))
            })
            .collect::<Result<Vec<_>, MagicError>>()?;
        self.set_all(&pairs, ctx)?;
        self.show_status(None, ctx)
    }

    /// A table of the session (when there is one) and the settings.
    fn show_status(
        &self,
        aws: Option<&Mutex<Aws>>,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let (config, current) = {
            let inner = self.lock();
            (inner.0.clone(), inner.1.clone())
        };
        let mut rows: Vec<(String, String)> = Vec::new();
        match (&current, aws) {
            (Some(c), Some(aws)) => {
                let mut aws = aws.lock().unwrap_or_else(|p| p.into_inner());
                let glue = client(&mut aws, c.region.as_deref())?;
                let got = aws.run(ctx, glue.get_session().id(&c.id).send())?;
                rows.push(("session_id".into(), c.id.clone()));
                match got {
                    Ok(out) => {
                        let s = out.session();
                        let status = s
                            .and_then(|s| s.status())
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default();
                        rows.push(("status".into(), status));
                        rows.push((
                            "created".into(),
                            s.and_then(|s| s.created_on())
                                .map(|t| t.to_string())
                                .unwrap_or_default(),
                        ));
                        if let Some(role) = s.and_then(|s| s.role()) {
                            rows.push(("role".into(), role.to_owned()));
                        }
                    }
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_entity_not_found_exception()) =>
                    {
                        rows.push(("status".into(), "gone (deleted or expired)".into()));
                    }
                    Err(e) => return Err(aws_error(&aws, &format!("reading session {}", c.id), e)),
                }
            }
            (Some(c), None) => rows.push(("session_id".into(), c.id.clone())),
            (None, _) => rows.push((
                "session_id".into(),
                "(none: the next %%glue cell starts one)".into(),
            )),
        }
        for (key, _) in OPTIONS {
            rows.push((key.into(), config.get(key)));
        }
        for (k, v) in &config.job_args {
            rows.push((k.clone(), v.clone()));
        }
        let (k, v): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
        show_frame(
            df!("setting" => k, "value" => v).map_err(failed)?,
            None,
            ctx,
        )
    }

    /// The session in use, started (and waited for) if there is none.
    fn ensure(
        &self,
        aws: &Aws,
        glue: &aws_sdk_glue::Client,
        ctx: &mut dyn MagicContext,
    ) -> Result<String, MagicError> {
        let (config, current) = {
            let inner = self.lock();
            (inner.0.clone(), inner.1.clone())
        };
        let id = match current {
            Some(c) => c.id,
            None => {
                let role = config.iam_role.clone().ok_or_else(|| {
                    failed(
                        "no IAM role for the Glue session: run `%iam_role arn:aws:iam::ACCOUNT:role/NAME` \
                         (or give iam_role in %%configure)",
                    )
                })?;
                let id = new_session_id(&config.session_id_prefix);
                let create = glue
                    .create_session()
                    .id(&id)
                    .role(role)
                    .command(
                        SessionCommand::builder()
                            .name("glueetl")
                            .python_version("3")
                            .build(),
                    )
                    .glue_version(&config.glue_version)
                    .worker_type(WorkerType::from(config.worker_type.as_str()))
                    .number_of_workers(config.number_of_workers)
                    .idle_timeout(config.idle_timeout)
                    .set_default_arguments(Some(config.default_arguments()))
                    .set_connections((!config.connections.is_empty()).then(|| {
                        ConnectionsList::builder()
                            .set_connections(Some(config.connections.clone()))
                            .build()
                    }))
                    .request_origin("rustmaker")
                    .send();
                aws.run(ctx, create)?
                    .map_err(|e| aws_error(aws, "creating a Glue interactive session", e))?;
                self.lock().1 = Some(Current {
                    id: id.clone(),
                    region: config.region.clone(),
                });
                ctx.stdout(&format!(
                    "Started Glue session {id} (Glue {}, {} × {}, idle timeout {} min).\n",
                    config.glue_version,
                    config.number_of_workers,
                    config.worker_type,
                    config.idle_timeout
                ));
                id
            }
        };
        self.wait_ready(aws, glue, &id, ctx)?;
        Ok(id)
    }

    fn wait_ready(
        &self,
        aws: &Aws,
        glue: &aws_sdk_glue::Client,
        id: &str,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let started = Instant::now();
        let display_id = format!("glue-session-{id}");
        let mut shown = false;
        let mut pause = Duration::from_millis(200);
        loop {
            let out = aws
                .run(ctx, glue.get_session().id(id).send())
                .map_err(|e| self.provisioning_interrupted(e, id))?;
            let out = match out {
                Ok(out) => out,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_entity_not_found_exception()) =>
                {
                    self.forget(id);
                    return Err(failed(format!(
                        "Glue session {id} no longer exists; run the cell again to start a new session"
                    )));
                }
                Err(e) => return Err(aws_error(aws, &format!("reading Glue session {id}"), e)),
            };
            let session = out.session();
            let status = session.and_then(|s| s.status()).cloned();
            match status {
                Some(SessionStatus::Ready) => {
                    if shown {
                        ctx.update_display(
                            MimeBundle::text(format!("Glue session {id}: READY")),
                            &display_id,
                        );
                    }
                    return Ok(());
                }
                Some(SessionStatus::Provisioning) | None => {}
                Some(other) => {
                    self.forget(id);
                    let reason = session
                        .and_then(|s| s.error_message())
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default();
                    return Err(failed(format!(
                        "Glue session {id} is {}{reason}; run the cell again to start a new session",
                        other.as_str()
                    )));
                }
            }
            let text = format!(
                "Glue session {id}: PROVISIONING ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
            if shown {
                ctx.update_display(MimeBundle::text(text), &display_id);
            } else {
                ctx.display(MimeBundle::text(text), Some(&display_id));
                shown = true;
            }
            if started.elapsed() > PROVISIONING_LIMIT {
                return Err(failed(format!(
                    "Glue session {id} is still provisioning after {} s; run the cell again to keep \
                     waiting, or `%delete_session`",
                    PROVISIONING_LIMIT.as_secs()
                )));
            }
            long_work::sleep(ctx, pause).map_err(|e| self.provisioning_interrupted(e, id))?;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    fn provisioning_interrupted(&self, e: MagicError, id: &str) -> MagicError {
        long_work::on_interrupt(
            e,
            format!("stopped waiting for Glue session {id} to start"),
            "the session is kept: the next %%glue cell waits for it, `%delete_session` ends it",
        )
    }

    /// `%%glue`: runs the cell as a statement and shows its output.
    pub fn run_statement(
        &self,
        aws: &Mutex<Aws>,
        code: &str,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        if code.trim().is_empty() {
            return Err(MagicError::usage(
                "glue",
                "the cell is empty: write the code to run below `%%glue`",
            ));
        }
        let region = self
            .current()
            .map(|c| c.region)
            .unwrap_or_else(|| self.region());
        let mut aws = aws.lock().unwrap_or_else(|p| p.into_inner());
        let glue = client(&mut aws, region.as_deref())?;
        let aws = &*aws;
        let id = self.ensure(aws, &glue, ctx)?;
        let sent = aws.run(ctx, glue.run_statement().session_id(&id).code(code).send())?;
        let statement = match sent {
            Ok(out) => out.id(),
            Err(e) => {
                let gone = e.as_service_error().is_some_and(|s| {
                    s.is_entity_not_found_exception() || s.is_illegal_session_state_exception()
                });
                if gone {
                    self.forget(&id);
                    return Err(failed(format!(
                        "Glue session {id} cannot run statements any more ({}); run the cell again \
                         to start a new session",
                        crate::client::service_message(&e)
                    )));
                }
                return Err(aws_error(aws, &format!("running a statement in {id}"), e));
            }
        };
        self.follow(aws, &glue, &id, statement, ctx)
    }

    /// Polls the statement until it ends; shows progress while it runs; cancels on interrupt.
    fn follow(
        &self,
        aws: &Aws,
        glue: &aws_sdk_glue::Client,
        id: &str,
        statement: i32,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let started = Instant::now();
        let display_id = format!("glue-statement-{id}-{statement}");
        let mut shown = false;
        let mut pause = Duration::from_millis(50);
        loop {
            let polled = aws.run(
                ctx,
                glue.get_statement().session_id(id).id(statement).send(),
            );
            let out = match polled {
                Err(MagicError::Interrupted(_)) => {
                    return self.cancel(aws, glue, id, statement, ctx)
                }
                Err(e) => return Err(e),
                Ok(r) => r.map_err(|e| {
                    aws_error(aws, &format!("reading statement {statement} of {id}"), e)
                })?,
            };
            let st = out
                .statement
                .ok_or_else(|| failed(format!("Glue returned no statement {statement}")))?;
            let state = st.state().cloned();
            match state {
                Some(StatementState::Available | StatementState::Error) => {
                    if shown {
                        ctx.update_display(
                            MimeBundle::text(format!(
                                "Statement {statement}: done in {:.1} s",
                                started.elapsed().as_secs_f64()
                            )),
                            &display_id,
                        );
                    }
                    return show_output(&st, ctx);
                }
                Some(StatementState::Cancelled) => {
                    return Err(failed(format!(
                        "statement {statement} of Glue session {id} was cancelled"
                    )))
                }
                _ => {}
            }
            if started.elapsed() >= PROGRESS_AFTER {
                let text = format!(
                    "Statement {statement}: {} {:.0}% ({:.0} s)",
                    state.as_ref().map(|s| s.as_str()).unwrap_or("WAITING"),
                    st.progress() * 100.0,
                    started.elapsed().as_secs_f64()
                );
                if shown {
                    ctx.update_display(MimeBundle::text(text), &display_id);
                } else {
                    ctx.display(MimeBundle::text(text), Some(&display_id));
                    shown = true;
                }
            }
            if long_work::sleep(ctx, pause).is_err() {
                return self.cancel(aws, glue, id, statement, ctx);
            }
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// CancelStatement, then waits (bounded) for Glue to report it; the session stays.
    fn cancel(
        &self,
        aws: &Aws,
        glue: &aws_sdk_glue::Client,
        id: &str,
        statement: i32,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        aws.runtime_block(glue.cancel_statement().session_id(id).id(statement).send())
            .map_err(|e| aws_error(aws, &format!("cancelling statement {statement} of {id}"), e))?;
        // The cell is already interrupted, so this clean-up wait cannot be one more
        // interruptible sleep: it is bounded instead.
        let deadline = Instant::now() + CANCEL_LIMIT;
        while Instant::now() < deadline {
            let out = aws.runtime_block(glue.get_statement().session_id(id).id(statement).send());
            let state = out
                .ok()
                .and_then(|o| o.statement)
                .and_then(|s| s.state().cloned());
            if matches!(
                state,
                Some(StatementState::Cancelled | StatementState::Available | StatementState::Error)
            ) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        ctx.stderr(&format!(
            "Statement {statement} cancelled; Glue session {id} is kept.\n"
        ));
        Err(long_work::interrupted(
            format!("statement {statement} was cancelled"),
            format!("Glue session {id} is kept"),
        ))
    }

    /// `%stop_session` / `%delete_session`.
    fn end(
        &self,
        aws: &Mutex<Aws>,
        delete: bool,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let current = self.current().ok_or_else(|| {
            failed("there is no Glue session in this kernel (`%list_sessions` lists the account's)")
        })?;
        let mut aws = aws.lock().unwrap_or_else(|p| p.into_inner());
        let glue = client(&mut aws, current.region.as_deref())?;
        let aws = &*aws;
        let id = &current.id;
        let result = if delete {
            aws.run(ctx, glue.delete_session().id(id).send())?
                .map(|_| ())
                .map_err(|e| {
                    (
                        has_code(&e, "EntityNotFoundException"),
                        aws_error(aws, &format!("deleting Glue session {id}"), e),
                    )
                })
        } else {
            aws.run(ctx, glue.stop_session().id(id).send())?
                .map(|_| ())
                .map_err(|e| {
                    (
                        has_code(&e, "EntityNotFoundException"),
                        aws_error(aws, &format!("stopping Glue session {id}"), e),
                    )
                })
        };
        match result {
            Ok(()) | Err((true, _)) => {
                self.forget(id);
                let verb = if delete { "Deleted" } else { "Stopped" };
                ctx.stdout(&format!(
                    "{verb} Glue session {id}; the next %%glue cell starts a new one.\n"
                ));
                Ok(())
            }
            Err((false, e)) => Err(e),
        }
    }

    /// Deletes the session when the kernel exits, as AWS Glue's kernel does.
    pub fn shutdown(&self, aws: &Mutex<Aws>) {
        let Some(current) = self.current() else {
            return;
        };
        let mut aws = aws.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(glue) = client(&mut aws, current.region.as_deref()) {
            let _ = aws.runtime_block(async {
                tokio::time::timeout(
                    Duration::from_secs(10),
                    glue.delete_session().id(&current.id).send(),
                )
                .await
            });
        }
        self.forget(&current.id);
    }
}

/// A finished statement's text, or its error as the session raised it.
fn show_output(
    st: &aws_sdk_glue::types::Statement,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    let output = st.output();
    let text = output
        .and_then(|o| o.data())
        .and_then(|d| d.text_plain())
        .unwrap_or_default();
    let status = output
        .and_then(|o| o.status())
        .map(|s| s.as_str().to_ascii_lowercase())
        .unwrap_or_default();
    let failed_statement = status == "error"
        || st.state() == Some(&StatementState::Error)
        || output.and_then(|o| o.error_name()).is_some();
    if !text.is_empty() {
        ctx.stdout(text);
        if !text.ends_with('\n') {
            ctx.stdout("\n");
        }
    }
    if failed_statement {
        let output = output
            .cloned()
            .unwrap_or_else(|| aws_sdk_glue::types::StatementOutput::builder().build());
        return Err(MagicError::Remote {
            ename: output
                .error_name()
                .unwrap_or("GlueStatementError")
                .to_owned(),
            evalue: output
                .error_value()
                .unwrap_or("the statement failed")
                .to_owned(),
            traceback: output.traceback().to_vec(),
        });
    }
    Ok(())
}
