"""One worker of a script-mode endpoint, as SageMaker's inference toolkit runs inference.py:
model_fn(model_dir) once, then for each request input_fn(body, content_type),
predict_fn(data, model) and output_fn(prediction, accept), with the toolkit's defaults for
the functions the script leaves out.

Frames on the process's own stdout (the script's prints go to stderr): a JSON line, then the
body's bytes. Requests: {"content_type", "accept", "length"}. Answers: {"ok": true,
"content_type", "length"} and the body, or {"ok": false, "error"}. The first line says
{"ready": true} or {"ready": false, "error"} once model_fn has run."""

import importlib.util
import io
import json
import os
import sys
import traceback

model_dir = sys.argv[1]
protocol = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)
sys.stdout = sys.stderr
requests = os.fdopen(0, "rb")


def send(header, body=b""):
    protocol.write((json.dumps(header) + "\n").encode())
    protocol.write(body)
    protocol.flush()


def last_line(e):
    return f"{type(e).__name__}: {e}"


def default_model_fn(directory):
    for name in ("model.joblib", "model.pkl"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            if name.endswith(".joblib"):
                import joblib
                return joblib.load(path)
            import pickle
            with open(path, "rb") as f:
                return pickle.load(f)
    raise ValueError(f"inference.py has no model_fn and {directory} holds no model.joblib or model.pkl")


def default_input_fn(body, content_type):
    media = (content_type or "text/csv").split(";")[0].strip().lower()
    text = body.decode()
    if media == "application/json":
        data = json.loads(text)
        return data["instances"] if isinstance(data, dict) and "instances" in data else data
    if media in ("application/jsonlines", "application/x-jsonlines"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if media == "text/csv":
        rows = [[float(v) for v in line.split(",")] for line in text.splitlines() if line.strip()]
        try:
            import numpy
            return numpy.array(rows)
        except ImportError:
            return rows
    raise ValueError(f"the default input_fn does not read {content_type}: give inference.py an input_fn")


def default_predict_fn(data, model):
    return model.predict(data)


def default_output_fn(prediction, accept):
    media = (accept or "application/json").split(",")[0].split(";")[0].strip().lower()
    values = prediction.tolist() if hasattr(prediction, "tolist") else prediction
    if media == "text/csv":
        rows = values if isinstance(values, list) else [values]
        lines = [",".join(str(v) for v in (r if isinstance(r, list) else [r])) for r in rows]
        return "\n".join(lines) + "\n", "text/csv"
    return json.dumps(values), "application/json"


try:
    sys.path.insert(0, os.path.join(model_dir, "code"))
    spec = importlib.util.spec_from_file_location("inference", os.path.join(model_dir, "code", "inference.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    model_fn = getattr(script, "model_fn", default_model_fn)
    input_fn = getattr(script, "input_fn", default_input_fn)
    predict_fn = getattr(script, "predict_fn", default_predict_fn)
    output_fn = getattr(script, "output_fn", None)
    model = model_fn(model_dir)
except Exception as e:
    traceback.print_exc()
    send({"ready": False, "error": last_line(e)})
    sys.exit(1)
send({"ready": True})

while True:
    line = requests.readline()
    if not line:
        break
    request = json.loads(line)
    body = requests.read(request["length"])
    try:
        prediction = predict_fn(input_fn(body, request["content_type"]), model)
        if output_fn is None:
            answer, content_type = default_output_fn(prediction, request["accept"])
        else:
            answer = output_fn(prediction, request["accept"])
            content_type = (request["accept"] or "application/json").split(",")[0].strip()
            if isinstance(answer, tuple):
                answer, content_type = answer
        data = answer.encode() if isinstance(answer, str) else bytes(answer)
        send({"ok": True, "content_type": content_type, "length": len(data)}, data)
    except Exception as e:
        traceback.print_exc()
        send({"ok": False, "error": last_line(e)})
