"""The kernel driven by a real client (jupyter_client), including the paths where things go
wrong: panics, interrupts, forged and malformed messages, input requests."""

from __future__ import annotations

import json
import pathlib
import re
import signal
import time
import uuid

import pytest
import zmq
from jupyter_client.session import Session

from conftest import collect, reply_to, results, run, start_kernel, stream_text, wait_for_iopub


def test_variables_persist_across_cells(kernel):
    reply, _ = run(kernel, "let answer = 40;")
    assert reply["status"] == "ok"
    reply, outputs = run(kernel, "answer + 2")
    assert reply["status"] == "ok"
    result = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert result[0]["content"]["data"]["text/plain"] == "42"
    assert result[0]["content"]["execution_count"] == reply["execution_count"]


def test_evcxr_commands_work(kernel):
    reply, outputs = run(kernel, ":timing")
    assert reply["status"] == "ok"
    reply, outputs = run(kernel, "2 * 21")
    displays = [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "display_data"]
    assert displays and displays[0].startswith("Took ") and displays[0].endswith(" ms")
    run(kernel, ":timing")
    run(kernel, "let shown = 1;")
    reply, outputs = run(kernel, ":vars")
    assert reply["status"] == "ok"
    text = str([m["content"] for m in outputs])
    assert "shown" in text and "i32" in text


def _shown(outputs) -> list[dict]:
    return [m["content"]["data"] for m in outputs if m["msg_type"] == "execute_result"]


def _last_build_source(kernel) -> str:
    """The source evcxr compiled last (its crate's lib.rs, as `:last_compile_dir` names it)."""
    _, outputs = run(kernel, ":last_compile_dir")
    folder = _shown(outputs)[0]["text/plain"].strip()
    return (pathlib.Path(folder) / "src" / "lib.rs").read_text()


def test_a_final_value_is_shown_after_one_build_and_its_own_display_still_wins(kernel):
    # One build: the last one compiled the first form evcxr tries, not its fallback.
    reply, outputs = run(kernel, "(1..4).map(|n| n * n).collect::<Vec<u64>>()")
    assert reply["status"] == "ok" and _shown(outputs)[0]["text/plain"] == "[1, 4, 9]"
    source = _last_build_source(kernel)
    assert ".evcxr_display();" in source and "evcxr_send_text_plain" not in source
    # A value's own evcxr_display (inherent, as plotters' figures have) is still the one used.
    run(kernel, 'struct Badge; impl Badge { fn evcxr_display(&self) { '
                'println!("EVCXR_BEGIN_CONTENT text/html\\n<b>badge</b>\\nEVCXR_END_CONTENT"); } }')
    reply, outputs = run(kernel, "Badge")
    assert _shown(outputs) == [{"text/html": "<b>badge</b>"}], outputs
    # ... and a trait's in scope too.
    run(kernel, 'struct Card; trait Show { fn evcxr_display(&self); } impl Show for Card { fn evcxr_display(&self) { '
                'println!("EVCXR_BEGIN_CONTENT text/html\\n<i>card</i>\\nEVCXR_END_CONTENT"); } }')
    reply, outputs = run(kernel, "Card")
    assert _shown(outputs) == [{"text/html": "<i>card</i>"}], outputs
    # Immutable places, of an earlier cell or this one, are shown through a reference: one build.
    run(kernel, "let fixed = String::from(\"kept\");")
    reply, outputs = run(kernel, "// the variable\nfixed")
    assert _shown(outputs)[0]["text/plain"] == '"kept"'
    assert "evcxr_send_text_plain" not in _last_build_source(kernel)
    reply, outputs = run(kernel, "let local = [1u8; 2];\nlocal[0]")
    assert reply["status"] == "ok" and _shown(outputs)[0]["text/plain"] == "1"
    reply, outputs = run(kernel, "fixed")
    assert reply["status"] == "ok", "the variable is still there"
    # An error in the rewritten expression points at what the user wrote.
    reply, outputs = run(kernel, "let a = 1;\n  a + nope")
    assert reply["status"] == "error" and "cannot find value `nope`" in reply["evalue"]
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in "\n".join(reply["traceback"]).splitlines()]
    traceback = "\n".join(lines)
    assert "  a + nope" in traceback and "&(" not in traceback, traceback
    caret_line = next(line for line in lines if "┬" in line)
    source_line = next(line for line in lines if "a + nope" in line)
    underline = min(caret_line.find(c, caret_line.index("│") + 1) % 1000 for c in "─┬")
    assert underline == source_line.index("nope"), traceback
    # Where the trait cannot apply, evcxr's own second build answers as before.
    run(kernel, "struct Opaque;")
    reply, outputs = run(kernel, "Opaque")
    assert reply["status"] == "error" and "doesn't implement `Debug`" in reply["evalue"]
    # evcxr's :fmt is followed: a Debug format by the trait, any other by evcxr.
    run(kernel, ":fmt {:#?}")
    reply, outputs = run(kernel, "(1, 2)")
    assert _shown(outputs)[0]["text/plain"] == "(\n    1,\n    2,\n)"
    run(kernel, ":fmt {}")
    reply, outputs = run(kernel, "0.5")
    assert _shown(outputs)[0]["text/plain"] == "0.5"
    run(kernel, ":fmt")
    run(kernel, ":types")
    reply, outputs = run(kernel, "7u8")
    assert _shown(outputs)[0]["text/plain"] == ": u8 = 7"
    run(kernel, ":types")
    # After :clear the trait is defined again; completions do not offer it.
    run(kernel, ":clear")
    reply, outputs = run(kernel, "1 + 2")
    assert _shown(outputs)[0]["text/plain"] == "3"
    assert "evcxr_send_text_plain" not in _last_build_source(kernel)
    run(kernel, "let listed = 5u32;")
    r = reply_to(kernel, kernel.complete("listed.ev"))["content"]
    assert not [m for m in r["matches"] if m.startswith("evcxr_display")], r["matches"]


def test_rust_completion_and_inspection(kernel):
    run(kernel, "let numbers = vec![1, 2, 3];")
    r = reply_to(kernel, kernel.complete("numbers.le"))["content"]
    assert r["status"] == "ok"
    # The kernel retries evcxr's analysis when it fails and logs why when it still does.
    assert "len()" in r["matches"], (r["matches"], kernel.log_path.read_text()[-3000:])
    assert (r["cursor_start"], r["cursor_end"]) == (8, 10)
    r = reply_to(kernel, kernel.inspect("String::new", 3))["content"]
    assert r["found"] and "UTF-8" in r["data"]["text/plain"]
    r = reply_to(kernel, kernel.inspect("%clear_output", 4))["content"]
    assert r["found"] and "--wait" in r["data"]["text/plain"]
    r = reply_to(kernel, kernel.inspect("   ", 1))["content"]
    assert r["status"] == "ok" and r["found"] is False


def test_what_needs_the_analysis_waits_for_it_right_after_start(tmp_path):
    """rust-analyzer loads on a thread of its own after start (vendor/README.md): a first cell
    without variables runs meanwhile; completion, inspection and variables whose types only the
    analysis knows, asked for while it may still be loading, wait for it and are right."""
    km, kc = start_kernel(tmp_path / "k.log")
    try:
        reply, outputs = run(kc, "1 + 1")
        assert reply["status"] == "ok" and results(outputs) == ["2"]
        r = reply_to(kc, kc.complete("String::from_ut"))["content"]
        assert any(m.startswith("from_utf8") for m in r["matches"]), r["matches"]
        r = reply_to(kc, kc.inspect("Vec::with_capacity", 5))["content"]
        assert r["found"] and "capacity" in r["data"]["text/plain"]
        assert run(kc, 'let words = vec!["rust", "maker"];')[0]["status"] == "ok"
        reply, _ = run(kc, "let lengths = words.iter().map(|w| w.len()).collect::<Vec<_>>();")
        assert reply["status"] == "ok", reply
        reply, outputs = run(kc, 'format!("{} {:?}", words.join(""), lengths)')
        assert results(outputs) == ['"rustmaker [4, 5]"'], (reply, outputs)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_execution_count_and_execute_input(kernel):
    first, outs = run(kernel, "%lsmagic")
    second, _ = run(kernel, "%lsmagic")
    assert second["execution_count"] == first["execution_count"] + 1
    inputs = [m for m in outs if m["msg_type"] == "execute_input"]
    assert inputs[0]["content"] == {"code": "%lsmagic", "execution_count": first["execution_count"]}
    # silent: nothing broadcast, no new execution count
    silent, outs = run(kernel, "%lsmagic", silent=True)
    assert silent["execution_count"] == second["execution_count"]
    assert not [m for m in outs if m["msg_type"] == "execute_input"]


def test_panic_is_an_error_and_the_next_cell_works(kernel):
    run(kernel, "let kept = 7;")
    reply, outputs = run(kernel, 'panic!("boom {}", 1 + 1)')
    assert reply["status"] == "error"
    assert reply["ename"] == "Panic"
    assert "boom 2" in reply["evalue"]
    errors = [m for m in outputs if m["msg_type"] == "error"]
    assert len(errors) == 1 and "panicked at" in errors[0]["content"]["traceback"][0]
    # The panic's report is in the error, not duplicated on stderr.
    assert "panicked" not in stream_text(outputs, "stderr")
    reply, outputs = run(kernel, "kept * 6")
    assert reply["status"] == "ok"
    assert results(outputs) == ["42"]


def test_compile_error_shows_the_span(kernel):
    reply, outputs = run(kernel, 'let n: i32 = "text";')
    assert reply["status"] == "error"
    assert reply["ename"] == "CompilationError"
    assert "mismatched types" in reply["evalue"]
    traceback = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(reply["traceback"]))
    assert 'let n: i32 = "text";' in traceback, traceback  # the offending source is quoted
    assert "expected `i32`, found `&str`" in traceback  # and the span labelled
    assert len([m for m in outputs if m["msg_type"] == "error"]) == 1


def test_stdout_is_coalesced_and_complete(kernel):
    reply, outputs = run(kernel, "for i in 0..20000 { println!(\"line {i}\"); }")
    assert reply["status"] == "ok"
    text = stream_text(outputs)
    lines = text.splitlines()
    assert lines[0] == "line 0" and lines[-1] == "line 19999" and len(lines) == 20000
    streams = [m for m in outputs if m["msg_type"] == "stream"]
    assert len(streams) < 200, f"{len(streams)} stream messages for 20,000 lines"


def test_magics_mixed_with_rust_and_unknown_magic(kernel):
    reply, outputs = run(kernel, 'println!("a");\n%lsmagic\nprintln!("b");')
    assert reply["status"] == "ok"
    kinds = [m["msg_type"] for m in outputs if m["msg_type"] not in ("execute_input", "status")]
    assert kinds == ["stream", "display_data", "stream"], kinds
    reply, outputs = run(kernel, "%lsmagics")
    assert reply["status"] == "error" and reply["ename"] == "UsageError"
    assert "did you mean `%lsmagic`" in reply["evalue"]


def test_help_forms(kernel):
    reply, _ = run(kernel, "%clear_output?")
    assert reply["payload"][0]["source"] == "page"
    assert "--wait" in reply["payload"][0]["data"]["text/plain"]
    reply, outputs = run(kernel, "%help clear_output")
    assert "--wait" in stream_text(outputs)


def test_stop_on_error_aborts_queued_cells(kernel):
    failing = kernel.execute("%nosuch")
    queued = kernel.execute("%lsmagic")
    assert reply_to(kernel, failing)["content"]["status"] == "error"
    assert reply_to(kernel, queued)["content"]["status"] == "aborted"
    collect(kernel, failing)
    collect(kernel, queued)
    # and not when stop_on_error is false
    failing = kernel.execute("%nosuch", stop_on_error=False)
    queued = kernel.execute("%lsmagic")
    assert reply_to(kernel, failing)["content"]["status"] == "error"
    assert reply_to(kernel, queued)["content"]["status"] == "ok"
    collect(kernel, failing)
    collect(kernel, queued)


def test_user_expressions(kernel):
    run(kernel, "let base = 20;")
    reply, _ = run(kernel, "%lsmagic", user_expressions={"double": "base * 2", "bad": "nope + 1"})
    exprs = reply["user_expressions"]
    assert exprs["double"]["status"] == "ok"
    assert exprs["double"]["data"]["text/plain"] == "40"
    assert exprs["bad"]["status"] == "error"


def test_input_request_on_stdin(kernel):
    assert run(kernel, ':dep evcxr_input = "1"', timeout=300)[0]["status"] == "ok"
    code = 'let name = evcxr_input::get_string("Your name? ");\nprintln!("hello {name}");'
    msg_id = kernel.execute(code, allow_stdin=True)
    request = kernel.get_stdin_msg(timeout=120)
    assert request["msg_type"] == "input_request"
    assert request["content"]["prompt"] == "Your name? "
    assert request["parent_header"]["msg_id"] == msg_id
    kernel.input("Ferris")
    assert reply_to(kernel, msg_id)["content"]["status"] == "ok"
    assert "hello Ferris" in stream_text(collect(kernel, msg_id))


def test_comms_are_answered_sanely(kernel):
    msg = kernel.session.msg("comm_info_request", {})
    kernel.shell_channel.send(msg)
    reply = reply_to(kernel, msg["header"]["msg_id"])
    assert reply["content"] == {"status": "ok", "comms": {}}
    comm_id = uuid.uuid4().hex
    msg = kernel.session.msg("comm_open", {"comm_id": comm_id, "target_name": "nobody", "data": {}})
    kernel.shell_channel.send(msg)
    outputs = collect(kernel, msg["header"]["msg_id"])
    closes = [m for m in outputs if m["msg_type"] == "comm_close"]
    assert closes and closes[0]["content"]["comm_id"] == comm_id
    # a message to a comm that does not exist is ignored, and the kernel goes on
    msg = kernel.session.msg("comm_msg", {"comm_id": comm_id, "data": {}})
    kernel.shell_channel.send(msg)
    collect(kernel, msg["header"]["msg_id"])
    assert run(kernel, "%lsmagic")[0]["status"] == "ok"


def _raw_shell(kernel):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"{kernel.transport}://{kernel.ip}:{kernel.shell_port}")
    return sock


def _wait_reply(sock, session, timeout=10.0):
    if not sock.poll(int(timeout * 1000)):
        return None
    idents, parts = session.feed_identities(sock.recv_multipart())
    return session.deserialize(parts)


def test_wrong_signature_is_ignored_and_good_message_answered(kernel):
    sock = _raw_shell(kernel)
    try:
        forger = Session(key=b"not-the-key", signature_scheme="hmac-sha256")
        bad = forger.msg("execute_request", {"code": "%lsmagic", "silent": False, "store_history": True,
                                             "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
        forger.send(sock, bad)
        assert _wait_reply(sock, kernel.session, timeout=1.0) is None, "a forged message was answered"
        good = kernel.session.msg("kernel_info_request", {})
        kernel.session.send(sock, good)
        reply = _wait_reply(sock, kernel.session)
        assert reply is not None and reply["msg_type"] == "kernel_info_reply"
        assert reply["parent_header"]["msg_id"] == good["header"]["msg_id"]

        # The same signed frames a second time are a replay: dropped.
        replay = kernel.session.msg("kernel_info_request", {})
        frames = kernel.session.serialize(replay)
        sock.send_multipart(frames)
        assert _wait_reply(sock, kernel.session) is not None
        sock.send_multipart(frames)
        assert _wait_reply(sock, kernel.session, timeout=1.0) is None, "a replayed message was answered"
    finally:
        sock.close()
    log = kernel.log_path.read_text()
    assert "dropped a message on shell: the message carries no valid signature" in log
    assert "replayed message" in log


def test_malformed_frames_are_logged_and_survived(kernel):
    sock = _raw_shell(kernel)
    try:
        sock.send_multipart([b"garbage"])
        sock.send_multipart([b"<IDS|MSG>", b"short"])
        # signed correctly, but the content is not JSON
        header = json.dumps({"msg_id": "x1", "username": "u", "session": "s", "date": "2026-01-01T00:00:00Z",
                             "msg_type": "execute_request", "version": "5.3"}).encode()
        parts = [header, b"{}", b"{}", b"{not json"]
        sig = kernel.session.sign(parts)
        sock.send_multipart([b"<IDS|MSG>", sig, *parts])
        good = kernel.session.msg("kernel_info_request", {})
        kernel.session.send(sock, good)
        reply = _wait_reply(sock, kernel.session)
        assert reply is not None and reply["msg_type"] == "kernel_info_reply"
    finally:
        sock.close()
    log = kernel.log_path.read_text()
    assert "no <IDS|MSG> delimiter frame" in log
    assert "the content frame is not valid JSON" in log


def _wait_for_output(kc, msg_id, timeout=120.0):
    """Blocks until the cell `msg_id` printed something: it is running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = kc.get_iopub_msg(timeout=timeout)
        if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream":
            return
    raise TimeoutError("the cell printed nothing")


LONG_LOOP = 'println!("started");\nloop { std::hint::spin_loop(); }'


def interrupt_running(kernel, code: str) -> tuple[dict, float]:
    """Runs `code` until it prints, interrupts it by message; the reply and its delay."""
    msg_id = kernel.execute(code)
    _wait_for_output(kernel, msg_id)
    t0 = time.monotonic()
    interrupt = kernel.session.msg("interrupt_request", {})
    kernel.control_channel.send(interrupt)
    reply = reply_to(kernel, msg_id, timeout=10)
    elapsed = time.monotonic() - t0
    collect(kernel, msg_id)
    return reply["content"], elapsed


def test_interrupt_of_a_long_loop_returns_quickly_and_keeps_the_variables(kernel):
    run(kernel, "let mut kept = 40; let words = vec![\"a\", \"b\"];")
    # The loop changes `kept` and defines `lost` before it spins: both undone.
    reply, elapsed = interrupt_running(kernel, "kept += 1; let lost = 1;\n" + LONG_LOOP)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply
    assert "as they were before it" in reply["evalue"], reply
    assert elapsed < 2.0, f"interrupt took {elapsed:.2f}s"
    reply, outputs = run(kernel, "kept as usize + words.len()")
    assert reply["status"] == "ok" and results(outputs) == ["42"], (reply, outputs)
    assert run(kernel, "lost")[0]["status"] == "error"
    # A second interrupt, now of the process that took over from the first.
    reply, elapsed = interrupt_running(kernel, LONG_LOOP)
    assert reply["ename"] == "KeyboardInterrupt" and elapsed < 2.0, (reply, elapsed)
    assert results(run(kernel, "kept")[1]) == ["40"]


def test_a_process_with_threads_is_interrupted_as_before(kernel):
    # fork would keep only one thread: this process is not copied, so its state goes.
    run(kernel, "let before_threads = 1;")
    run(kernel, "std::thread::spawn(|| loop { std::thread::sleep(std::time::Duration::from_secs(1)) });")
    reply, elapsed = interrupt_running(kernel, LONG_LOOP)
    assert reply["ename"] == "KeyboardInterrupt" and elapsed < 2.0, (reply, elapsed)
    assert "variables from earlier cells are lost" in reply["evalue"] and "thread" in reply["evalue"], reply
    assert run(kernel, "before_threads")[0]["status"] == "error"
    assert results(run(kernel, "1 + 1")[1]) == ["2"]


def test_crash_of_the_child_process_is_reported_and_survived(kernel):
    run(kernel, "let before_crash = 1;")
    reply, outputs = run(kernel, "let doomed = 2; std::process::abort();")
    assert reply["status"] == "error"
    assert reply["ename"] == "Panic" and "ended before the cell did" in reply["evalue"], reply
    # The snapshot taken before the cell goes on: earlier variables kept, the cell's own gone.
    reply, outputs = run(kernel, "before_crash + 6")
    assert reply["status"] == "ok" and results(outputs) == ["7"], (reply, outputs)
    assert run(kernel, "doomed")[0]["status"] == "error"


def test_evcxr_toml_is_applied_and_a_broken_one_reported(tmp_path):
    from jupyter_client.manager import KernelManager

    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    (good / "evcxr.toml").write_text('[evcxr]\nprelude = "fn from_prelude() -> i32 { 7 }"\n')
    (bad / "evcxr.toml").write_text('[evcxr]\nprelude = "fn broken( {"\n')
    for cwd, check in [(good, "good"), (bad, "bad")]:
        km = KernelManager(kernel_name="rustmaker")
        km.start_kernel(cwd=str(cwd))
        kc = km.blocking_client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=30)
            reply, outputs = run(kc, "from_prelude() * 6")
            if check == "good":
                assert reply["status"] == "ok"
                assert results(outputs) == ["42"]
            else:
                assert "the evcxr.toml configuration was not applied" in stream_text(outputs, "stderr")
                assert run(kc, "6 * 7")[0]["status"] == "ok"  # the kernel serves on
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)


def test_without_rust_toolchain_cells_explain_and_magics_work(tmp_path):
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="rustmaker")
    # No cargo/rustc on PATH: evcxr cannot start.
    km.start_kernel(env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    kc = km.blocking_client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        reply, _ = run(kc, "1 + 1")
        assert reply["status"] == "error" and reply["ename"] == "RustUnavailable"
        assert "install Rust with rustup" in reply["evalue"]
        assert run(kc, "%lsmagic")[0]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_interrupt_mode_signal_and_restart(tmp_path):
    km, kc = start_kernel(tmp_path / "k.log")
    try:
        msg_id = kc.execute("%lsmagic")
        collect(kc, msg_id)
        assert run(kc, "let kept = 7;")[0]["status"] == "ok"
        msg_id = kc.execute(LONG_LOOP)
        _wait_for_output(kc, msg_id)
        t0 = time.monotonic()
        # As Jupyter sends it: to the kernel's whole process group, the cells' processes too.
        km.signal_kernel(signal.SIGINT)
        reply = reply_to(kc, msg_id, timeout=10)
        # What came back, and the kernel's log, where it is not the interrupt.
        why = (reply["content"], (tmp_path / "k.log").read_text()[-3000:])
        assert reply["content"].get("ename") == "KeyboardInterrupt", why
        assert time.monotonic() - t0 < 2.0
        assert km.is_alive(), "SIGINT must interrupt the cell, not kill the kernel"
        collect(kc, msg_id)
        reply, outputs = run(kc, "kept")
        assert reply["status"] == "ok", (reply, (tmp_path / "k.log").read_text()[-3000:])
        assert results(outputs) == ["7"], "the variables outlive a group SIGINT"
        # shutdown with restart: the manager starts a new process that answers
        old_pid = km.provisioner.pid
        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=30)
        wait_for_iopub(kc)
        assert km.provisioner.pid != old_pid
        assert run(kc, "%lsmagic")[0]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_shutdown_request_ends_the_process(tmp_path):
    km, kc = start_kernel(tmp_path / "k.log")
    try:
        msg = kc.session.msg("shutdown_request", {"restart": False})
        kc.control_channel.send(msg)
        reply = kc.control_channel.get_msg(timeout=10)
        assert reply["content"] == {"status": "ok", "restart": False}
        deadline = time.monotonic() + 10
        while km.is_alive():
            assert time.monotonic() < deadline, "the kernel did not exit after shutdown_request"
            time.sleep(0.05)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.mark.parametrize("transport", ["ipc"])
def test_ipc_transport(tmp_path, transport):
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="rustmaker", transport=transport, ip=str(tmp_path / "kernel-ipc"))
    km.start_kernel()
    kc = km.blocking_client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        assert run(kc, "%lsmagic")[0]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
