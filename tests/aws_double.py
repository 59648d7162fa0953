"""AWS on 127.0.0.1 for the tests: moto's server, plus the Glue calls moto lacks.

moto 5 answers HTTP 500 for Glue's UpdateJob, BatchStopJobRun and the statement calls of
interactive sessions (RunStatement, GetStatement, ListStatements, CancelStatement). This
WSGI middleware answers those in Glue's JSON 1.1 protocol, acting on moto's own Glue backend
(a job updated here is the job moto's GetJob returns; a run stopped here is the run moto's
GetJobRun returns), and passes every other request to moto unchanged.

Statements run as Python, one namespace per session, each in a worker thread, and report
their output and errors in Glue's Statement shape. That is enough to test a client's
polling, output, errors and cancel; there is no Spark behind it.

Faults for tests: `POST /_double/fail {"op": "CreateJob", "code": "AccessDeniedException",
"message": "…"}` makes the next call of that Glue operation answer that error (HTTP 400);
`GET /_double/requests/OP` gives the bodies of the Glue calls OP received so far (what a client
sent, where moto does not echo it back).

Usage: python tests/aws_double.py PORT
"""

import ast
import ctypes
import io
import json
import re
import sys
import threading
import time
import traceback

from moto.core import DEFAULT_ACCOUNT_ID
from moto.glue.models import glue_backends
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

HANDLED = {
    "UpdateJob",
    "BatchStopJobRun",
    "RunStatement",
    "GetStatement",
    "ListStatements",
    "CancelStatement",
}
FINAL_RUN_STATES = {"STOPPED", "SUCCEEDED", "FAILED", "TIMEOUT", "ERROR", "EXPIRED"}


class GlueError(Exception):
    def __init__(self, code, message, status=400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class ThreadStdout(io.TextIOBase):
    """sys.stdout that writes to the statement running on this thread, if any."""

    def __init__(self, real):
        self.real = real
        self.local = threading.local()

    def write(self, text):
        target = getattr(self.local, "buffer", None)
        return (target or self.real).write(text)

    def flush(self):
        self.real.flush()


STDOUT = ThreadStdout(sys.stdout)


class Statement:
    def __init__(self, number, code):
        self.id, self.code = number, code
        self.state, self.progress = "WAITING", 0.0
        self.started = self.completed = None
        self.output = None
        self.thread = None

    def as_dict(self):
        d = {"Id": self.id, "Code": self.code, "State": self.state, "Progress": self.progress}
        if self.started is not None:
            d["StartedOn"] = self.started
        if self.completed is not None:
            d["CompletedOn"] = self.completed
        if self.output is not None:
            d["Output"] = self.output
        return d


class SessionRunner:
    """The statements of one interactive session, run in order in one namespace."""

    def __init__(self):
        self.namespace = {"__name__": "__main__"}
        self.statements = []
        self.lock = threading.Lock()
        self.count = 0

    def run(self, code):
        with self.lock:
            st = Statement(len(self.statements), code)
            self.statements.append(st)
        st.thread = threading.Thread(target=self._execute, args=(st,), daemon=True)
        st.thread.start()
        return st

    def _execute(self, st):
        buf = io.StringIO()
        STDOUT.local.buffer = buf
        st.state, st.started = "RUNNING", int(time.time() * 1000)
        try:
            tree = ast.parse(st.code, "<statement>")
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            exec(compile(tree, "<statement>", "exec"), self.namespace)
            if last is not None:
                value = eval(compile(last, "<statement>", "eval"), self.namespace)
                if value is not None:
                    buf.write(repr(value) + "\n")
            status, extra = "ok", {}
        except KeyboardInterrupt:
            st.state, st.completed = "CANCELLED", int(time.time() * 1000)
            STDOUT.local.buffer = None
            return
        except BaseException as e:  # noqa: BLE001 - the statement's error is its output
            status = "error"
            extra = {
                "ErrorName": type(e).__name__,
                "ErrorValue": str(e),
                "Traceback": traceback.format_list(
                    [f for f in traceback.extract_tb(e.__traceback__) if f.filename == "<statement>"]
                ) + traceback.format_exception_only(e),
            }
        finally:
            STDOUT.local.buffer = None
        self.count += 1
        st.output = {"Data": {"TextPlain": buf.getvalue()}, "ExecutionCount": self.count,
                     "Status": status, **extra}
        st.progress, st.state, st.completed = 1.0, "AVAILABLE", int(time.time() * 1000)

    def cancel(self, st):
        if st.state in ("WAITING", "RUNNING"):
            st.state = "CANCELLING"
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(st.thread.ident), ctypes.py_object(KeyboardInterrupt))


class GlueExtras:
    def __init__(self, app):
        self.app = app
        self.runners = {}
        self.faults = {}
        self.requests = {}

    def __call__(self, environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        if environ.get("PATH_INFO") == "/_double/fail":
            fault = json.loads(environ["wsgi.input"].read(size))
            self.faults[fault["op"]] = fault
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        if environ.get("PATH_INFO", "").startswith("/_double/requests/"):
            op = environ["PATH_INFO"].rsplit("/", 1)[1]
            return self.reply(start_response, 200, self.requests.get(op, []))
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        service, _, op = target.partition(".")
        raw = environ["wsgi.input"].read(size)
        environ["wsgi.input"] = io.BytesIO(raw)
        if service == "AWSGlue":
            self.requests.setdefault(op, []).append(json.loads(raw or b"{}"))
        fault = self.faults.pop(op, None) if service == "AWSGlue" else None
        if fault is not None:
            return self.reply(start_response, 400, {"__type": fault.get("code", "InternalServiceException"),
                                                    "message": fault.get("message", "injected fault")})
        if service != "AWSGlue" or op not in HANDLED:
            return self.app(environ, start_response)
        body = json.loads(raw or b"{}")
        m = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        backend = glue_backends[DEFAULT_ACCOUNT_ID][m.group(1) if m else "us-east-1"]
        try:
            status, reply = 200, getattr(self, op)(backend, body)
        except GlueError as e:
            status, reply = e.status, {"__type": e.code, "message": e.message}
        return self.reply(start_response, status, reply)

    @staticmethod
    def reply(start_response, status, reply):
        data = json.dumps(reply).encode()
        start_response(f"{status} {'OK' if status == 200 else 'Error'}",
                       [("Content-Type", "application/x-amz-json-1.1"),
                        ("Content-Length", str(len(data)))])
        return [data]

    @staticmethod
    def job(backend, name):
        job = backend.jobs.get(name)
        if job is None:
            raise GlueError("EntityNotFoundException", f"Job {name} not found.")
        return job

    def UpdateJob(self, backend, body):
        job = self.job(backend, body.get("JobName", ""))
        update = body.get("JobUpdate") or {}
        if not update.get("Role") or not (update.get("Command") or {}).get("ScriptLocation"):
            raise GlueError("InvalidInputException", "JobUpdate needs Role and Command.ScriptLocation.")
        fields = {"Role": "role", "Command": "command", "DefaultArguments": "default_arguments",
                  "Description": "description", "MaxRetries": "max_retries", "Timeout": "timeout",
                  "GlueVersion": "glue_version", "WorkerType": "worker_type",
                  "NumberOfWorkers": "number_of_workers", "Connections": "connections",
                  "ExecutionProperty": "execution_property", "MaxCapacity": "max_capacity"}
        for key, attr in fields.items():
            if key in update:
                setattr(job, attr, update[key])
        from moto.core.utils import utcnow
        job.last_modified_on = utcnow()
        return {"JobName": job.name}

    def BatchStopJobRun(self, backend, body):
        job = self.job(backend, body.get("JobName", ""))
        ok, errors = [], []
        for run_id in body.get("JobRunIds") or []:
            run = next((r for r in job.job_runs if r.job_run_id == run_id), None)
            if run is None or run.status in FINAL_RUN_STATES:
                why = "not found" if run is None else f"already {run.status}"
                errors.append({"JobName": job.name, "JobRunId": run_id,
                               "ErrorDetail": {"ErrorCode": "InvalidInputException",
                                               "ErrorMessage": f"Job run {run_id} {why}."}})
            else:
                run.status = "STOPPED"
                ok.append({"JobName": job.name, "JobRunId": run_id})
        return {"SuccessfulSubmissions": ok, "Errors": errors}

    def runner(self, backend, session_id, ready=True):
        session = backend.sessions.get(session_id)
        if session is None:
            raise GlueError("EntityNotFoundException", f"Session {session_id} not found.")
        if ready and session.state != "READY":
            raise GlueError("IllegalSessionStateException",
                            f"Session {session_id} is in {session.state} status.")
        return self.runners.setdefault(session_id, SessionRunner())

    def statement(self, backend, body):
        runner = self.runner(backend, body.get("SessionId", ""), ready=False)
        number = body.get("Id")
        if not isinstance(number, int) or not 0 <= number < len(runner.statements):
            raise GlueError("EntityNotFoundException", f"Statement {number} not found.")
        return runner, runner.statements[number]

    def RunStatement(self, backend, body):
        return {"Id": self.runner(backend, body.get("SessionId", "")).run(body.get("Code", "")).id}

    def GetStatement(self, backend, body):
        return {"Statement": self.statement(backend, body)[1].as_dict()}

    def ListStatements(self, backend, body):
        runner = self.runner(backend, body.get("SessionId", ""), ready=False)
        return {"Statements": [s.as_dict() for s in runner.statements]}

    def CancelStatement(self, backend, body):
        runner, st = self.statement(backend, body)
        runner.cancel(st)
        return {}


def main():
    port = int(sys.argv[1])
    sys.stdout = STDOUT
    server = make_server("127.0.0.1", port, GlueExtras(DomainDispatcherApplication(create_backend_app)),
                         threaded=True, request_handler=MotoRequestHandler)
    server.serve_forever()


if __name__ == "__main__":
    main()
