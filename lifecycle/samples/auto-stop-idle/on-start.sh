#!/bin/bash
# Stops this notebook instance after IDLE_TIME seconds with no kernel busy and no activity.
# Open connections (a notebook tab) count as activity unless IGNORE_CONNECTIONS=1.
set -e
IDLE_TIME=${IDLE_TIME:-3600}
IGNORE_CONNECTIONS=${IGNORE_CONNECTIONS:-0}
CHECK_EVERY=${CHECK_EVERY:-60}

cat > "$HOME/.autostop.py" <<'PY'
import datetime, json, os, sys, time, urllib.request

idle_time, ignore_connections, every = int(sys.argv[1]), sys.argv[2] == "1", float(sys.argv[3])
info_path = os.environ["RUSTMAKER_JUPYTER_INFO"]
name = os.environ["NOTEBOOK_INSTANCE_NAME"]
started = None  # when the notebook server first answered: the instance's idle time starts there

def get(info, path):
    req = urllib.request.Request(info["url"].rstrip("/") + path, headers={"Authorization": "token " + info["token"]})
    return json.load(urllib.request.urlopen(req, timeout=10))

def parse(ts):
    # Jupyter writes UTC with a Z; compare in UTC (a common flaw compares it with local time).
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))

while True:
    time.sleep(every)
    try:
        info = json.load(open(info_path))
        kernels = get(info, "/api/kernels")
    except Exception as e:
        print("autostop: the notebook server is not answering yet:", e, flush=True)
        continue
    now = datetime.datetime.now(datetime.timezone.utc)
    started = started or now
    busy = any(k.get("execution_state") == "busy" for k in kernels)
    connected = any(k.get("connections", 0) > 0 for k in kernels) and not ignore_connections
    last = max([parse(k["last_activity"]) for k in kernels if k.get("last_activity")] + [started])
    idle_for = (now - last).total_seconds()
    print(f"autostop: busy={busy} connected={connected} idle for {idle_for:.0f} s", flush=True)
    if not busy and not connected and idle_for >= idle_time:
        import boto3
        boto3.client("sagemaker").stop_notebook_instance(NotebookInstanceName=name)
        print("autostop: idle; stopping", name, flush=True)
        break
PY
nohup python "$HOME/.autostop.py" "$IDLE_TIME" "$IGNORE_CONNECTIONS" "$CHECK_EVERY" >> "$HOME/.autostop.log" 2>&1 &
echo "auto-stop after ${IDLE_TIME}s idle is running in the background"
