"""The PySpark side of one local Livy session (run by `rustmaker livy serve`).

Protocol with the server: JSON lines. stdin carries {"op": "run", "id", "kind", "code"} and
{"op": "cancel", "id"}; the protocol's stdout carries {"event": "ready" | "failed" | "progress" |
"result", ...}. Everything else the process prints (Spark's JVM included) goes to stderr, which
the server keeps as the session log. EOF on stdin ends the session.
"""
import ast
import base64
import io
import json
import os
import queue
import sys
import threading
import time
import traceback
import _thread

# The protocol gets the real stdout; fd 1 becomes stderr so that nothing else (the JVM, a
# stray print) can corrupt it.
_proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr
_proto_lock = threading.Lock()


def emit(**event):
    line = json.dumps(event, default=str, allow_nan=False)
    with _proto_lock:
        _proto.write(line + "\n")
        _proto.flush()


def start_spark(settings):
    from pyspark.sql import SparkSession

    conf = dict(settings.get("conf") or {})
    builder = SparkSession.builder.appName(settings.get("name") or "livy-session-%s" % settings["id"])
    builder = builder.master(conf.pop("spark.master", "local[*]"))
    for key, spark_key in (("driverMemory", "spark.driver.memory"), ("driverCores", "spark.driver.cores"),
                           ("executorMemory", "spark.executor.memory"), ("executorCores", "spark.executor.cores"),
                           ("numExecutors", "spark.executor.instances")):
        if settings.get(key) is not None:
            conf.setdefault(spark_key, str(settings[key]))
    if settings.get("jars"):
        conf.setdefault("spark.jars", ",".join(settings["jars"]))
    if settings.get("files"):
        conf.setdefault("spark.files", ",".join(settings["files"]))
    conf.setdefault("spark.ui.showConsoleProgress", "false")
    for k, v in conf.items():
        builder = builder.config(k, str(v))
    spark = builder.getOrCreate()
    for f in settings.get("pyFiles") or []:
        spark.sparkContext.addPyFile(f)
    return spark


class Shell:
    def __init__(self, spark):
        self.spark = spark
        self.sc = spark.sparkContext
        self.globals = {"__name__": "__main__", "spark": spark, "sc": self.sc,
                        "sqlContext": spark, "sqlCtx": spark}
        self.count = 0

    def run_python(self, code):
        out = io.StringIO()
        data = {}
        lines = code.rstrip().split("\n")
        magic = None
        if lines and lines[-1].lstrip().startswith("%"):
            magic = lines.pop().strip()
        body = "\n".join(lines)
        saved = sys.stdout
        sys.stdout = out
        try:
            tree = ast.parse(body, "<stdin>", "exec")
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, "<stdin>", "exec"), self.globals)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), "<stdin>", "eval"), self.globals)
                if value is not None:
                    print(repr(value))
            if magic:
                self.run_magic(magic, data)
        finally:
            sys.stdout = saved
        text = out.getvalue()
        if text.endswith("\n"):
            text = text[:-1]
        data.setdefault("text/plain", text)
        return data

    def run_magic(self, line, data):
        name, _, arg = line[1:].partition(" ")
        arg = arg.strip()
        if name == "json":
            data["application/json"] = eval(arg, self.globals)
        elif name == "table":
            value = eval(arg, self.globals)
            rows = [list(r) if isinstance(r, (list, tuple)) else list(r.values()) for r in value]
            headers = list(value[0].keys()) if value and isinstance(value[0], dict) else \
                ["col%d" % i for i in range(len(rows[0]) if rows else 0)]
            data["application/vnd.livy.table.v1+json"] = {
                "headers": [{"name": h, "type": "STRING_TYPE"} for h in headers], "data": rows}
        elif name == "matplot":
            fig = eval(arg, self.globals)
            fig = fig.gcf() if hasattr(fig, "gcf") else fig
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
            data["image/png"] = base64.b64encode(buf.getvalue()).decode("ascii")
            data["text/plain"] = ""
        else:
            raise ValueError("unknown magic %%%s: this session knows %%json, %%table and %%matplot" % name)

    def run_sql(self, code):
        df = self.spark.sql(code)
        rows = [[cell_json(v) for v in r] for r in df.take(1000)]
        return {"application/json": {"schema": json.loads(df.schema.json()), "data": rows}}


def cell_json(v):
    import datetime
    import decimal
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode("ascii")
    return v


class Progress(threading.Thread):
    """Reports the progress of the running statement's Spark jobs (tasks done / tasks)."""

    def __init__(self, sc, statement_id):
        super().__init__(daemon=True)
        self.sc, self.id, self.done = sc, statement_id, threading.Event()

    def run(self):
        tracker = self.sc.statusTracker()
        last = None
        while not self.done.wait(0.3):
            try:
                done = total = 0
                for job in tracker.getJobIdsForGroup(group(self.id)):
                    info = tracker.getJobInfo(job)
                    if info is None:
                        continue
                    for stage in info.stageIds:
                        s = tracker.getStageInfo(stage)
                        if s is not None:
                            done += s.numCompletedTasks
                            total += s.numTasks
                if total and done / total != last:
                    last = done / total
                    emit(event="progress", id=self.id, progress=min(last, 0.99))
            except Exception:
                pass


def group(statement_id):
    return "livy-statement-%s" % statement_id


def main():
    settings = json.loads(sys.argv[1])
    try:
        spark = start_spark(settings)
    except BaseException:
        emit(event="failed", error=traceback.format_exc())
        return 1
    sc = spark.sparkContext
    emit(event="ready", appId=sc.applicationId, sparkUiUrl=sc.uiWebUrl)
    shell = Shell(spark)
    work = queue.Queue()
    cancelled = set()
    running = {"id": None}

    def reader():
        for line in sys.stdin:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("op") == "cancel":
                cancelled.add(msg["id"])
                if running["id"] == msg["id"]:
                    sc.cancelJobGroup(group(msg["id"]))
                    _thread.interrupt_main()
            else:
                work.put(msg)
        work.put(None)

    threading.Thread(target=reader, daemon=True).start()
    while True:
        try:
            msg = work.get()
        except KeyboardInterrupt:  # a cancel that arrived just after its statement ended
            continue
        if msg is None:
            break
        sid = msg["id"]
        if sid in cancelled:
            emit(event="result", id=sid, cancelled=True)
            continue
        shell.count += 1
        running["id"] = sid
        sc.setJobGroup(group(sid), "Livy statement %s" % sid, interruptOnCancel=True)
        progress = Progress(sc, sid)
        progress.start()
        try:
            kind = msg.get("kind") or "pyspark"
            if kind in ("pyspark", "python"):
                data = shell.run_python(msg["code"])
            elif kind == "sql":
                data = shell.run_sql(msg["code"])
            else:
                raise NotImplementedError(
                    "the local Livy server runs pyspark and sql statements; `%s` statements need a Livy "
                    "on a Spark cluster (EMR): connect with %%spark add -u URL" % kind)
            output = {"status": "ok", "execution_count": shell.count, "data": data}
        except BaseException as e:  # KeyboardInterrupt included: a cancelled statement
            tb = traceback.format_exception(type(e), e, e.__traceback__)
            # Drop the driver's own frames: the user's code starts at <stdin>.
            user = [l for l in tb if "driver.py" not in l]
            output = {"status": "error", "execution_count": shell.count, "ename": type(e).__name__,
                      "evalue": str(e), "traceback": user}
        finally:
            progress.done.set()
            running["id"] = None
        try:
            emit(event="result", id=sid, output=output, cancelled=sid in cancelled)
        except (TypeError, ValueError) as e:
            emit(event="result", id=sid, cancelled=sid in cancelled,
                 output={"status": "error", "execution_count": shell.count, "ename": type(e).__name__,
                         "evalue": "the statement's result cannot be sent as JSON: %s" % e, "traceback": []})
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
