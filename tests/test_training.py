"""Training from the notebook: %train (built-in and script mode), %predict and %experiments,
end to end through the kernel, with frames, files and S3 (moto) as sources."""

from __future__ import annotations

import json
import os
import pathlib
import sqlite3
import sys
import tarfile
import time

import pytest

from conftest import AWS, error_of, html_of, interrupted_reply, ok, run, start_kernel_with_env, stream_text

DATA = pathlib.Path(__file__).resolve().parent / "data" / "ml"


def shown(outs) -> str:
    """The text/plain of the cell's displays."""
    return "\n".join(m["content"]["data"]["text/plain"] for m in outs
                     if m["msg_type"] in ("display_data", "update_display_data", "execute_result"))


@pytest.fixture(scope="module")
def mk(moto_url, tmp_path_factory):
    """A kernel with its own data directory and experiment store, on the moto endpoint."""
    home = tmp_path_factory.mktemp("ml-home")
    env = dict(os.environ, HOME=str(home), AWS_ENDPOINT_URL=moto_url, RUSTMAKER_HOME=str(home),
               RUSTMAKER_DATA_DIR=str(home / "data"), RUSTMAKER_PYTHON=sys.executable,
               JPY_SESSION_NAME=str(home / "iris-study.ipynb"), **AWS)
    env.pop("RUSTMAKER_EXPERIMENTS_DB", None)
    env.pop("RUSTMAKER_EXPERIMENT", None)
    km, kc = start_kernel_with_env(env, home / "kernel.log")
    kc.home, kc.km = home, km
    kc.db = home / "data" / "experiments.db"
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def test_train_three_algorithms_then_leaderboard_and_predict(mk):
    iris = DATA / "iris.csv"
    outs = ok(mk, f"%train iris-lr --algorithm logistic-regression --data {iris} --target target")
    html = html_of(outs)
    assert "training job iris-lr" in html and "Completed" in html, html
    ok(mk, f"%train iris-rf --algorithm random-forest --data {iris} --target target --hp num_trees=40")
    ok(mk, f'%%train iris-gb --algorithm xgboost --data {iris} --target target\n{{"num_round": 30, "eta": 0.3}}')
    # The default experiment is the notebook's name.
    outs = ok(mk, "%experiments leaderboard iris-study --sort validation:accuracy -o board")
    bundle = [m for m in outs if m["msg_type"] == "display_data"][0]["content"]["data"]
    table = bundle["application/vnd.dataresource+json"]
    names = [row["TrialComponentName"] for row in table["data"]]
    assert sorted(names) == ["iris-gb", "iris-lr", "iris-rf"]
    scores = [row["validation:accuracy"] for row in table["data"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.9
    # The same numbers as the store holds, straight from SQLite.
    db = sqlite3.connect(mk.db)
    for row in table["data"]:
        last = db.execute("SELECT value FROM metrics WHERE component = ? AND name = 'validation:accuracy' "
                          "ORDER BY step DESC, rowid DESC LIMIT 1", (row["TrialComponentName"],)).fetchone()[0]
        assert last == pytest.approx(row["validation:accuracy"])
    assert {r["num_round"] for r in table["data"] if r["TrialComponentName"] == "iris-gb"} == {30}
    # Losses sort the other way unless told.
    outs = ok(mk, "%experiments leaderboard iris-study --sort validation:logloss --top 2")
    rows = [m for m in outs if m["msg_type"] == "display_data"][0]["content"]["data"]["application/vnd.dataresource+json"]["data"]
    assert len(rows) == 2 and rows[0]["validation:logloss"] <= rows[1]["validation:logloss"]

    outs = ok(mk, f"%predict --model iris-rf --data {iris} -o scored")
    outs = ok(mk, "%frames scored")
    assert "predicted_label" in json.dumps(outs, default=str) and "probability" in json.dumps(outs, default=str)

    outs = ok(mk, "%experiments compare iris-lr iris-gb")
    html = html_of(outs)
    assert "num_round" in html and "validation:accuracy (last)" in html and "<svg" in html
    outs = ok(mk, "%experiments show iris-study -o analytics")
    text = json.dumps([m["content"] for m in outs])
    assert "validation:accuracy - StdDev" in text and "validation:accuracy - Count" in text
    outs = ok(mk, "%train describe iris-gb")
    assert "HyperParameters.eta: 0.3" in shown(outs)
    outs = ok(mk, "%train list")
    assert "iris-rf" in json.dumps(outs, default=str)
    outs = ok(mk, "%train logs iris-gb --tail 3")
    assert "final:" in stream_text(outs)
    # The artifact is SageMaker's model.tar.gz with the manifest.
    model = mk.home / "data" / "training-jobs" / "iris-rf" / "output" / "model.tar.gz"
    with tarfile.open(model) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest["algorithm"] == "random-forest" and manifest["schema"]["classes"] == ["setosa", "versicolor", "virginica"]
    # %predict also takes the file itself.
    ok(mk, f"%predict --model {model} --data {iris} -o again")


def test_frames_and_s3_as_sources_and_outputs(mk, boto):
    s3 = boto("s3")
    s3.create_bucket(Bucket="ml-data")
    s3.upload_file(str(DATA / "breast_cancer.csv"), "ml-data", "cancer/train.csv")
    ok(mk, "%s3 read s3://ml-data/cancer/train.csv -o cancer")
    ok(mk, "%train cancer-frame --algorithm gradient-boosting --data cancer --target target --experiment cancer --hp num_round=20")
    ok(mk, "%train cancer-s3 --algorithm naive-bayes --data s3://ml-data/cancer/train.csv --target target "
           "--experiment cancer --output s3://ml-data/models")
    body = s3.get_object(Bucket="ml-data", Key="models/cancer-s3/output/model.tar.gz")["Body"].read()
    assert body[:2] == b"\x1f\x8b"
    outs = ok(mk, "%predict --model cancer-s3 --data cancer -o cancer_scored")
    assert "predicted_label" in json.dumps(outs, default=str)


TRAIN_PY = r'''
import json, os, sys, time
hps = json.loads(os.environ["SM_HPS"])
rows = 0
for f in os.listdir(os.environ["SM_CHANNEL_TRAIN"]):
    rows += len(open(os.path.join(os.environ["SM_CHANNEL_TRAIN"], f)).read().splitlines()) - 1
print(f"rows={rows} lr={hps['lr']}")
for epoch in range(int(hps["epochs"])):
    print(f"epoch={epoch} val_acc={0.5 + epoch / 10:.2f}")
if hps.get("sleep"):
    time.sleep(float(hps["sleep"]))
json.dump(hps, open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w"))
'''


SLOW_PY = """
import os, time
print("working", flush=True)
time.sleep(float(os.environ["SM_HP_SLEEP"]))
"""


def test_script_mode_streams_logs_and_extracts_metrics(mk, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_PY)
    outs = ok(mk, f"%train scripted --entry-point {script} --channel train={DATA / 'wine.csv'} "
                  f"--hp lr=0.1 --hp epochs=4 --metric-definition 'validation:accuracy=val_acc=([0-9.]+)' "
                  f"--experiment scripts")
    text = stream_text(outs)
    assert "rows=178 lr=0.1" in text and "epoch=3 val_acc=0.80" in text
    outs = ok(mk, "%experiments leaderboard scripts --sort validation:accuracy")
    row = [m for m in outs if m["msg_type"] == "display_data"][0]["content"]["data"]["application/vnd.dataresource+json"]["data"][0]
    assert row["validation:accuracy"] == pytest.approx(0.8) and row["entry_point"] == "train.py"


def test_a_failing_script_and_an_interrupt(mk, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("print('reading')\nraise RuntimeError('the label column is empty')\n")
    evalue = error_of(mk, f"%train broken --entry-point {bad} --experiment scripts")
    assert "RuntimeError: the label column is empty" in evalue and "exit status 1" in evalue
    slow = tmp_path / "slow.py"
    slow.write_text(SLOW_PY)
    reply, took = interrupted_reply(mk, mk.km, f"%train sleepy --entry-point {slow} --hp lr=1 --hp epochs=1 "
                                               f"--hp sleep=60 --experiment scripts", after=3)
    assert reply["status"] == "error" and took < 15, (reply, took)
    outs = ok(mk, "%train describe sleepy")
    assert "TrainingJobStatus: Stopped" in shown(outs)
    # The kernel serves on, and the name can be trained again with --replace.
    ok(mk, f"%train sleepy --entry-point {slow} --hp sleep=0 --experiment scripts --replace")


def test_bad_inputs_get_clear_errors(mk, tmp_path):
    iris = DATA / "iris.csv"
    assert "did you mean `random-forest`" in error_of(mk, f"%train x --algorithm random-forrest --data {iris} --target target")
    assert "no column `species`" in error_of(mk, f"%train x --algorithm svm --data {iris} --target species")
    assert "not numeric" in error_of(mk, f"%train x --algorithm svm --data {iris} --target target --problem-type regression")
    assert "eta=2 is out of range" in error_of(mk, f"%train x --algorithm gradient-boosting --data {iris} --target target --hp eta=2")
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b,target\n")
    assert "no rows" in error_of(mk, f"%train x --algorithm svm --data {empty} --target target")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,target\n1,2,0\n3,4,5,1\n5,6,1\n")
    evalue = error_of(mk, f"%train x --algorithm svm --data {ragged} --target target")
    assert "line 3 has 4 fields where the header has 3" in evalue, evalue
    assert "not a valid training job name" in error_of(mk, f"%train bad_name --algorithm svm --data {iris} --target target")
    assert "already has a column" in error_of(mk, f"%predict --model iris-rf --data scored -o twice")
    assert "needs columns the data lacks" in error_of(mk, f"%predict --model iris-rf --data {DATA / 'wine.csv'} -o wrong")
    assert "add -f" in error_of(mk, "%experiments delete scripts")
    assert "no experiment `nope`" in error_of(mk, "%experiments show nope")
    assert "no trial component of this experiment has the metric" in error_of(mk, "%experiments leaderboard iris-study --sort auc")
    ok(mk, "%experiments delete scripts -f")
    outs = ok(mk, "%experiments list")
    assert "scripts" not in json.dumps([m["content"]["data"].get("text/plain") for m in outs if m["msg_type"] == "display_data"])
    # Nothing was recorded for the refused jobs.
    names = [r[0] for r in sqlite3.connect(mk.db).execute("SELECT name FROM trial_components")]
    assert "x" not in names


def test_stop_from_another_notebook(mk, tmp_path, moto_url):
    """`%train stop` in a second kernel stops a job running in the first."""
    home = mk.home
    env = dict(os.environ, HOME=str(home), RUSTMAKER_HOME=str(home), RUSTMAKER_DATA_DIR=str(home / "data"),
               AWS_ENDPOINT_URL=moto_url, **AWS)
    km2, kc2 = start_kernel_with_env(env, tmp_path / "kernel2.log")
    try:
        slow = tmp_path / "slow.py"
        slow.write_text(SLOW_PY)
        msg_id = mk.execute(f"%train remote-stop --entry-point {slow} --hp sleep=60 --experiment scripts2")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            reply, outs = run(kc2, "%train stop remote-stop")
            if reply["status"] == "ok" and "Stopping" in stream_text(outs):
                break
            time.sleep(0.3)
        from conftest import reply_to
        assert reply_to(mk, msg_id, 30)["content"]["status"] == "error"
        outs = ok(kc2, "%train describe remote-stop")
        assert "TrainingJobStatus: Stopped" in shown(outs)
    finally:
        kc2.stop_channels()
        km2.shutdown_kernel(now=True)


def test_csv_header_is_sniffed_for_train_and_predict(mk, tmp_path):
    lines = (DATA / "iris.csv").read_text().splitlines()
    raw = tmp_path / "iris-raw.csv"
    raw.write_text("\n".join(lines[1:]) + "\n")  # SageMaker's built-in style: no header
    outs = ok(mk, f"%train iris-raw --algorithm decision-tree --data {raw} --target _c4")
    assert "the first line is read as data, columns named _c0" in stream_text(outs)
    assert "Completed" in html_of(outs)
    outs = ok(mk, f"%predict --model iris-raw --data {raw} -o raw_scored")
    assert "raw_scored: 150 rows" in stream_text(ok(mk, "%frames raw_scored"))
    # A header, sniffed, is named; forcing --no-header on it makes its names a row of data.
    outs = ok(mk, f"%predict --model iris-rf --data {DATA / 'iris.csv'} -o named_scored")
    assert "the first line is read as the header" in stream_text(outs)
    assert "no column `target`" in error_of(
        mk, f"%train x --algorithm decision-tree --data {DATA / 'iris.csv'} --no-header --target target")
    assert "cannot be used with" in error_of(
        mk, f"%train x --algorithm decision-tree --data {raw} --header --no-header --target _c4")
