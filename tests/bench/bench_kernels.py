#!/usr/bin/env python3
"""Benchmark: rustmaker against ipykernel and evcxr_jupyter, side by side, in one run.

Measures, for each kernel:
  * start: process launch -> first kernel_info_reply (median of --starts runs);
  * first: process launch -> the execute_reply of a first trivial cell (`1 + 1`) sent right
    after the kernel_info_reply (median of --firsts fresh kernels): what a person waits for
    after opening a notebook;
  * first_let: the same with a first cell that declares a variable (`let x = 1 + 1; x`), whose
    type evcxr learns from rust-analyzer's analysis (rustmaker loads that in the background,
    see vendor/README.md; a cell that declares nothing does not wait for it);
  * magic: `%lsmagic` execute round trip, send -> reply and idle (median of --n, after
    warm-up; evcxr_jupyter has no magics);
  * expr:  a trivial expression (`1 + 1`) round trip after warm-up (median of --n);
  * var:   a cell showing an immutable variable defined before (`v`), the case rustmaker's
    final-value trait cannot take (evcxr builds such a cell twice in both Rust kernels);
  * stmt:  a cell of one statement that shows nothing (`let w = 1;`): one build in both;
  * flood: printing 100,000 lines, send -> idle (median of --floods runs);
  * interrupt: a cell looping forever interrupted 1 s in (as the kernelspec's interrupt_mode
    says: a message on the control channel, or SIGINT) -> its execute_reply.

evcxr_jupyter lives in the benchmark's own environment, never in CI's; it is built there when
missing (`cargo install evcxr_jupyter --root .venv-bench/evcxr`, about 15 minutes on 2 cores).
Run it on a quiet machine (load below 1) and compare ratios, not absolute numbers:
    .venv/bin/python tests/bench/bench_kernels.py [--no-evcxr]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import zmq
from jupyter_client.session import Session
from jupyter_client.kernelspec import KernelSpecManager

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Kernel:
    """A kernel process and a raw zmq client, so client overhead is the same for both."""

    def __init__(self, argv_template):
        shell, iopub, stdin, control, hb = free_ports(5)
        self.key = uuid.uuid4().hex
        self.conn = dict(shell_port=shell, iopub_port=iopub, stdin_port=stdin, control_port=control,
                         hb_port=hb, ip="127.0.0.1", key=self.key, transport="tcp",
                         signature_scheme="hmac-sha256", kernel_name="")
        fd, self.conn_file = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(self.conn, f)
        self.argv = [a.replace("{connection_file}", self.conn_file) for a in argv_template]
        self.session = Session(key=self.key.encode(), signature_scheme="hmac-sha256")
        ctx = zmq.Context.instance()
        self.shell = ctx.socket(zmq.DEALER)
        self.shell.setsockopt(zmq.LINGER, 0)
        # The socket connects before the kernel listens; retry every millisecond (zmq's
        # default is 100 ms) so the start time measures the kernel, not the retry interval.
        self.shell.setsockopt(zmq.RECONNECT_IVL, 1)
        self.shell.connect(f"tcp://127.0.0.1:{shell}")
        self.iopub = ctx.socket(zmq.SUB)
        self.iopub.setsockopt(zmq.LINGER, 0)
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.iopub.connect(f"tcp://127.0.0.1:{iopub}")
        self.control = ctx.socket(zmq.DEALER)
        self.control.setsockopt(zmq.LINGER, 0)
        self.control.connect(f"tcp://127.0.0.1:{control}")
        self.proc = None

    def start(self) -> float:
        """Launches the process; returns seconds until the first kernel_info_reply."""
        msg = self.session.msg("kernel_info_request", {})
        t0 = time.perf_counter()
        # A session of its own, so that stop() also ends the evcxr kernels' child process (a
        # cell's `loop {}` runs there and would outlive its kernel, spinning).
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        self.session.send(self.shell, msg)  # queued by zmq until the kernel binds
        self._reply(self.shell, msg["header"]["msg_id"], 60)
        return time.perf_counter() - t0

    def _reply(self, sock, msg_id, timeout):
        deadline = time.perf_counter() + timeout
        while True:
            if not sock.poll(int(max(0.0, deadline - time.perf_counter()) * 1000)):
                raise TimeoutError("no reply")
            _, parts = self.session.feed_identities(sock.recv_multipart())
            m = self.session.deserialize(parts, content=False)
            if m["parent_header"].get("msg_id") == msg_id:
                return m

    def execute(self, code, timeout=600, idle=True) -> float:
        """Send -> both the execute_reply and the idle status have arrived (what a front end
        waits for); the reply alone with `idle=False` (right after a start, when the iopub
        subscription may not be joined yet and the status would be missed)."""
        msg = self.session.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                                   "user_expressions": {}, "allow_stdin": False,
                                                   "stop_on_error": True})
        msg_id = msg["header"]["msg_id"]
        t0 = time.perf_counter()
        self.session.send(self.shell, msg)
        got_reply, got_idle = False, not idle
        poller = zmq.Poller()
        poller.register(self.shell, zmq.POLLIN)
        poller.register(self.iopub, zmq.POLLIN)
        deadline = t0 + timeout
        self.last_reply, self.last_streams = None, {"stdout": "", "stderr": ""}
        while not (got_reply and got_idle):
            if time.perf_counter() > deadline:
                raise TimeoutError(code)
            for sock, _ in poller.poll(1000):
                _, parts = self.session.feed_identities(sock.recv_multipart())
                m = self.session.deserialize(parts)
                if m["parent_header"].get("msg_id") != msg_id:
                    continue
                if sock is self.shell:
                    got_reply = True
                    self.last_reply = m["content"]
                elif m["msg_type"] == "stream":
                    self.last_streams[m["content"]["name"]] += m["content"]["text"]
                elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                    got_idle = True
        return time.perf_counter() - t0

    def interrupt_after(self, code, after, mode, timeout=30) -> float | None:
        """Runs `code`, interrupts it `after` seconds in; seconds from the interrupt to the
        execute_reply, or None when no reply came."""
        msg = self.session.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                                   "user_expressions": {}, "allow_stdin": False,
                                                   "stop_on_error": True})
        self.session.send(self.shell, msg)
        time.sleep(after)
        t0 = time.perf_counter()
        if mode == "message":
            self.session.send(self.control, self.session.msg("interrupt_request", {}))
        else:
            self.proc.send_signal(signal.SIGINT)
        try:
            self._reply(self.shell, msg["header"]["msg_id"], timeout)
        except TimeoutError:
            return None
        return time.perf_counter() - t0

    def stop(self):
        if self.proc:
            msg = self.session.msg("shutdown_request", {"restart": False})
            self.session.send(self.control, msg)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for s in (self.shell, self.iopub, self.control):
            s.close()
        os.unlink(self.conn_file)


def argv_of(name):
    spec = KernelSpecManager().get_kernel_spec(name)
    argv = list(spec.argv)
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable  # as jupyter_client does
    return argv, spec.interrupt_mode


def measure(argv, code, args, interrupt_mode):
    starts = []
    for _ in range(args.starts):
        k = Kernel(argv)
        starts.append(k.start())
        k.stop()
    firsts, first_lets = [], []
    for _ in range(args.firsts):
        for cell, times in ((code["expr"], firsts), (code["first_let"], first_lets)):
            k = Kernel(argv)
            started = k.start()
            times.append(started + k.execute(cell, idle=False))
            k.stop()
    k = Kernel(argv)
    k.start()
    time.sleep(0.3)  # let the iopub subscription settle
    # Warm-up first: rustmaker starts evcxr in the background after kernel_info and compiles
    # its first cell; measuring magics while that runs would measure the compiler.
    for _ in range(3):
        k.execute(code["expr"])
        if code.get("magic"):
            k.execute(code["magic"])
    magic = [k.execute(code["magic"]) for _ in range(args.n)] if code.get("magic") else None
    expr = [k.execute(code["expr"]) for _ in range(args.n)]
    k.execute(code["var_setup"])
    var = [k.execute(code["var"]) for _ in range(max(args.n // 3, 3))]
    stmt = [k.execute(code["stmt"]) for _ in range(max(args.n // 3, 3))]
    flood = [k.execute(code["flood"]) for _ in range(args.floods)]
    interrupt = k.interrupt_after(code["loop"], 1.0, interrupt_mode)
    k.stop()
    return {"start": statistics.median(starts), "first": statistics.median(firsts),
            "first_let": statistics.median(first_lets),
            "magic": statistics.median(magic) if magic else None,
            "expr": statistics.median(expr), "var": statistics.median(var),
            "stmt": statistics.median(stmt), "flood": statistics.median(flood), "interrupt": interrupt}


def evcxr_jupyter(build: bool) -> str | None:
    """evcxr_jupyter from the benchmark's environment, built there when missing."""
    root = ROOT / ".venv-bench" / "evcxr"
    exe = root / "bin" / "evcxr_jupyter"
    if not exe.exists() and build:
        print(f"building evcxr_jupyter into {root} (once; minutes)", flush=True)
        subprocess.run(["cargo", "install", "--locked", "evcxr_jupyter", "--root", str(root)], check=True)
    return str(exe) if exe.exists() else shutil.which("evcxr_jupyter")


RUST = {"expr": "1 + 1", "first_let": "let x = 1 + 1; x", "var_setup": "let v = vec![1, 2, 3];",
        "var": "v", "stmt": "let w = 1;",
        "magic": "%lsmagic", "flood": "for i in 0..100000 { println!(\"{i}\"); }",
        "loop": "loop {}"}
PYTHON = {"expr": "1 + 1", "first_let": "x = 1 + 1; x", "var_setup": "v = [1, 2, 3]",
          "var": "v", "stmt": "w = 1",
          "magic": "%lsmagic", "flood": "for i in range(100000): print(i)",
          "loop": "while True: pass"}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=50, help="round trips per median")
    p.add_argument("--starts", type=int, default=10)
    p.add_argument("--firsts", type=int, default=3, help="fresh kernels for the first cell")
    p.add_argument("--floods", type=int, default=3)
    p.add_argument("--rustmaker", default=None, help="rustmaker binary (default: target/release, else target/debug)")
    p.add_argument("--no-evcxr", action="store_true", help="leave evcxr_jupyter out (and do not build it)")
    args = p.parse_args()

    binary = args.rustmaker
    if binary is None:
        release = ROOT / "target" / "release" / "rustmaker"
        binary = str(release if release.exists() else ROOT / "target" / "debug" / "rustmaker")
    evcxr = None if args.no_evcxr else evcxr_jupyter(build=True)
    load = os.getloadavg()[0]
    print(f"rustmaker binary: {binary}")
    print(f"evcxr_jupyter: {evcxr or 'left out'}")
    print(f"load average at start: {load:.2f}{'  (above 1: numbers are noisy)' if load > 1 else ''}")
    kernels = {"rustmaker": measure([binary, "kernel", "--connection-file", "{connection_file}"], RUST, args,
                                    "message")}
    argv, mode = argv_of("python3")
    kernels["ipykernel"] = measure(argv, PYTHON, args, mode)
    if evcxr:
        # As `evcxr_jupyter --install` writes its kernelspec: interrupt_mode "message".
        kernels["evcxr_jupyter"] = measure([evcxr, "--control_file", "{connection_file}"],
                                           dict(RUST, magic=None), args, "message")

    rows = [("start -> kernel_info_reply", "start"), ("launch -> first cell `1 + 1` answered", "first"),
            ("launch -> first cell `let x = 1 + 1; x` answered", "first_let"),
            ("%lsmagic round trip (median)", "magic"), ("warm trivial cell `1 + 1` (median)", "expr"),
            ("warm cell showing a variable `v` (median)", "var"), ("warm statement `let w = 1;` (median)", "stmt"),
            ("print 100,000 lines", "flood"), ("interrupt -> reply", "interrupt")]
    names = list(kernels)
    peers = names[1:]
    print()
    print("| measure | " + " | ".join(names) + " | " + " | ".join(f"{p} / rustmaker" for p in peers) + " |")
    print("| --- |" + " ---: |" * (len(names) + len(peers)))
    for label, key in rows:
        values = [kernels[n][key] for n in names]
        ratios = [ratio(kernels[p][key], kernels["rustmaker"][key]) for p in peers]
        print(f"| {label} | " + " | ".join(fmt(v) for v in values) + " | " + " | ".join(ratios) + " |")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


def ratio(peer, ours):
    if peer is None or ours is None:
        return "—"
    return f"{peer / ours:.2f}x"


def fmt(seconds):
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


if __name__ == "__main__":
    sys.exit(main())
