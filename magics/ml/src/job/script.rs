//! Script mode: a user's program run the way SageMaker's training toolkit runs it, in the
//! job's folder layout with SM_* variables, its output streamed, metrics extracted by the
//! metric definitions' regexes, and the whole process group stopped on request or time-out.

use super::*;

/// How a program ended: the status, why (unless Completed), and its metrics' last values.
type Ending = (Status, Option<String>, Vec<(String, f64)>);

pub(super) struct Script {
    pub(super) entry_point: PathBuf,
    pub(super) channels: Vec<(String, Channel, String)>,
    pub(super) metric_definitions: Vec<(String, Regex)>,
    pub(super) max_runtime: Option<Duration>,
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), MlError> {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap_or_default())
        .map_err(|e| MlError::Input(format!("cannot write {}: {e}", path.display())))
}

fn copy_into(from: &Path, dir: &Path) -> Result<(), MlError> {
    let fail = |e: std::io::Error| MlError::Input(format!("cannot copy {}: {e}", from.display()));
    if from.is_dir() {
        for entry in std::fs::read_dir(from).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            copy_into(&entry.path(), &dir.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        let target = if dir.extension().is_some() && !dir.exists() {
            dir.to_path_buf()
        } else {
            std::fs::create_dir_all(dir).map_err(fail)?;
            dir.join(from.file_name().unwrap_or_default())
        };
        std::fs::copy(from, target).map(|_| ()).map_err(fail)
    }
}

fn env_name(name: &str) -> String {
    name.to_ascii_uppercase().replace(['-', '.'], "_")
}

impl Script {
    pub(super) fn run(
        self,
        spec: &JobSpec,
        store: &Store,
        watcher: &mut dyn Watcher,
    ) -> Result<JobResult, MlError> {
        let entry = &self.entry_point;
        if !entry.is_file() {
            return Err(MlError::Input(format!(
                "the entry point {} does not exist",
                entry.display()
            )));
        }
        let is_python = entry.extension().is_some_and(|e| e == "py");
        if !is_python {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(entry)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if mode & 0o111 == 0 {
                return Err(MlError::Input(format!(
                    "the entry point {} is not executable (chmod +x it, or give a .py script)",
                    entry.display()
                )));
            }
        }
        let dir = &spec.dir;
        // A fresh job directory: nothing of an earlier run with this name leaks in.
        if spec.replace && dir.exists() {
            let _ = std::fs::remove_dir_all(dir);
        }
        let config = dir.join("input/config");
        let model_dir = dir.join("model");
        let output = dir.join("output");
        for d in [&config, &model_dir, &output.join("data"), &dir.join("code")] {
            std::fs::create_dir_all(d)
                .map_err(|e| MlError::Input(format!("cannot make {}: {e}", d.display())))?;
        }
        // The hook's configuration where smdebug looks for it, so the program's own smdebug
        // hooks write into the job's Debugger output; the rules read it as it grows.
        let debug = match &spec.definition {
            Some(d) => debugger::config::resolve(
                d.debug_hook_config.as_ref(),
                &d.debug_rule_configurations,
                dir,
                None,
            )?,
            None => None,
        };
        if let Some(settings) = &debug {
            debugger::write_smdebug_config(settings, &config.join(debugger::SMDEBUG_CONFIG_FILE))?;
        }
        let rules = debug
            .as_ref()
            .map(|s| Arc::new(Mutex::new(debugger::Rules::new(&spec.name, s))));
        let mut log = Log::create(dir)?;
        let mut parameters: Vec<(String, String)> =
            spec.hyperparameters.clone().into_iter().collect();
        parameters.push((
            "entry_point".into(),
            entry
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        ));
        let inputs: Vec<(String, String)> = self
            .channels
            .iter()
            .map(|(n, _, uri)| (n.clone(), uri.clone()))
            .collect();
        store.start(&NewComponent {
            experiment: &spec.experiment,
            trial: spec.trial.as_deref().unwrap_or(&spec.name),
            name: &spec.name,
            source: "training-job",
            job_dir: Some(dir),
            parameters: &parameters,
            inputs: &inputs,
            replace: spec.replace,
        })?;
        let result = self.execute(
            spec,
            dir,
            &config,
            &model_dir,
            &output,
            store,
            &mut log,
            watcher,
            rules.as_ref(),
        );
        let (status, reason, metrics) = match result {
            Ok(r) => r,
            Err(e) => (Status::Failed, Some(e.to_string()), Vec::new()),
        };
        let mut rule_stop = None;
        if let (Some(settings), Some(r)) = (&debug, &rules) {
            // The end of the trial is the platform's to mark, as on SageMaker.
            debugger::end_trial(&settings.dir)?;
            if let Err(e) = debugger::lock(r).poll() {
                log.line(&format!("debugger: {e}"));
            }
            rule_stop = end_rules(r, status == Status::Stopped, dir, &mut log, watcher)?
                .filter(|_| status == Status::Stopped);
        }
        let mut model = None;
        let mut reason = reason;
        if status == Status::Completed {
            let manifest = Manifest {
                format_version: 1,
                training_job: spec.name.clone(),
                algorithm: format!(
                    "script:{}",
                    entry.file_name().unwrap_or_default().to_string_lossy()
                ),
                hyperparameters: spec.hyperparameters.clone(),
                schema: None,
                created: chrono::Utc::now().to_rfc3339(),
            };
            let path = model_path(dir);
            match artifact::write(&path, &manifest, None, Some(&model_dir)) {
                Ok(_) => {
                    store.add_output(
                        &spec.name,
                        "SageMaker.ModelArtifact",
                        &path.display().to_string(),
                        "application/x-tar",
                    )?;
                    model = Some(path);
                }
                Err(e) => reason = Some(e.to_string()),
            }
        }
        let status = if status == Status::Completed && model.is_none() {
            Status::Failed
        } else {
            status
        };
        store.finish(&spec.name, status, reason.as_deref())?;
        log.line(&format!(
            "{}{}",
            status.as_str(),
            reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
        Ok(JobResult {
            status,
            model,
            metrics,
            failure_reason: reason,
            rule_stop,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn execute(
        &self,
        spec: &JobSpec,
        dir: &Path,
        config: &Path,
        model_dir: &Path,
        output: &Path,
        store: &Store,
        log: &mut Log,
        watcher: &mut dyn Watcher,
        rules: Option<&debugger::SharedRules>,
    ) -> Result<Ending, MlError> {
        let hps: serde_json::Map<String, serde_json::Value> = spec
            .hyperparameters
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        write_json(
            &config.join("hyperparameters.json"),
            &serde_json::Value::Object(hps.clone()),
        )?;
        let mut data_config = serde_json::Map::new();
        let mut env: Vec<(String, String)> = Vec::new();
        for (name, channel, _) in &self.channels {
            let channel_dir = dir.join("input/data").join(name);
            std::fs::create_dir_all(&channel_dir).map_err(|e| {
                MlError::Input(format!("cannot make {}: {e}", channel_dir.display()))
            })?;
            match channel {
                Channel::Frame(frame) => {
                    let path = channel_dir.join(format!("{name}.csv"));
                    let mut file = std::fs::File::create(&path).map_err(|e| {
                        MlError::Input(format!("cannot write {}: {e}", path.display()))
                    })?;
                    CsvWriter::new(&mut file)
                        .include_header(true)
                        .finish(&mut frame.clone())
                        .map_err(|e| {
                            MlError::Input(format!("cannot write {}: {e}", path.display()))
                        })?;
                }
                Channel::Path(p) => copy_into(p, &channel_dir)?,
            }
            data_config.insert(
                name.clone(),
                serde_json::json!({"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}),
            );
            env.push((
                format!("SM_CHANNEL_{}", env_name(name)),
                channel_dir.display().to_string(),
            ));
        }
        write_json(
            &config.join("inputdataconfig.json"),
            &serde_json::Value::Object(data_config),
        )?;
        write_json(
            &config.join("resourceconfig.json"),
            &serde_json::json!({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "lo"}),
        )?;
        let code = dir.join("code");
        copy_into(&self.entry_point, &code)?;
        let entry_name = self
            .entry_point
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let channels: Vec<&String> = self.channels.iter().map(|(n, _, _)| n).collect();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        env.extend([
            ("SM_MODEL_DIR".into(), model_dir.display().to_string()),
            (
                "SM_INPUT_DIR".into(),
                dir.join("input").display().to_string(),
            ),
            ("SM_INPUT_CONFIG_DIR".into(), config.display().to_string()),
            ("SM_OUTPUT_DIR".into(), output.display().to_string()),
            (
                "SM_OUTPUT_DATA_DIR".into(),
                output.join("data").display().to_string(),
            ),
            (
                "SM_CHANNELS".into(),
                serde_json::to_string(&channels).unwrap_or_default(),
            ),
            ("SM_HPS".into(), serde_json::Value::Object(hps).to_string()),
            ("SM_CURRENT_HOST".into(), "algo-1".into()),
            ("SM_HOSTS".into(), "[\"algo-1\"]".into()),
            ("SM_NUM_CPUS".into(), cpus.to_string()),
            ("SM_NUM_GPUS".into(), "0".into()),
            ("SM_USER_ENTRY_POINT".into(), entry_name.clone()),
            ("SM_TRAINING_JOB_NAME".into(), spec.name.clone()),
            ("PYTHONUNBUFFERED".into(), "1".into()),
        ]);
        if rules.is_some() {
            env.push((
                "SMDEBUG_CONFIG_FILE_PATH".into(),
                config
                    .join(debugger::SMDEBUG_CONFIG_FILE)
                    .display()
                    .to_string(),
            ));
        }
        for (k, v) in &spec.hyperparameters {
            env.push((format!("SM_HP_{}", env_name(k)), v.clone()));
        }
        let mut command = if entry_name.ends_with(".py") {
            let mut c = std::process::Command::new(rustmaker_process::python());
            c.arg(&entry_name);
            c
        } else {
            std::process::Command::new(code.join(&entry_name))
        };
        // The toolkit passes the hyperparameters as arguments too.
        for (k, v) in &spec.hyperparameters {
            command.arg(format!("--{k}")).arg(v);
        }
        use std::os::unix::process::CommandExt;
        command
            .current_dir(&code)
            .envs(env)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .map_err(|e| MlError::Input(format!("cannot run {entry_name}: {e}")))?;
        let pid = child.id();
        let (tx, rx) = mpsc::channel::<String>();
        let readers: Vec<_> = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|stream| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream).lines() {
                    match line {
                        Ok(l) => {
                            if tx.send(l).is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
        drop(tx);
        let started = Instant::now();
        let mut steps: BTreeMap<String, u64> = BTreeMap::new();
        let mut last: BTreeMap<String, f64> = BTreeMap::new();
        let mut tail: std::collections::VecDeque<String> = Default::default();
        let mut stopping: Option<(Instant, String)> = None;
        let mut polled = Instant::now();
        let mut handle_line =
            |line: String, log: &mut Log, watcher: &mut dyn Watcher| -> Result<(), MlError> {
                log.line(&line);
                watcher.log(&line);
                let mut found = Vec::new();
                for (metric, re) in &self.metric_definitions {
                    for caps in re.captures_iter(&line) {
                        if let Some(v) = caps
                            .get(1)
                            .and_then(|m| m.as_str().trim().parse::<f64>().ok())
                        {
                            found.push((metric.clone(), v));
                        }
                    }
                }
                for (metric, v) in found {
                    let step = steps.entry(metric.clone()).or_insert(0);
                    store.log_metrics(&spec.name, *step, &[(metric.clone(), v)])?;
                    watcher.metrics(*step, &[(metric.clone(), v)]);
                    *step += 1;
                    last.insert(metric, v);
                }
                tail.push_back(line);
                if tail.len() > 20 {
                    tail.pop_front();
                }
                Ok(())
            };
        let exit = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => handle_line(line, log, watcher)?,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().map_err(|e| MlError::Training(e.to_string()))?;
                    break status;
                }
            }
            if stopping.is_none() {
                let over = self.max_runtime.is_some_and(|m| started.elapsed() > m);
                if over {
                    stopping = Some((Instant::now(), "MaxRuntimeInSeconds exceeded".to_owned()));
                } else if watcher.should_stop() || store.stop_requested(&spec.name) {
                    let why = watcher
                        .stop_reason()
                        .unwrap_or_else(|| STOPPED_BY_USER.into());
                    stopping = Some((Instant::now(), why));
                } else if let Some(why) =
                    rules.and_then(|r| poll_rules(r, &mut polled, log, watcher))
                {
                    stopping = Some((Instant::now(), why));
                }
                if stopping.is_some() {
                    rustmaker_process::kill_group(pid, libc::SIGTERM);
                }
            } else if let Some((since, _)) = stopping {
                // A program that ignores SIGTERM gets SIGKILL after 5 s, as SageMaker does
                // (it waits 120 s).
                if since.elapsed() > Duration::from_secs(5) {
                    rustmaker_process::kill_group(pid, libc::SIGKILL);
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                // The program is gone; take the lines still buffered.
                while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                    handle_line(line, log, watcher)?;
                }
                break status;
            }
        };
        // Anything the program left running in its group goes with it.
        rustmaker_process::kill_group(pid, libc::SIGKILL);
        for r in readers {
            let _ = r.join();
        }
        let metrics: Vec<(String, f64)> = last.into_iter().collect();
        if let Some((_, why)) = stopping {
            return Ok((Status::Stopped, Some(why), metrics));
        }
        if exit.success() {
            return Ok((Status::Completed, None, metrics));
        }
        // SageMaker's convention: a program says why it failed in output/failure.
        let failure_file = std::fs::read_to_string(output.join("failure")).ok();
        let code = exit
            .code()
            .map(|c| format!("exit status {c}"))
            .unwrap_or_else(|| "a signal".into());
        let reason = match failure_file.filter(|f| !f.trim().is_empty()) {
            Some(text) => format!("{entry_name} failed ({code}): {}", text.trim()),
            None => format!(
                "{entry_name} ended with {code}; the last lines of its log:\n{}",
                tail.iter()
                    .rev()
                    .take(10)
                    .rev()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        };
        Ok((Status::Failed, Some(reason), metrics))
    }
}

/// Reads the program's new steps into its rules every quarter second; the reason to stop
/// when a rule with StopTraining fired.
fn poll_rules(
    rules: &debugger::SharedRules,
    polled: &mut Instant,
    log: &mut Log,
    watcher: &mut dyn Watcher,
) -> Option<String> {
    if polled.elapsed() < Duration::from_millis(250) {
        return None;
    }
    *polled = Instant::now();
    let mut r = debugger::lock(rules);
    if let Err(e) = r.poll() {
        log.line(&format!("debugger: {e}"));
    }
    r.check_idle();
    watcher.rules(&r.summary());
    r.stop().map(|s| s.to_string())
}
