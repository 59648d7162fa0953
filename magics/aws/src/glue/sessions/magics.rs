//! The Glue session magics: one per setting (`%worker_type`, …), the controls (`%status`,
//! `%stop_session`, …) and Glue's `%%configure`.

use super::*;

/// `%iam_role`, `%worker_type`, …: sets one setting of the next session, or shows it.
pub struct OptionMagic {
    pub key: &'static str,
    pub summary: &'static str,
    pub session: Arc<Session>,
}

impl Magic for OptionMagic {
    fn name(&self) -> &str {
        self.key
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line]
    }
    fn summary(&self) -> &str {
        self.summary
    }
    fn help(&self) -> String {
        format!(
            "%{key} VALUE\n%{key}           (shows the current value)\n\n{summary}\n\
             The Glue interactive session started by the next %%glue cell uses it; a session already\n\
             running keeps its own settings (`%stop_session` ends it). `%status` shows every setting,\n\
             `%%configure` sets several at once.",
            key = self.key,
            summary = self.summary
        )
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let value = call.args.trim();
        if value.is_empty() {
            ctx.stdout(&format!(
                "{}: {}\n",
                self.key,
                self.session.config().get(self.key)
            ));
            return Ok(());
        }
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        self.session
            .set_all(&[(self.key.to_owned(), value.to_owned())], ctx)?;
        ctx.stdout(&format!(
            "{} set to {}\n",
            self.key,
            self.session.config().get(self.key)
        ));
        Ok(())
    }
}

/// The session controls: each is a magic of its own (`%status`, …), as in AWS Glue's kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Status,
    SessionId,
    ListSessions,
    StopSession,
    DeleteSession,
}

impl Control {
    pub const ALL: [Control; 5] = [
        Control::Status,
        Control::SessionId,
        Control::ListSessions,
        Control::StopSession,
        Control::DeleteSession,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Control::Status => "status",
            Control::SessionId => "session_id",
            Control::ListSessions => "list_sessions",
            Control::StopSession => "stop_session",
            Control::DeleteSession => "delete_session",
        }
    }

    pub fn summary(self) -> &'static str {
        match self {
            Control::Status => "The Glue session's status and the settings of the next one.",
            Control::SessionId => "The ID of the kernel's Glue session.",
            Control::ListSessions => {
                "The account's Glue interactive sessions (`-o NAME` keeps the table)."
            }
            Control::StopSession => {
                "Stop the kernel's Glue session (the next %%glue cell starts a new one)."
            }
            Control::DeleteSession => {
                "Delete the kernel's Glue session (the next %%glue cell starts a new one)."
            }
        }
    }
}

/// One control as a magic.
pub struct ControlMagic {
    pub control: Control,
    pub session: Arc<Session>,
    pub aws: Arc<Mutex<Aws>>,
}

impl Magic for ControlMagic {
    fn name(&self) -> &str {
        self.control.name()
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line]
    }
    fn summary(&self) -> &str {
        self.control.summary()
    }
    fn help(&self) -> String {
        let usage = match self.control {
            Control::ListSessions => "%list_sessions [-o NAME]".to_owned(),
            other => format!("%{}", other.name()),
        };
        format!("{usage}\n\n{}", self.control.summary())
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let argv = call.argv()?;
        let output = match (self.control, argv.as_slice()) {
            (_, []) => None,
            (Control::ListSessions, [flag, name]) if flag == "-o" || flag == "--output" => {
                Some(name.clone())
            }
            _ => {
                let name = self.control.name();
                return Err(MagicError::usage(
                    name,
                    format!("unexpected arguments `{}`; see `%{name}?`", call.args),
                ));
            }
        };
        match self.control {
            Control::Status => self.session.show_status(Some(&self.aws), ctx),
            Control::SessionId => {
                match self.session.current() {
                    Some(c) => ctx.stdout(&format!("{}\n", c.id)),
                    None => ctx.stdout("No Glue session yet; the next %%glue cell starts one.\n"),
                }
                Ok(())
            }
            Control::StopSession => self.session.end(&self.aws, false, ctx),
            Control::DeleteSession => self.session.end(&self.aws, true, ctx),
            Control::ListSessions => self.list_sessions(output.as_deref(), ctx),
        }
    }
}

impl ControlMagic {
    fn list_sessions(
        &self,
        output: Option<&str>,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let region = self.session.region();
        let mut aws = self.aws.lock().unwrap_or_else(|p| p.into_inner());
        let glue = client(&mut aws, region.as_deref())?;
        let aws = &*aws;
        let mut sessions = Vec::new();
        let mut token = None;
        loop {
            let out = aws
                .run(ctx, glue.list_sessions().set_next_token(token).send())?
                .map_err(|e| aws_error(aws, "listing Glue sessions", e))?;
            sessions.extend(out.sessions().iter().cloned());
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let df = df!(
            "id" => sessions.iter().map(|s| s.id().unwrap_or_default()).collect::<Vec<_>>(),
            "status" => sessions.iter().map(|s| s.status().map(|s| s.as_str()).unwrap_or_default()).collect::<Vec<_>>(),
            "created" => sessions.iter().map(|s| s.created_on().map(|t| t.to_string()).unwrap_or_default()).collect::<Vec<_>>(),
            "glue_version" => sessions.iter().map(|s| s.glue_version().unwrap_or_default()).collect::<Vec<_>>(),
            "worker_type" => sessions.iter().map(|s| s.worker_type().map(|w| w.as_str()).unwrap_or_default()).collect::<Vec<_>>(),
            "workers" => sessions.iter().map(|s| s.number_of_workers()).collect::<Vec<_>>()
        )
        .map_err(failed)?;
        show_frame(df, output, ctx)
    }
}

/// Glue's `%%configure`. The kernel owns the `%%configure` name (sparkmagic has one too) and
/// hands it cells whose keys are all Glue's ([`is_configure_key`]).
pub struct ConfigureMagic {
    pub session: Arc<Session>,
}

impl Magic for ConfigureMagic {
    fn name(&self) -> &str {
        "configure"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Cell]
    }
    fn summary(&self) -> &str {
        "Glue session settings as JSON (iam_role, worker_type, number_of_workers, …, \"--job-arg\")."
    }
    fn help(&self) -> String {
        let keys: Vec<&str> = OPTIONS.iter().map(|(k, _)| *k).collect();
        format!(
            "%%configure\n{{\"worker_type\": \"G.2X\", \"number_of_workers\": 10, \"--conf\": \"spark.sql.shuffle.partitions=8\"}}\n\n\
             Sets several settings of the next Glue interactive session at once. Keys: {}, and job\n\
             arguments written `--name`. Lists take a JSON array or a comma-separated string.",
            keys.join(", ")
        )
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        self.session.configure(&call.body, ctx)
    }
}
