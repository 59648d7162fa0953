//! The protocol server: binds the five sockets of a connection file, turns requests into
//! [`Executor`] calls and what the executor reports into replies and iopub messages, the way
//! ipykernel's kernelbase does. It knows nothing of Rust or magics.

pub mod executor;
pub mod history;
pub mod io;
pub mod iopub;
pub mod stdin;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jupyter_protocol::{ConnectionInfo, ExecuteRequest, JupyterMessage, JupyterMessageContent};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::{oneshot, watch};
use zeromq::{RepSocket, RouterSocket, Socket, SocketRecv, SocketSend, XPubSocket, ZmqMessage};

use crate::protocol::session::Session;
use crate::protocol::signing::Signer;
use crate::protocol::wire::Codec;
use crate::protocol::PROTOCOL_VERSION;
pub use executor::{Bundle, ExecutionError, Executor, Interrupter, KernelDescription};
use history::History;
use io::CellIo;
use iopub::{raw_content, IopubItem};
use stdin::InputAsk;

/// After a cell fails with `stop_on_error`, how long to wait for the next queued request
/// before deciding the queue is empty, and the most requests aborted at once.
const QUEUE_DRAIN_WAIT: Duration = Duration::from_millis(5);
const MAX_ABORTED: usize = 10_000;

/// How long a shutdown waits for the running cell to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce(&mut dyn Executor) + Send>;

/// The executor's own thread; calls wait for it without blocking the async runtime.
struct ExecThread {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl ExecThread {
    fn spawn(mut executor: Box<dyn Executor>) -> ExecThread {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("executor".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    let run = std::panic::AssertUnwindSafe(|| job(executor.as_mut()));
                    if std::panic::catch_unwind(run).is_err() {
                        tracing::error!(
                            "the executor panicked; the request fails and the kernel goes on"
                        );
                    }
                }
            })
            .expect("spawn the executor thread");
        ExecThread { jobs }
    }

    /// Queues a call without waiting for it.
    fn post(&self, f: impl FnOnce(&mut dyn Executor) + Send + 'static) {
        let _ = self.jobs.send(Box::new(f));
    }

    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Executor) -> R + Send + 'static,
    ) -> Result<R, ExecutionError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |e| {
            let _ = tx.send(f(e));
        });
        let gone = || {
            ExecutionError::new(
                "KernelError",
                "internal error in the kernel's executor (see the kernel log); the kernel is still running",
            )
        };
        self.jobs.send(job).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }
}

/// Everything the shell and control loops share.
struct Kernel {
    codec: Arc<Codec>,
    session: Session,
    iopub: UnboundedSender<IopubItem>,
    stdin: UnboundedSender<InputAsk>,
    exec: ExecThread,
    description: KernelDescription,
    interrupted: Arc<AtomicBool>,
    interrupter: Interrupter,
    shutdown: watch::Sender<bool>,
    answered_kernel_info: AtomicBool,
}

impl Kernel {
    fn publish(&self, msg: JupyterMessage) {
        let _ = self.iopub.send(IopubItem::Message(Box::new(msg)));
    }

    fn status(&self, parent: Option<&JupyterMessage>, state: &str) {
        let content = raw_content("status", json!({ "execution_state": state }));
        self.publish(self.session.message(parent.map(|p| &p.header), content));
    }

    /// Waits until everything published so far is on the wire.
    async fn iopub_barrier(&self) {
        let (tx, rx) = oneshot::channel();
        if self.iopub.send(IopubItem::Barrier(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        (self.interrupter)();
    }

    fn kernel_info(&self) -> Value {
        if !self.answered_kernel_info.swap(true, Ordering::SeqCst) {
            self.exec.post(|e| e.kernel_ready());
        }
        let d = &self.description;
        let links: Vec<Value> = d
            .help_links
            .iter()
            .map(|(text, url)| json!({ "text": text, "url": url }))
            .collect();
        json!({
            "status": "ok",
            "protocol_version": PROTOCOL_VERSION,
            "implementation": d.implementation,
            "implementation_version": d.implementation_version,
            "language_info": d.language_info,
            "banner": d.banner,
            "help_links": links,
            "debugger": false,
        })
    }
}

async fn send(socket: &mut RouterSocket, codec: &Codec, msg: &JupyterMessage) {
    match ZmqMessage::try_from(codec.encode(msg)) {
        Ok(frames) => {
            if let Err(e) = socket.send(frames).await {
                tracing::warn!("reply `{}` not sent: {e}", msg.header.msg_type);
            }
        }
        Err(e) => tracing::warn!("reply not framed: {e}"),
    }
}

fn reply(
    kernel: &Kernel,
    parent: &JupyterMessage,
    msg_type: &str,
    content: Value,
) -> JupyterMessage {
    kernel.session.reply(parent, raw_content(msg_type, content))
}

/// Binds the sockets of `info` and serves until a shutdown request.
pub async fn serve(info: ConnectionInfo, executor: Box<dyn Executor>) -> anyhow::Result<()> {
    let signer = Signer::new(&info.signature_scheme, &info.key)?;
    if !signer.is_signing() {
        tracing::warn!("the connection file has an empty key: messages are not signed");
    }
    let codec = Arc::new(Codec::new(signer));
    let session = Session::default();

    let mut shell = RouterSocket::new();
    let mut control = RouterSocket::new();
    let mut stdin_socket = RouterSocket::new();
    let mut iopub_socket = XPubSocket::new();
    let mut heartbeat = RepSocket::new();
    bind(&mut shell, "shell", &info.shell_url()).await?;
    bind(&mut control, "control", &info.control_url()).await?;
    bind(&mut stdin_socket, "stdin", &info.stdin_url()).await?;
    bind(&mut iopub_socket, "iopub", &info.iopub_url()).await?;
    bind(&mut heartbeat, "heartbeat", &info.hb_url()).await?;
    tracing::info!("listening on {} (shell)", info.shell_url());

    let (iopub_tx, iopub_rx) = unbounded_channel();
    tokio::spawn(iopub::run(
        iopub_socket,
        codec.clone(),
        session.clone(),
        iopub_rx,
    ));
    let (stdin_tx, stdin_rx) = unbounded_channel();
    tokio::spawn(stdin::run(
        stdin_socket,
        codec.clone(),
        session.clone(),
        stdin_rx,
    ));
    tokio::spawn(serve_heartbeat(heartbeat));

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let kernel = Arc::new(Kernel {
        codec,
        session,
        iopub: iopub_tx,
        stdin: stdin_tx,
        description: executor.describe(),
        interrupter: executor.interrupter(),
        exec: ExecThread::spawn(executor),
        interrupted: Arc::new(AtomicBool::new(false)),
        shutdown: shutdown_tx,
        answered_kernel_info: AtomicBool::new(false),
    });
    kernel.status(None, "starting");

    tokio::spawn(serve_control(kernel.clone(), control));
    tokio::spawn(interrupt_on_sigint(kernel.clone()));
    Shell {
        kernel: kernel.clone(),
        socket: shell,
        count: 0,
        history: History::new(1),
    }
    .serve(shutdown_rx)
    .await;

    kernel.interrupt();
    let _ = kernel.exec.call(|e| e.shutdown()).await;
    kernel.iopub_barrier().await;
    Ok(())
}

async fn bind<S: Socket>(socket: &mut S, name: &str, url: &str) -> anyhow::Result<()> {
    socket.bind(url).await.with_context(|| {
        format!(
            "cannot bind the {name} socket to {url}: is another kernel using this connection file?"
        )
    })?;
    Ok(())
}

async fn serve_heartbeat(mut socket: RepSocket) {
    loop {
        match socket.recv().await {
            Ok(ping) => {
                if let Err(e) = socket.send(ping).await {
                    tracing::debug!("heartbeat send failed: {e}");
                }
            }
            Err(e) => {
                tracing::debug!("heartbeat receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// `interrupt_mode: signal`: SIGINT interrupts the running cell instead of killing the kernel.
async fn interrupt_on_sigint(kernel: Arc<Kernel>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut sigint) = signal(SignalKind::interrupt()) else {
        tracing::warn!("cannot listen for SIGINT; only interrupt_request messages will interrupt");
        return;
    };
    while sigint.recv().await.is_some() {
        tracing::info!("SIGINT: interrupting the running cell");
        kernel.interrupt();
    }
}

/// Stops the running cell and ends the shell loop; a cell that does not stop in time (a magic
/// ignoring its interrupt) does not keep the process alive.
fn begin_shutdown(kernel: &Kernel) {
    kernel.interrupt();
    let _ = kernel.shutdown.send(true);
    std::thread::spawn(|| {
        std::thread::sleep(SHUTDOWN_GRACE);
        tracing::warn!(
            "the running cell did not stop within {SHUTDOWN_GRACE:?} of shutdown; exiting"
        );
        std::process::exit(0);
    });
}

async fn serve_control(kernel: Arc<Kernel>, mut socket: RouterSocket) {
    loop {
        let frames = match socket.recv().await {
            Ok(m) => m.into_vec(),
            Err(e) => {
                tracing::warn!("control receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let msg = match kernel.codec.decode(frames) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("dropped a message on control: {e}");
                continue;
            }
        };
        kernel.status(Some(&msg), "busy");
        match &msg.content {
            JupyterMessageContent::KernelInfoRequest(_) => {
                let r = reply(&kernel, &msg, "kernel_info_reply", kernel.kernel_info());
                send(&mut socket, &kernel.codec, &r).await;
            }
            JupyterMessageContent::InterruptRequest(_) => {
                kernel.interrupt();
                let r = reply(&kernel, &msg, "interrupt_reply", json!({ "status": "ok" }));
                send(&mut socket, &kernel.codec, &r).await;
            }
            JupyterMessageContent::ShutdownRequest(req) => {
                let content = json!({ "status": "ok", "restart": req.restart });
                let r = reply(&kernel, &msg, "shutdown_reply", content.clone());
                // ipykernel also tells every client on iopub.
                kernel.publish(reply(&kernel, &msg, "shutdown_reply", content));
                kernel.status(Some(&msg), "idle");
                kernel.iopub_barrier().await;
                send(&mut socket, &kernel.codec, &r).await;
                begin_shutdown(&kernel);
                return;
            }
            JupyterMessageContent::DebugRequest(_) => {
                let content = json!({
                    "status": "error", "ename": "NotImplementedError",
                    "evalue": "this kernel has no debugger (kernel_info says debugger: false)",
                    "traceback": [],
                });
                let r = reply(&kernel, &msg, "debug_reply", content);
                send(&mut socket, &kernel.codec, &r).await;
            }
            _ => tracing::warn!(
                "`{}` is not a control-channel request; ignored",
                msg.header.msg_type
            ),
        }
        kernel.status(Some(&msg), "idle");
    }
}

struct Shell {
    kernel: Arc<Kernel>,
    socket: RouterSocket,
    count: usize,
    history: History,
}

impl Shell {
    async fn serve(mut self, mut shutdown: watch::Receiver<bool>) {
        // Requests that were already queued when a cell failed with `stop_on_error`; their
        // execute_requests are aborted, as ipykernel does, everything else is answered.
        let mut backlog: VecDeque<JupyterMessage> = VecDeque::new();
        loop {
            let (msg, abort) = match backlog.pop_front() {
                Some(msg) => (msg, true),
                None => {
                    let received = tokio::select! {
                        r = self.socket.recv() => r,
                        _ = shutdown.changed() => break,
                    };
                    match received {
                        Ok(m) => match self.kernel.codec.decode(m.into_vec()) {
                            Ok(msg) => (msg, false),
                            Err(e) => {
                                tracing::error!("dropped a message on shell: {e}");
                                continue;
                            }
                        },
                        Err(e) => {
                            tracing::warn!("shell receive failed: {e}");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
            };
            if *shutdown.borrow() {
                break;
            }
            self.kernel.status(Some(&msg), "busy");
            let queued = self.handle(&msg, abort).await;
            self.kernel.status(Some(&msg), "idle");
            backlog.extend(queued);
        }
    }

    /// Takes every request already waiting on the shell socket (none can be a reaction to a
    /// reply we have not sent yet).
    async fn drain_queued(&mut self) -> Vec<JupyterMessage> {
        let mut queued = Vec::new();
        while queued.len() < MAX_ABORTED {
            match tokio::time::timeout(QUEUE_DRAIN_WAIT, self.socket.recv()).await {
                Ok(Ok(m)) => match self.kernel.codec.decode(m.into_vec()) {
                    Ok(msg) => queued.push(msg),
                    Err(e) => tracing::error!("dropped a message on shell: {e}"),
                },
                Ok(Err(_)) | Err(_) => break,
            }
        }
        queued
    }

    /// Handles one request. After a cell that failed with `stop_on_error`, returns the
    /// requests that were queued behind it.
    async fn handle(&mut self, msg: &JupyterMessage, abort: bool) -> Vec<JupyterMessage> {
        let k = self.kernel.clone();
        let answer = |msg_type: &str, content: Value| reply(&k, msg, msg_type, content);
        let r = match &msg.content {
            JupyterMessageContent::ExecuteRequest(_) if abort => {
                tracing::info!("aborting an execute_request queued behind a failed cell");
                answer(
                    "execute_reply",
                    json!({ "status": "aborted", "execution_count": self.count }),
                )
            }
            JupyterMessageContent::ExecuteRequest(req) => {
                let (r, failed) = self.execute(msg, req.clone()).await;
                k.iopub_barrier().await;
                let queued = if failed && req.stop_on_error {
                    self.drain_queued().await
                } else {
                    Vec::new()
                };
                send(&mut self.socket, &k.codec, &r).await;
                return queued;
            }
            JupyterMessageContent::KernelInfoRequest(_) => {
                answer("kernel_info_reply", k.kernel_info())
            }
            JupyterMessageContent::IsCompleteRequest(req) => {
                let code = req.code.clone();
                match k.exec.call(move |e| e.is_complete(&code)).await {
                    Ok(r) => answer("is_complete_reply", json!(r)),
                    Err(e) => answer(
                        "is_complete_reply",
                        json!({ "status": "unknown", "note": e.evalue }),
                    ),
                }
            }
            JupyterMessageContent::CompleteRequest(req) => {
                let (code, pos) = (req.code.clone(), req.cursor_pos);
                match k.exec.call(move |e| e.complete(&code, pos)).await {
                    Ok(r) => answer("complete_reply", json!(r)),
                    Err(e) => answer("complete_reply", error_reply(&e)),
                }
            }
            JupyterMessageContent::InspectRequest(req) => {
                let (code, pos, level) = (
                    req.code.clone(),
                    req.cursor_pos,
                    req.detail_level.unwrap_or(0) as u8,
                );
                match k.exec.call(move |e| e.inspect(&code, pos, level)).await {
                    Ok(Some(data)) => answer(
                        "inspect_reply",
                        json!({ "status": "ok", "found": true, "data": data, "metadata": {} }),
                    ),
                    Ok(None) => answer(
                        "inspect_reply",
                        json!({ "status": "ok", "found": false, "data": {}, "metadata": {} }),
                    ),
                    Err(e) => answer("inspect_reply", error_reply(&e)),
                }
            }
            JupyterMessageContent::HistoryRequest(req) => answer(
                "history_reply",
                json!({ "status": "ok", "history": self.history.query(req) }),
            ),
            JupyterMessageContent::CommInfoRequest(_) => {
                answer("comm_info_reply", json!({ "status": "ok", "comms": {} }))
            }
            JupyterMessageContent::CommOpen(open) => {
                // No comm targets are registered: close at once, as the protocol asks.
                tracing::info!(
                    "comm_open for unknown target `{}`; closing it",
                    open.target_name
                );
                k.publish(k.session.message(
                    Some(&msg.header),
                    raw_content("comm_close", json!({ "comm_id": open.comm_id, "data": {} })),
                ));
                return Vec::new();
            }
            JupyterMessageContent::CommMsg(_) | JupyterMessageContent::CommClose(_) => {
                tracing::info!(
                    "`{}` for a comm this kernel does not hold; ignored",
                    msg.header.msg_type
                );
                return Vec::new();
            }
            JupyterMessageContent::ShutdownRequest(req) => {
                // Deprecated on shell, still honoured.
                let content = json!({ "status": "ok", "restart": req.restart });
                k.publish(answer("shutdown_reply", content.clone()));
                let r = answer("shutdown_reply", content);
                k.iopub_barrier().await;
                send(&mut self.socket, &k.codec, &r).await;
                begin_shutdown(&k);
                return Vec::new();
            }
            _ => {
                tracing::warn!("unknown shell request `{}`; ignored", msg.header.msg_type);
                return Vec::new();
            }
        };
        send(&mut self.socket, &k.codec, &r).await;
        Vec::new()
    }

    /// Runs one cell; returns the reply and whether the cell failed.
    async fn execute(
        &mut self,
        msg: &JupyterMessage,
        req: ExecuteRequest,
    ) -> (JupyterMessage, bool) {
        let k = self.kernel.clone();
        let store_history = req.store_history && !req.silent;
        if store_history {
            self.count += 1;
        }
        let count = self.count;
        if !req.silent {
            k.publish(k.session.message(
                Some(&msg.header),
                raw_content(
                    "execute_input",
                    json!({ "code": req.code, "execution_count": count }),
                ),
            ));
        }
        k.interrupted.store(false, Ordering::SeqCst);
        let stdin = req.allow_stdin.then(|| k.stdin.clone());
        let mut io = CellIo::new(
            msg.header.clone(),
            msg.zmq_identities.clone(),
            k.iopub.clone(),
            stdin,
            k.interrupted.clone(),
            count,
        );
        let code = req.code.clone();
        let outcome = k
            .exec
            .call(move |e| {
                let result = e.execute(&code, &mut io);
                (result, io.take_payload())
            })
            .await;
        let (result, payload) = match outcome {
            Ok(r) => r,
            Err(e) => (Err(e), Vec::new()),
        };
        let (content, failed, output) = match result {
            Ok(bundle) => {
                let output = bundle
                    .as_ref()
                    .and_then(|b| b.get("text/plain"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if let (Some(data), false) = (bundle, req.silent) {
                    k.publish(k.session.message(
                        Some(&msg.header),
                        raw_content(
                            "execute_result",
                            json!({ "execution_count": count, "data": data, "metadata": {} }),
                        ),
                    ));
                }
                let expressions = self
                    .user_expressions(req.user_expressions.unwrap_or_default())
                    .await;
                let content = json!({
                    "status": "ok", "execution_count": count,
                    "payload": payload, "user_expressions": expressions,
                });
                (content, false, output)
            }
            Err(err) => {
                k.publish(k.session.message(
                    Some(&msg.header),
                    raw_content(
                        "error",
                        json!({ "ename": err.ename, "evalue": err.evalue, "traceback": err.traceback }),
                    ),
                ));
                let content = json!({
                    "status": "error", "execution_count": count,
                    "ename": err.ename, "evalue": err.evalue, "traceback": err.traceback,
                    "payload": payload, "user_expressions": {},
                });
                (content, true, None)
            }
        };
        if store_history {
            self.history.record(count, &req.code, output);
        }
        (reply(&k, msg, "execute_reply", content), failed)
    }

    async fn user_expressions(&self, expressions: HashMap<String, String>) -> Map<String, Value> {
        let mut results = Map::new();
        for (name, expr) in expressions {
            let outcome = self.kernel.exec.call(move |e| e.evaluate(&expr)).await;
            let value = match outcome.and_then(|r| r) {
                Ok(data) => json!({ "status": "ok", "data": data, "metadata": {} }),
                Err(e) => {
                    json!({ "status": "error", "ename": e.ename, "evalue": e.evalue, "traceback": e.traceback })
                }
            };
            results.insert(name, value);
        }
        results
    }
}

fn error_reply(e: &ExecutionError) -> Value {
    json!({ "status": "error", "ename": e.ename, "evalue": e.evalue, "traceback": e.traceback })
}
