//! The Spark magics' sessions: settings, the Livy client per endpoint, starting a session
//! with live status, running code and SQL in it, and `%spark info/logs/cleanup/delete`.

use super::*;

impl State {
    pub(super) fn config(&mut self) -> Result<&SparkConfig, MagicError> {
        if self.config.is_none() {
            self.config = Some(SparkConfig::load()?);
        }
        Ok(self.config.as_ref().expect("just loaded"))
    }

    pub(super) fn properties(&mut self, kind: Kind) -> Result<Value, MagicError> {
        let mut props = self.config()?.session_properties.clone();
        if let Some(Value::Object(over)) = &self.properties {
            for (k, v) in over {
                props[k] = v.clone();
            }
        }
        props["kind"] = json!(kind.as_str());
        Ok(props)
    }

    pub(super) fn client(&mut self, spec: &EndpointSpec) -> Result<LivyClient, MagicError> {
        let retry = self.config()?.retry.clone();
        let clusters: &dyn ClusterResolver = match &self.clusters {
            Some(c) => c.as_ref(),
            None => &NoClusterResolver,
        };
        let endpoint = crate::endpoint::resolve(spec, clusters)?;
        Ok(LivyClient::new(endpoint, retry)?)
    }

    /// The default session, started on first use.
    pub(super) fn default_session(
        &mut self,
        kind: Kind,
        ctx: &mut dyn MagicContext,
    ) -> Result<&LiveSession, MagicError> {
        if !self.sessions.contains_key(DEFAULT_SESSION) {
            let spec = self.config()?.endpoint.clone();
            let client = self.client(&spec)?;
            let props = self.properties(kind)?;
            self.start_session(DEFAULT_SESSION, client, kind, props, ctx)?;
        }
        Ok(&self.sessions[DEFAULT_SESSION])
    }

    pub(super) fn named(&self, name: &str) -> Result<&LiveSession, MagicError> {
        self.sessions.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.sessions.keys().map(String::as_str).collect();
            failed(format!(
                "no Spark session named `{name}`{}; create it with `%spark add -s {name} -l python -u URL`",
                if known.is_empty() {
                    String::new()
                } else {
                    format!(" (sessions: {})", known.join(", "))
                }
            ))
        })
    }

    /// The language of session `name` (the default one's, or pyspark before it starts).
    pub(super) fn kind_of(&self, name: Option<&str>) -> Result<Kind, MagicError> {
        match name {
            Some(n) if n != DEFAULT_SESSION => Ok(self.named(n)?.kind),
            _ => Ok(self
                .sessions
                .get(DEFAULT_SESSION)
                .map_or(Kind::PySpark, |s| s.kind)),
        }
    }

    pub(super) fn session(
        &mut self,
        name: Option<&str>,
        kind: Kind,
        ctx: &mut dyn MagicContext,
    ) -> Result<(String, &LiveSession), MagicError> {
        match name {
            None | Some(DEFAULT_SESSION) => {
                Ok((DEFAULT_SESSION.to_owned(), self.default_session(kind, ctx)?))
            }
            Some(n) => Ok((n.to_owned(), self.named(n)?)),
        }
    }

    /// Creates a Livy session and waits until it is idle, showing its state as it starts.
    pub(super) fn start_session(
        &mut self,
        name: &str,
        client: LivyClient,
        kind: Kind,
        properties: Value,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let timeout = self.config()?.startup_timeout;
        let url = client.endpoint().url.clone();
        let created = client.create_session(&properties)?;
        let display_id = format!("spark-session-{}", uuid::Uuid::new_v4().simple());
        let started = Instant::now();
        let status = |state: &str| {
            MimeBundle::text(format!(
                "Starting Spark session `{name}` (Livy session {} at {url}): {state}, {:.0} s",
                created.id,
                started.elapsed().as_secs_f64()
            ))
        };
        ctx.display(status(&created.state), Some(&display_id));
        let mut session = created.clone();
        let mut last_shown = Instant::now();
        while session.state != "idle" {
            if session_is_finished(&session.state) {
                let log = client
                    .logs(session.id, 0, 10_000)
                    .map(|l| l.log)
                    .unwrap_or(session.log.clone());
                let tail: Vec<String> = log.iter().rev().take(15).rev().cloned().collect();
                let _ = client.delete_session(session.id);
                ctx.update_display(MimeBundle::text(""), &display_id);
                return Err(failed(format!(
                    "Spark session `{name}` failed to start (state {}) at {url}.\nLast lines of its log:\n{}\nFix the session settings (`%%configure -f {{…}}`) and try again.",
                    session.state,
                    tail.join("\n")
                )));
            }
            if ctx.is_interrupted() {
                let _ = client.delete_session(session.id);
                ctx.update_display(MimeBundle::text(""), &display_id);
                return Err(long_work::interrupted(
                    format!(
                        "the start of Spark session `{name}` was stopped and the session deleted"
                    ),
                    "the other sessions are kept",
                ));
            }
            if started.elapsed() > timeout {
                let _ = client.delete_session(session.id);
                ctx.update_display(MimeBundle::text(""), &display_id);
                return Err(failed(format!(
                    "Spark session `{name}` at {url} was still `{}` after {} s, so it was deleted; \
                     raise livy_session_startup_timeout_seconds in ~/.sparkmagic/config.json if the cluster is slow",
                    session.state,
                    timeout.as_secs()
                )));
            }
            if long_work::sleep(&*ctx, Duration::from_millis(100)).is_err() {
                continue; // interrupted: the check above deletes the session
            }
            session = match client.session_until(session.id, &|| ctx.is_interrupted()) {
                Ok(s) => s,
                Err(_) if ctx.is_interrupted() => continue,
                Err(e) => return Err(e.into()),
            };
            if last_shown.elapsed() > Duration::from_millis(500) {
                ctx.update_display(status(&session.state), &display_id);
                last_shown = Instant::now();
            }
        }
        ctx.update_display(
            session_table(&[session.clone()], Some(session.id), &url),
            &display_id,
        );
        let heartbeat_timeout = properties
            .get("heartbeatTimeoutInSecond")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        self.sessions.insert(
            name.to_owned(),
            LiveSession {
                client,
                id: session.id,
                kind,
                heartbeat_timeout,
            },
        );
        Ok(())
    }

    /// Runs code and shows its output; a session found dead is forgotten, so the next cell
    /// starts a new one.
    pub(super) fn run_code(
        &mut self,
        name: Option<&str>,
        kind: Kind,
        code: &str,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let output = {
            let (name, session) = self.session(name, kind, ctx)?;
            let target = Target {
                name: &name,
                client: &session.client,
                id: session.id,
            };
            match run_statement(&target, code, kind.as_str(), ctx) {
                Ok(output) => output,
                Err(RunError::Magic(e)) => return Err(e),
                Err(RunError::SessionLost(msg)) => {
                    self.sessions.remove(&name);
                    return Err(failed(msg));
                }
            }
        };
        render_output(output, ctx)
    }

    pub(super) fn run_sql(
        &mut self,
        session: Option<&str>,
        query: &str,
        opts: &SqlOptions,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let default_rows = self.config()?.max_rows;
        let max_rows = opts.maxrows.unwrap_or(default_rows);
        let sample_fraction = match opts.samplemethod.as_deref().unwrap_or("take") {
            "take" => None,
            "sample" => {
                let r = opts.samplefraction.unwrap_or(0.1);
                if !(r > 0.0 && r <= 1.0) {
                    return Err(failed(format!(
                        "-r {r}: the sample fraction must be in (0, 1]"
                    )));
                }
                Some(r)
            }
            other => {
                return Err(failed(format!(
                    "-m {other}: the sample method is `take` or `sample`"
                )))
            }
        };
        if let Some(name) = &opts.output {
            rustmaker_magics::frames::check_name(name)?;
        }
        let sampling = Sampling {
            sample_fraction,
            max_rows: u64::try_from(max_rows).ok(),
        };
        let query = query.trim();
        if query.is_empty() {
            return Err(MagicError::usage("sql", "the cell holds no SQL query"));
        }
        let data = {
            let (name, s) = self.session(session, Kind::PySpark, ctx)?;
            let (code, code_kind) = sql::query_code(query, s.kind, &sampling)?;
            let target = Target {
                name: &name,
                client: &s.client,
                id: s.id,
            };
            match run_statement(&target, &code, code_kind, ctx) {
                Ok(out) if out.status == "ok" => out.data.unwrap_or_default(),
                Ok(out) => return render_output(out, ctx),
                Err(RunError::Magic(e)) => return Err(e),
                Err(RunError::SessionLost(msg)) => {
                    self.sessions.remove(&name);
                    return Err(failed(msg));
                }
            }
        };
        let frame = sql::decode(&data)?;
        if !opts.quiet {
            ctx.display(frame_bundle(&frame, SHOWN_ROWS), None);
        }
        if let Some(name) = &opts.output {
            ctx.frames().insert(name, frame)?;
        }
        Ok(())
    }

    pub(super) fn endpoint_client(
        &mut self,
        url: Option<&str>,
        user: &str,
        password: &str,
        auth: Option<&str>,
    ) -> Result<LivyClient, MagicError> {
        match url {
            Some(url) => {
                let auth = Auth::parse(auth.unwrap_or(""), user, password)
                    .map_err(|e| MagicError::usage("spark", e.to_string()))?;
                let spec = EndpointSpec::parse(url, auth)
                    .map_err(|e| MagicError::usage("spark", e.to_string()))?;
                self.client(&spec)
            }
            None => match self.sessions.get(DEFAULT_SESSION) {
                Some(s) => Ok(s.client.clone()),
                None => {
                    let spec = self.config()?.endpoint.clone();
                    self.client(&spec)
                }
            },
        }
    }

    pub(super) fn info(
        &mut self,
        url: Option<&str>,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let props = self.properties(Kind::PySpark)?;
        ctx.stdout(&format!(
            "Current session configs: {}\n",
            serde_json::to_string(&props).unwrap_or_default()
        ));
        for (name, s) in &self.sessions {
            ctx.stdout(&format!(
                "Session `{name}`: Livy session {} ({}) at {}\n",
                s.id,
                s.kind.as_str(),
                s.client.endpoint().url
            ));
        }
        let local_idle = url.is_none()
            && self.sessions.is_empty()
            && self.config()?.endpoint == EndpointSpec::Local
            && !crate::endpoint::local_state_file().exists();
        if local_idle {
            ctx.stdout(
                "No active sessions (the local Livy server starts with the first Spark cell).\n",
            );
            return Ok(());
        }
        let client = self.endpoint_client(url, "", "", None)?;
        let list = client.list_sessions()?;
        let current = self.sessions.get(DEFAULT_SESSION).map(|s| s.id);
        if list.sessions.is_empty() {
            ctx.stdout(&format!(
                "No active sessions at {}.\n",
                client.endpoint().url
            ));
        } else {
            ctx.display(
                session_table(&list.sessions, current, &client.endpoint().url),
                None,
            );
        }
        Ok(())
    }

    pub(super) fn logs(
        &mut self,
        name: Option<&str>,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let name = name.unwrap_or(DEFAULT_SESSION);
        let s = self.sessions.get(name).ok_or_else(|| {
            failed(format!(
                "no Spark session `{name}` is open in this kernel; run a %%spark cell first"
            ))
        })?;
        let mut from = 0;
        loop {
            let page = s.client.logs(s.id, from, 1000)?;
            for line in &page.log {
                ctx.stdout(&format!("{line}\n"));
            }
            from += page.log.len() as u32;
            if page.log.is_empty() || from >= page.total || from >= 100_000 {
                break;
            }
        }
        Ok(())
    }

    /// Deletes every session at the endpoint (the default one's, or `url`).
    pub(super) fn cleanup(
        &mut self,
        url: Option<&str>,
        user: &str,
        password: &str,
        auth: Option<&str>,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let client = self.endpoint_client(url, user, password, auth)?;
        let list = client.list_sessions()?;
        for s in &list.sessions {
            client.delete_session(s.id)?;
        }
        let endpoint = client.endpoint().url.clone();
        self.sessions
            .retain(|_, s| s.client.endpoint().url != endpoint);
        ctx.stdout(&format!(
            "Deleted {} session(s) at {endpoint}.\n",
            list.sessions.len()
        ));
        Ok(())
    }

    pub(super) fn delete_named(
        &mut self,
        name: &str,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let s = self.named(name)?;
        match s.client.delete_session(s.id) {
            Ok(()) => {}
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(failed(e)),
        }
        ctx.stdout(&format!(
            "Deleted Spark session `{name}` (Livy session {}).\n",
            s.id
        ));
        self.sessions.remove(name);
        Ok(())
    }
}

/// sparkmagic's session table: id, application, kind, state, links, user, current.
fn session_table(sessions: &[Session], current: Option<u32>, url: &str) -> MimeBundle {
    let esc = rustmaker_magics::table::escape;
    let link = |v: Option<&Value>, label: &str| match v.and_then(Value::as_str) {
        Some(u) if !u.is_empty() => format!("<a target=\"_blank\" href=\"{}\">{label}</a>", esc(u)),
        _ => String::new(),
    };
    let mut html = String::from("<table>\n<tr><th>ID</th><th>Application ID</th><th>Kind</th><th>State</th><th>Spark UI</th><th>Driver log</th><th>User</th><th>Current session?</th></tr>\n");
    let mut text = format!("Livy sessions at {url}:\n");
    for s in sessions {
        let is_current = current == Some(s.id);
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            s.id,
            esc(s.app_id.as_deref().unwrap_or("")),
            esc(s.kind.as_deref().unwrap_or("")),
            esc(&s.state),
            link(s.app_info.get("sparkUiUrl"), "Link"),
            link(s.app_info.get("driverLogUrl"), "Link"),
            esc(s.proxy_user.as_deref().or(s.owner.as_deref()).unwrap_or("")),
            if is_current { "✔" } else { "" }
        ));
        text.push_str(&format!(
            "  {} {} {} {}{}\n",
            s.id,
            s.kind.as_deref().unwrap_or("-"),
            s.state,
            s.app_id.as_deref().unwrap_or("-"),
            if is_current { " (current)" } else { "" }
        ));
    }
    html.push_str("</table>");
    MimeBundle::text(text).with("text/html", Value::String(html))
}
