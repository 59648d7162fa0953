//! Rust cells, evaluated by evcxr in a child process that survives the user's panics.
//!
//! evcxr starts its child and compiles a first expression when its context is created (about
//! 0.5 s; rust-analyzer's first analysis, seconds more, goes on behind it on a thread of its own
//! with our evcxr patch, vendor/README.md); we do that on a background thread so the kernel
//! answers `kernel_info` at once.
//! The child's stdout and stderr arrive line by line on channels; a forwarder thread sends
//! them to the current cell and recognises a panic's report on stderr, which evcxr itself
//! only prints, so that the cell fails with a proper `error`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{select, Receiver, Sender};
use evcxr::{CommandContext, EvalCallbacks, EvalContextOutputs};
use serde_json::Value;

use rustmaker_jupyter::server::io::{CellIo, StreamSink};
use rustmaker_jupyter::server::{Bundle, ExecutionError};

use super::cell_process;
use super::final_value::{self, FinalValue, Rewrite};

/// After a cell ends, how long stderr must stay quiet before its report is considered whole.
/// (evcxr reads the child's stderr on its own thread, so a panic message may trail a little.)
const STDERR_SETTLE: Duration = Duration::from_millis(3);

/// How long a completion request may retry evcxr's analysis before answering with nothing.
const COMPLETION_PATIENCE: Duration = Duration::from_secs(5);

/// `0` leaves the final-value trait out (evcxr's own two builds for a displayed value).
const FINAL_VALUE_ENV: &str = "RUSTMAKER_FINAL_VALUE_TRAIT";

/// When the background start of evcxr begins if no front end has asked for kernel_info yet.
const WARM_UP_AT_LATEST: Duration = Duration::from_millis(500);

type Started = Result<(CommandContext, EvalContextOutputs), String>;

enum State {
    Starting(JoinHandle<Started>),
    Ready(Box<CommandContext>, Forwarder),
    Failed(String),
}

/// What the interrupter needs: the child process while a cell runs in it.
#[derive(Default)]
struct Running {
    child: Option<Arc<Mutex<std::process::Child>>>,
    evaluating: bool,
    interrupted: bool,
}

pub struct RustEngine {
    state: Option<State>,
    running: Arc<Mutex<Running>>,
    go: Option<std::sync::mpsc::Sender<()>>,
    /// Why evcxr.toml could not be applied, told once in the first cell.
    config_error: Option<String>,
    /// The settings the session's final values follow (see `final_value`); None where the
    /// trait is not used.
    final_value: Option<FinalValue>,
    /// The settings of the trait's items the session holds, once a cell put them in.
    final_value_defined: Option<FinalValue>,
}

impl RustEngine {
    /// Starts evcxr in the background.
    pub fn start() -> Self {
        cell_process::forget_serving(std::process::id());
        let final_value_wanted = std::env::var_os(FINAL_VALUE_ENV).is_none_or(|v| v != "0");
        let (go, wait) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("evcxr-start".into())
            .spawn(move || {
                let _ = wait.recv_timeout(WARM_UP_AT_LATEST);
                CommandContext::new().map_err(|e| e.to_string())
            })
            .expect("spawn the evcxr start thread");
        RustEngine {
            state: Some(State::Starting(handle)),
            running: Arc::default(),
            go: Some(go),
            config_error: None,
            final_value: final_value_wanted.then(FinalValue::default),
            final_value_defined: None,
        }
    }

    /// Lets the background start of evcxr begin now.
    pub fn warm_up(&mut self) {
        if let Some(go) = self.go.take() {
            let _ = go.send(());
        }
    }

    /// Kills the process running the cell if (and only if) one runs: the cells' runtime then
    /// goes on from its snapshot of the variables before the cell, or, where it had none,
    /// evcxr restarts it empty.
    pub fn interrupter(&self) -> impl Fn() + Send + Sync + 'static {
        let running = self.running.clone();
        move || {
            let mut running = running.lock().expect("running lock");
            if running.evaluating {
                running.interrupted = true;
                match cell_process::serving_pid(std::process::id()) {
                    // SAFETY: a plain signal to the process the runtime named as serving.
                    Some(pid) => unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    },
                    None => {
                        if let Some(child) = &running.child {
                            let _ = child.lock().expect("child lock").kill();
                        }
                    }
                }
            }
        }
    }

    pub fn shutdown(&mut self) {
        if let Some(State::Ready(ctx, _)) = &self.state {
            let _ = ctx.process_handle().lock().expect("child lock").kill();
        }
        let file = cell_process::serving_file(std::process::id());
        if let Some(pid) = cell_process::serving_pid(std::process::id()) {
            // SAFETY: as in the interrupter.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = std::fs::remove_file(file);
    }

    /// The ready context, waiting for the background start if needed.
    fn ready(&mut self) -> Result<(&mut CommandContext, &Forwarder), ExecutionError> {
        self.warm_up();
        if let Some(State::Starting(_)) = self.state {
            let Some(State::Starting(handle)) = self.state.take() else {
                unreachable!()
            };
            let started = handle
                .join()
                .unwrap_or_else(|_| Err("the evcxr start thread panicked".into()));
            self.state = Some(match started {
                Ok((mut ctx, outputs)) => {
                    self.running.lock().expect("running lock").child = Some(ctx.process_handle());
                    let forwarder = Forwarder::spawn(outputs);
                    // evcxr users keep dependencies and a prelude in evcxr.toml (in the
                    // working directory or evcxr's config directory); apply it as
                    // evcxr_jupyter does. A broken one is reported, not fatal.
                    if let Err(e) = ctx.execute(":load_config --quiet") {
                        tracing::warn!("evcxr.toml not applied: {e}");
                        self.config_error = Some(format!(
                            "warning: the evcxr.toml configuration was not applied: {e}\n"
                        ));
                    }
                    // evcxr's init.evcxr may hold `:fmt` or `:types`, which load_config ran.
                    let init = evcxr::config_dir()
                        .and_then(|dir| std::fs::read_to_string(dir.join("init.evcxr")).ok());
                    if let (Some(init), Some(settings)) = (init, self.final_value.as_mut()) {
                        settings.observe(&init);
                    }
                    forwarder.finish();
                    State::Ready(Box::new(ctx), forwarder)
                }
                Err(e) => {
                    tracing::error!("evcxr did not start: {e}");
                    State::Failed(e)
                }
            });
        }
        match self.state.as_mut() {
            Some(State::Ready(ctx, fwd)) => Ok((ctx.as_mut(), fwd)),
            Some(State::Failed(e)) => Err(ExecutionError::new(
                "RustUnavailable",
                format!(
                    "Rust cells cannot run because evcxr failed to start: {e}. \
                     Check that `cargo` and `rustc` are on the kernel's PATH (install Rust with rustup), \
                     then restart the kernel. Magics still work."
                ),
            )),
            _ => unreachable!("state is always set"),
        }
    }

    /// Evaluates `code`, streaming its output to `sink` (or nowhere), answering input
    /// requests through `io`.
    pub fn eval(
        &mut self,
        code: &str,
        io: Option<&CellIo>,
    ) -> Result<Option<Bundle>, ExecutionError> {
        self.ready()?;
        if let (Some(note), Some(io)) = (self.config_error.take(), io) {
            io.stderr(&note);
        }
        let Some(settings) = self.final_value.clone() else {
            return self.run(code, None, io);
        };
        // The settings as the cell's own `:fmt` or `:types` lines will leave them.
        let mut after = settings;
        after.observe(code);
        let defined = {
            let (ctx, _) = self.ready()?;
            ctx.defined_item_names()
                .any(|name| name == final_value::MODULE)
        };
        let items = (!defined || self.final_value_defined.as_ref() != Some(&after))
            .then(|| after.prelude());
        let rewrite = Rewrite::of(code, items.as_deref(), after.active());
        let result = self.run(code, rewrite.as_ref(), io);
        match &result {
            Err(e) if e.ename == "CompilationError" && final_value::blamed(e) => {
                // Never expected; but a session where the trait does not compile goes on
                // without it rather than failing every cell.
                tracing::warn!(
                    "the final-value trait did not compile, left out: {}",
                    e.evalue
                );
                self.final_value = None;
                return self.run(code, None, io);
            }
            Err(e) if e.ename == "CompilationError" => {}
            _ => {
                if rewrite.as_ref().is_some_and(Rewrite::has_items) {
                    self.final_value_defined = Some(after.clone());
                }
                self.final_value = Some(after);
            }
        }
        result
    }

    /// Runs `code` in evcxr, as `rewrite` has it where there is one.
    fn run(
        &mut self,
        code: &str,
        rewrite: Option<&Rewrite>,
        io: Option<&CellIo>,
    ) -> Result<Option<Bundle>, ExecutionError> {
        let running = self.running.clone();
        let (ctx, fwd) = self.ready()?;
        fwd.target(io.map(CellIo::stream_sink));
        {
            let mut r = running.lock().expect("running lock");
            r.evaluating = true;
            r.interrupted = false;
        }
        let result = ctx.execute_with_callbacks(
            rewrite.map_or(code, |r| r.code.as_str()),
            &mut EvalCallbacks {
                input_reader: &|req| match io.map(|io| io.input(&req.prompt, req.is_password)) {
                    Some(Ok(value)) => value,
                    Some(Err(e)) => {
                        if let Some(io) = io {
                            io.stderr(&format!("input unavailable: {e}\n"));
                        }
                        String::new()
                    }
                    None => String::new(),
                },
            },
        );
        let interrupted = {
            let mut r = running.lock().expect("running lock");
            r.evaluating = false;
            r.interrupted
        };
        let panic = fwd.finish();
        fwd.target(None);
        match result {
            Ok(_) if interrupted => Err(ExecutionError::new(
                "KeyboardInterrupt",
                "interrupted: the cell was stopped; the variables are as they were before it",
            )),
            Ok(_) if panic.is_some() => Err(panic_error(panic.unwrap_or_default())),
            Ok(outputs) => {
                // `:timing` asks evcxr to time each cell; show it as evcxr_jupyter does.
                if let (Some(took), Some(io)) = (outputs.timing, io) {
                    let ms = took.as_millis();
                    let mut data = Bundle::new();
                    data.insert("text/plain".into(), Value::String(format!("Took {ms} ms")));
                    data.insert(
                        "text/html".into(),
                        Value::String(format!("<span style=\"color: rgba(0,0,0,0.4);\">Took {ms} ms</span>")),
                    );
                    io.display(data, None);
                }
                Ok(bundle(outputs.content_by_mime_type))
            }
            Err(evcxr::Error::SubprocessTerminated(_)) if interrupted => Err(interrupted_error()),
            Err(evcxr::Error::SubprocessTerminated(why)) => Err(ExecutionError::new(
                "ProcessDied",
                format!(
                    "the Rust evaluation process died ({}); variables from earlier cells are lost and the next cell starts afresh",
                    why.trim()
                ),
            )),
            Err(evcxr::Error::CompilationErrors(errors)) => {
                Err(compilation_error(&errors, code, rewrite))
            }
            Err(other) => Err(ExecutionError::new("Error", other.to_string())),
        }
    }

    /// The `Display` text of `expr`, evaluated in the user's Rust session. It is printed
    /// between evcxr's content markers so that it arrives whole, apart from the cell's stdout.
    pub fn display_text(&mut self, expr: &str) -> Result<String, ExecutionError> {
        const MIME: &str = "text/x-rustmaker-value";
        let code = format!(
            "{{ println!(\"EVCXR_BEGIN_CONTENT {MIME}\\n{{}}\\nEVCXR_END_CONTENT\", &({expr})); }}"
        );
        let bundle = self.eval(&code, None)?.unwrap_or_default();
        match bundle.get(MIME) {
            Some(Value::String(text)) => Ok(text.strip_suffix('\n').unwrap_or(text).to_owned()),
            _ => Err(ExecutionError::new(
                "Error",
                format!("`{expr}` produced no value"),
            )),
        }
    }

    /// Completions at `byte_pos`. evcxr's analysis can fail transiently (its first request
    /// loads the standard library's sources and runs `cargo metadata`, which waits on or fails
    /// against a busy machine's cargo locks), so an error is retried for up to
    /// [`COMPLETION_PATIENCE`], and an empty answer once, before the user gets nothing; what
    /// still fails is logged with its cause.
    pub fn completions(
        &mut self,
        code: &str,
        byte_pos: usize,
    ) -> Option<(Vec<String>, usize, usize)> {
        let (ctx, _) = match self.ready() {
            Ok(ready) => ready,
            Err(e) => {
                tracing::warn!("no Rust completions: {}", e.evalue);
                return None;
            }
        };
        let deadline = std::time::Instant::now() + COMPLETION_PATIENCE;
        let mut retried_empty = false;
        let mut pause = Duration::from_millis(50);
        loop {
            match ctx.completions(code, byte_pos) {
                Ok(c) if c.completions.is_empty() && !retried_empty => {
                    tracing::debug!("no Rust completions at {byte_pos}; asking once more");
                    retried_empty = true;
                }
                Ok(c) => {
                    let mut matches: Vec<String> = c
                        .completions
                        .into_iter()
                        .map(|c| c.code)
                        .filter(|code| !final_value::hidden(code))
                        .collect();
                    matches.dedup();
                    return Some((matches, c.start_offset, c.end_offset));
                }
                Err(e) if std::time::Instant::now() + pause < deadline => {
                    tracing::debug!("Rust completion failed ({e}); retrying");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(e) => {
                    tracing::warn!(
                        "no Rust completions: evcxr's analysis failed for {:?}: {e}",
                        COMPLETION_PATIENCE
                    );
                    return None;
                }
            }
        }
    }

    pub fn hover(&mut self, code: &str, byte_pos: usize) -> Option<(String, String)> {
        let (ctx, _) = self.ready().ok()?;
        ctx.hover_at(code, byte_pos)
            .ok()
            .filter(|(plain, _)| !plain.trim().is_empty())
    }
}

fn interrupted_error() -> ExecutionError {
    ExecutionError::new(
        "KeyboardInterrupt",
        "interrupted: the Rust evaluation process was stopped, so variables from earlier cells are lost \
         (its state can be kept only while it runs a single thread, and a cell had started others)",
    )
}

fn bundle(content: HashMap<String, String>) -> Option<Bundle> {
    // A cell ending in a statement-like expression (a `for` loop, a call returning `()`) has
    // nothing to show, as Python's `None` is not shown.
    let unit = content.len() == 1 && content.get("text/plain").is_some_and(|t| t.trim() == "()");
    if content.is_empty() || unit {
        return None;
    }
    let mut data = Bundle::new();
    for (mime, text) in content {
        let value = if mime.contains("json") {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        } else {
            Value::String(text)
        };
        data.insert(mime, value);
    }
    Some(data)
}

fn panic_error(lines: Vec<String>) -> ExecutionError {
    // "thread 'x' panicked at src/lib.rs:3:5:" then the message, then the backtrace.
    let message: Vec<&str> = lines
        .iter()
        .skip(1)
        .map(String::as_str)
        .take_while(|l| !l.starts_with("stack backtrace:") && !l.starts_with("note: "))
        .collect();
    ExecutionError {
        ename: "Panic".into(),
        evalue: message.join("\n"),
        traceback: lines,
    }
}

/// The cell's compilation errors, rendered against what the user wrote (`rewrite`: the
/// final-value rewrite evcxr compiled instead, whose positions are mapped back).
fn compilation_error(
    errors: &[evcxr::CompilationError],
    source: &str,
    rewrite: Option<&Rewrite>,
) -> ExecutionError {
    let map = |line, column| match rewrite {
        Some(r) => r.original(line, column),
        None => (line, column),
    };
    let mut traceback = Vec::new();
    for error in errors {
        let report = report(error, source, map);
        match report {
            Some(text) => traceback.extend(text.lines().map(str::to_owned)),
            None => {
                for spanned in error.spanned_messages() {
                    let Some(span) = &spanned.span else {
                        traceback.extend(spanned.lines.iter().cloned());
                        continue;
                    };
                    let (start_line, start) = map(span.start_line, span.start_column);
                    let (end_line, end) = map(span.end_line, span.end_column);
                    let lines = source.lines().skip(start_line - 1);
                    traceback.extend(lines.take(end_line + 1 - start_line).map(str::to_owned));
                    let pad = " ".repeat(start.saturating_sub(1));
                    let marks = "^".repeat(end.saturating_sub(start).max(1));
                    traceback.push(format!("{pad}{marks} {}", spanned.label));
                }
                traceback.push(format!("error: {}", error.message()));
            }
        }
    }
    let first = errors
        .first()
        .map(|e| e.message())
        .unwrap_or_else(|| "compilation failed".into());
    let evalue = match errors.len() {
        0 | 1 => first,
        n => format!("{first} (and {} more errors)", n - 1),
    };
    ExecutionError {
        ename: "CompilationError".into(),
        evalue,
        traceback,
    }
}

/// evcxr's report of an error (`CompilationError::build_report`, drawn by ariadne the same
/// way), its positions passed through `map` first. None for a source that is not ASCII, as
/// evcxr's: then the plain lines are shown.
fn report(
    error: &evcxr::CompilationError,
    source: &str,
    map: impl Fn(usize, usize) -> (usize, usize),
) -> Option<String> {
    use ariadne::{Color, ColorGenerator, Label, Report, ReportKind};
    if !source.is_ascii() {
        return None;
    }
    // 1-based line and column to a byte offset, as evcxr's `span_to_byte_range`.
    let offset = |(line, column): (usize, usize)| {
        let before: usize = source.lines().take(line - 1).map(str::len).sum();
        (before + column + line).saturating_sub(2).min(source.len())
    };
    let file = "cell".to_owned();
    let mut builder = Report::build(ReportKind::Error, (file.clone(), 0..source.len()))
        .with_message(error.message());
    if let Some(code) = error.code() {
        builder = builder.with_code(code);
    }
    let mut colors = ColorGenerator::new();
    let mut notes = String::new();
    for spanned in error.spanned_messages().iter().chain(error.help_spanned()) {
        match &spanned.span {
            Some(_) if spanned.label.is_empty() => {}
            Some(span) => {
                let start = offset(map(span.start_line, span.start_column));
                let end = offset(map(span.end_line, span.end_column)).max(start);
                // evcxr's light theme: the generator's colours inverted.
                let color = match colors.next() {
                    Color::Fixed(x) => Color::Fixed(255 - x),
                    other => other,
                };
                builder = builder.with_label(
                    Label::new((file.clone(), start..end))
                        .with_message(&spanned.label)
                        .with_color(color)
                        .with_order(10),
                );
            }
            None => notes.push_str(&spanned.label),
        }
    }
    if matches!(error.code(), Some("E0384" | "E0596")) {
        builder.set_note("You can change an existing variable to mutable like: `let mut x = x;`");
    } else if !notes.is_empty() {
        builder.set_note(notes);
    }
    let mut out = Vec::new();
    builder
        .finish()
        .write(ariadne::sources([(file, source.to_owned())]), &mut out)
        .ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Moves the child's output lines to the current cell, on its own thread.
struct Forwarder {
    target: Arc<Mutex<Option<StreamSink>>>,
    finish: Sender<Sender<Option<Vec<String>>>>,
}

impl Forwarder {
    fn spawn(outputs: EvalContextOutputs) -> Forwarder {
        let target: Arc<Mutex<Option<StreamSink>>> = Arc::default();
        let (finish, finishing) = crossbeam_channel::unbounded();
        let t = target.clone();
        std::thread::Builder::new()
            .name("evcxr-output".into())
            .spawn(move || forward(outputs.stdout, outputs.stderr, finishing, t))
            .expect("spawn the output forwarder");
        Forwarder { target, finish }
    }

    fn target(&self, sink: Option<StreamSink>) {
        *self.target.lock().expect("target lock") = sink;
    }

    /// Waits until every line of the cell is forwarded; returns a panic report if there was one.
    fn finish(&self) -> Option<Vec<String>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.finish.send(tx).ok()?;
        rx.recv().ok().flatten()
    }
}

fn forward(
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    finishing: Receiver<Sender<Option<Vec<String>>>>,
    target: Arc<Mutex<Option<StreamSink>>>,
) {
    let mut panic: Option<Vec<String>> = None;
    let send = |name: &'static str, line: String| {
        if let Some(sink) = target.lock().expect("target lock").as_ref() {
            sink.write(name, line + "\n");
        }
    };
    // The default panic hook writes "\nthread 'name' (id) panicked at file:line:col:"; a blank
    // line is held back until we know whether a panic report follows it.
    let mut held_blank = false;
    let mut on_stderr = |line: Option<String>, panic: &mut Option<Vec<String>>| {
        let Some(line) = line else {
            if std::mem::take(&mut held_blank) && panic.is_none() {
                send("stderr", String::new());
            }
            return;
        };
        if let Some(report) = panic.as_mut() {
            report.push(line);
        } else if line.starts_with("thread '") && line.contains(" panicked at ") {
            held_blank = false;
            *panic = Some(vec![line]);
        } else if line.is_empty() && !held_blank {
            held_blank = true;
        } else {
            if std::mem::take(&mut held_blank) {
                send("stderr", String::new());
            }
            send("stderr", line);
        }
    };
    loop {
        select! {
            recv(stdout) -> line => match line {
                Ok(line) => send("stdout", line),
                Err(_) => return,
            },
            recv(stderr) -> line => match line {
                Ok(line) => on_stderr(Some(line), &mut panic),
                Err(_) => return,
            },
            recv(finishing) -> done => {
                let Ok(done) = done else { return };
                for line in stdout.try_iter() {
                    send("stdout", line);
                }
                while let Ok(line) = stderr.recv_timeout(STDERR_SETTLE) {
                    on_stderr(Some(line), &mut panic);
                }
                on_stderr(None, &mut panic);
                let _ = done.send(panic.take());
            }
        }
    }
}
