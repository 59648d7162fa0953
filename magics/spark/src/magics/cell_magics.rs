//! sparkmagic's cell magics besides `%%spark`: `%%pyspark`, `%%scala`, `%%sparkr` (code in
//! another language), `%%sql`, `%%configure`, `%%info`, `%%send_to_spark`, `%%cleanup`,
//! `%%delete` and `%%logs`.

use super::*;

/// `%%pyspark`, `%%scala`, `%%sparkr`: the cell in the default session (or `-s`), as that language.
pub(super) struct CodeMagic {
    pub(super) spark: Arc<Spark>,
    pub(super) name: &'static str,
    pub(super) kind: Kind,
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct SessionOption {
    #[arg(short = 's', long = "session")]
    session: Option<String>,
}

impl Magic for CodeMagic {
    fn name(&self) -> &str {
        self.name
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Cell]
    }
    fn summary(&self) -> &str {
        match self.kind {
            Kind::PySpark => "Run the cell as PySpark code in the Spark session.",
            Kind::Spark => "Run the cell as Scala code in the Spark session.",
            _ => "Run the cell as SparkR code in the Spark session.",
        }
    }
    fn help(&self) -> String {
        format!(
            "%%{} [-s NAME]\n\nRuns the cell as {} code (Livy statement kind `{}`) in the default Spark session, \
             or in session NAME. The default session starts on first use (see %spark?).\n\
             The local Livy server runs Python (pyspark) and SQL; Scala and R need a Livy on a cluster (EMR).",
            self.name,
            match self.kind {
                Kind::PySpark => "Python",
                Kind::Spark => "Scala",
                _ => "R",
            },
            self.kind.as_str()
        )
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let opts: SessionOption = parse_args(self.name, call.argv()?)?;
        lock(&self.spark).run_code(opts.session.as_deref(), self.kind, &call.body, ctx)
    }
}

pub(super) struct SqlMagic(pub(super) Arc<Spark>);

impl Magic for SqlMagic {
    fn name(&self) -> &str {
        "sql"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Cell]
    }
    fn summary(&self) -> &str {
        "Run Spark SQL; show the result as a table, `-o NAME` keeps it as a DataFrame."
    }
    fn help(&self) -> String {
        format!(
            "%%sql [-s NAME] [-o NAME] [-q] [-m take|sample] [-n N] [-r F]\n\nRuns the cell as a Spark SQL query in the Spark session and shows the rows.\n{SQL_OPTIONS_HELP}\n\nExample:\n  %%sql -o top -n 10\n  SELECT name, count(*) AS n FROM people GROUP BY name ORDER BY n DESC"
        )
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let opts: SqlOptions = parse_args("sql", call.argv()?)?;
        lock(&self.0).run_sql(opts.session.as_deref(), &call.body, &opts, ctx)
    }
}

pub(super) struct ConfigureMagic(pub(super) Arc<Spark>);

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct ForceOption {
    #[arg(short = 'f', long = "force")]
    force: bool,
}

impl Magic for ConfigureMagic {
    fn name(&self) -> &str {
        "configure"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Cell]
    }
    fn summary(&self) -> &str {
        "Set the Spark session's properties (JSON); -f restarts a running session with them."
    }
    fn help(&self) -> String {
        "%%configure [-f]\n{JSON}\n\nSets the properties of the default Spark session (the body of Livy's POST /sessions: \
         conf, driverMemory, driverCores, executorMemory, executorCores, numExecutors, jars, pyFiles, files, \
         proxyUser, name, heartbeatTimeoutInSecond) and starts it. If a session is running, -f deletes it \
         (its state is lost) and starts a new one.\n\nExample:\n  %%configure -f\n  {\"driverMemory\": \"2g\", \"conf\": {\"spark.sql.shuffle.partitions\": \"8\"}}".into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let opts: ForceOption = parse_args("configure", call.argv()?)?;
        let props: Value = serde_json::from_str(call.body.trim()).map_err(|e| {
            MagicError::usage(
                "configure",
                format!("the cell must hold a JSON object of session properties: {e}"),
            )
        })?;
        if !props.is_object() {
            return Err(MagicError::usage(
                "configure",
                "the cell must hold a JSON object of session properties",
            ));
        }
        let mut st = lock(&self.0);
        if let Some(s) = st.sessions.get(DEFAULT_SESSION) {
            if !opts.force {
                return Err(failed(
                    "a session has already been started; to recreate it with these properties use %%configure -f (its state is lost)",
                ));
            }
            let _ = s.client.delete_session(s.id);
            st.sessions.remove(DEFAULT_SESSION);
        }
        let kind = props
            .get("kind")
            .and_then(Value::as_str)
            .map(kind_of)
            .transpose()?
            .unwrap_or(Kind::PySpark);
        st.properties = Some(props);
        st.default_session(kind, ctx).map(drop)
    }
}

pub(super) struct InfoMagic(pub(super) Arc<Spark>);

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct UrlOption {
    #[arg(short = 'u', long = "url")]
    url: Option<String>,
}

impl Magic for InfoMagic {
    fn name(&self) -> &str {
        "info"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line, MagicForm::Cell]
    }
    fn summary(&self) -> &str {
        "Show the Spark session settings and the sessions at the Livy endpoint."
    }
    fn help(&self) -> String {
        "%%info [-u URL]\n\nPrints the properties new sessions get and a table of the Livy sessions at the endpoint \
         (application id, kind, state, Spark UI and driver log links; the current session is ticked)."
            .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let opts: UrlOption = parse_args("info", call.argv()?)?;
        lock(&self.0).info(opts.url.as_deref(), ctx)
    }
}

pub(super) struct SendMagic(pub(super) Arc<Spark>);

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct SendOptions {
    #[arg(short = 'i', long = "input")]
    input: Option<String>,
    #[arg(short = 't', long = "vartype", default_value = "str")]
    vartype: String,
    #[arg(short = 'n', long = "varname")]
    varname: Option<String>,
    #[arg(
        short = 'm',
        long = "maxrows",
        default_value_t = 2500,
        allow_negative_numbers = true
    )]
    maxrows: i64,
    #[arg(short = 's', long = "session")]
    session: Option<String>,
}

impl Magic for SendMagic {
    fn name(&self) -> &str {
        "send_to_spark"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line, MagicForm::Cell]
    }
    fn summary(&self) -> &str {
        "Send a kernel value (a Rust string or a frame) to the Spark session as a variable."
    }
    fn help(&self) -> String {
        "%%send_to_spark -i VAR [-t str|df] [-n NAME] [-m MAXROWS] [-s SESSION]\n\n\
         -t str: VAR is a Rust expression in this kernel (a variable of a Display type); the Spark \
         session gets a string variable NAME.\n-t df: VAR is a frame of the frame store (e.g. from \
         `%%sql -o VAR`); the session gets a Spark DataFrame NAME with the frame's column types \
         (at most MAXROWS rows, default 2500, -1 for all).\nNAME defaults to VAR.\n\nExample:\n  \
         %%send_to_spark -i top -t df -n top_remote"
            .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let opts: SendOptions = parse_args("send_to_spark", call.argv()?)?;
        let input = opts.input.ok_or_else(|| {
            MagicError::usage("send_to_spark", "give the value to send with -i VAR")
        })?;
        let name = opts.varname.unwrap_or_else(|| input.clone());
        rustmaker_magics::frames::check_name(&name)?;
        let max_rows = usize::try_from(opts.maxrows).unwrap_or(usize::MAX);
        let mut st = lock(&self.0);
        let kind = st.kind_of(opts.session.as_deref())?;
        let (code, code_kind) = match opts.vartype.as_str() {
            "str" => {
                let value = ctx.rust_value(&input)?;
                send::string_code(&name, &value, kind)?
            }
            "df" => {
                let frame = ctx.frames().get(&input)?;
                send::frame_code(&name, frame, kind, max_rows)?
            }
            other => {
                return Err(MagicError::usage(
                    "send_to_spark",
                    format!("-t {other}: the type is `str` or `df`"),
                ))
            }
        };
        let code_kind = Kind::parse(code_kind).unwrap_or(kind);
        st.run_code(opts.session.as_deref(), code_kind, &code, ctx)?;
        ctx.stdout(&format!(
            "Sent `{input}` to the Spark session as `{name}`.\n"
        ));
        Ok(())
    }
}

pub(super) struct CleanupMagic(pub(super) Arc<Spark>);

impl Magic for CleanupMagic {
    fn name(&self) -> &str {
        "cleanup"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line, MagicForm::Cell]
    }
    fn summary(&self) -> &str {
        "Delete every Livy session at the endpoint (needs -f), this kernel's included."
    }
    fn help(&self) -> String {
        "%%cleanup -f\n\nDeletes all sessions at the default session's Livy endpoint, including sessions of other \
         notebooks and this kernel's own. -f confirms."
            .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let opts: ForceOption = parse_args("cleanup", call.argv()?)?;
        if !opts.force {
            return Err(failed(
                "%%cleanup deletes every session at the endpoint, other notebooks' too: run `%%cleanup -f` to confirm",
            ));
        }
        lock(&self.0).cleanup(None, "", "", None, ctx)
    }
}

pub(super) struct DeleteMagic(pub(super) Arc<Spark>);

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct DeleteOptions {
    #[arg(short = 'f', long = "force")]
    force: bool,
    #[arg(short = 's', long = "session")]
    session: Option<u32>,
}

impl Magic for DeleteMagic {
    fn name(&self) -> &str {
        "delete"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line, MagicForm::Cell]
    }
    fn summary(&self) -> &str {
        "Delete a Livy session by id at the endpoint (needs -f)."
    }
    fn help(&self) -> String {
        "%%delete -f -s ID\n\nDeletes Livy session ID at the default session's endpoint (`%%info` lists them). \
         This kernel's own session cannot be deleted this way: use %%cleanup -f or restart the kernel."
            .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let opts: DeleteOptions = parse_args("delete", call.argv()?)?;
        let id = opts.session.ok_or_else(|| {
            MagicError::usage("delete", "give the Livy session id: %%delete -f -s ID")
        })?;
        if !opts.force {
            return Err(failed(format!(
                "deleting session {id} loses its state: run `%%delete -f -s {id}` to confirm"
            )));
        }
        let mut st = lock(&self.0);
        if st.sessions.get(DEFAULT_SESSION).is_some_and(|s| s.id == id) {
            return Err(failed(format!(
                "session {id} is this kernel's own session: use %%cleanup -f, %%configure -f or restart the kernel to replace it"
            )));
        }
        let client = st.endpoint_client(None, "", "", None)?;
        client.delete_session(id)?;
        let url = client.endpoint().url.clone();
        st.sessions
            .retain(|_, s| !(s.id == id && s.client.endpoint().url == url));
        ctx.stdout(&format!("Deleted Livy session {id} at {url}.\n"));
        Ok(())
    }
}

pub(super) struct LogsMagic(pub(super) Arc<Spark>);

impl Magic for LogsMagic {
    fn name(&self) -> &str {
        "logs"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line, MagicForm::Cell]
    }
    fn summary(&self) -> &str {
        "Show the Spark session's log (driver output) from Livy."
    }
    fn help(&self) -> String {
        "%%logs [-s NAME]\n\nPrints the log Livy keeps for the default session (or session NAME)."
            .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let opts: SessionOption = parse_args("logs", call.argv()?)?;
        lock(&self.0).logs(opts.session.as_deref(), ctx)
    }
}
