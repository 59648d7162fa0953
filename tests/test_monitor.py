"""Model monitoring: `rustmaker monitor` and `%monitor` write SageMaker Model Monitor's files;
the KLL sketch is checked against Apache DataSketches, each violation type against crafted
data, and every bad input against its message."""

from __future__ import annotations

import json
import pathlib
import subprocess

import numpy as np
import pytest

from conftest import BIN, error_of, html_of, ok, stream_text

REFERENCE = pathlib.Path(__file__).resolve().parent / "data" / "sagemaker"


def monitor(*args, expect_ok=True):
    proc = subprocess.run([BIN, "monitor", *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    if expect_ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def shape(value, path="$"):
    """Every key path of a JSON document with its JSON type (list items merged)."""
    if isinstance(value, dict):
        out = {(path, "object")}
        for k, v in value.items():
            out |= shape(v, f"{path}.{k}")
        return out
    if isinstance(value, list):
        out = {(path, "array")}
        for v in value:
            out |= shape(v, f"{path}[]")
        return out
    kind = {bool: "boolean", str: "string", type(None): "null"}.get(type(value), "number")
    return {(path, kind)}


def write_csv(path, columns: dict[str, list], header=True):
    names = list(columns)
    rows = zip(*columns.values())
    with open(path, "w") as f:
        if header:
            f.write(",".join(names) + "\n")
        for row in rows:
            f.write(",".join("" if v is None else str(v) for v in row) + "\n")


def shop(n, seed, shift=0.0, colors=("red", "blue", "green")):
    rng = np.random.default_rng(seed)
    return {
        "id": [int(x) for x in rng.integers(0, 100_000, n)],
        "price": [round(float(x), 2) for x in rng.gamma(4.0, 10.0, n) * (1 + shift)],
        "color": [colors[i] for i in rng.integers(0, len(colors), n)],
        "qty": [int(x) for x in rng.poisson(3, n)],
    }


def test_files_have_sagemakers_shape(tmp_path):
    data = shop(500, 1)
    data["price"][3] = None
    write_csv(tmp_path / "d.csv", data)
    monitor("baseline", "--data", tmp_path / "d.csv", "--header", "--output", tmp_path / "b")
    stats = json.loads((tmp_path / "b" / "statistics.json").read_text())
    constraints = json.loads((tmp_path / "b" / "constraints.json").read_text())
    assert stats["version"] == 0.0 and stats["dataset"]["item_count"] == 500
    by_name = {f["name"]: f for f in stats["features"]}
    assert [by_name[n]["inferred_type"] for n in ("id", "price", "color", "qty")] == \
        ["Integral", "Fractional", "String", "Integral"]
    price = by_name["price"]["numerical_statistics"]
    assert price["common"] == {"num_present": 499, "num_missing": 1}
    assert price["distribution"]["kll"]["sketch"]["parameters"] == {"c": 0.64, "k": 2048.0}
    buckets = price["distribution"]["kll"]["buckets"]
    assert len(buckets) == 10 and buckets[0]["lower_bound"] == price["min"] and sum(b["count"] for b in buckets) == 499
    exact = [v for v in data["price"] if v is not None]
    assert price["mean"] == pytest.approx(np.mean(exact)) and price["std_dev"] == pytest.approx(np.std(exact))
    assert by_name["color"]["string_statistics"]["distinct_count"] == 3.0

    # The same key paths and types as files SageMaker wrote (numeric: the documented schema).
    reference = json.loads((REFERENCE / "schema-statistics-numeric.json").read_text())
    ours_numeric = shape({**stats, "features": [by_name["price"]]})
    assert shape({**reference, "features": [reference["features"][0]]}) <= ours_numeric
    reference = json.loads((REFERENCE / "sdk-test-statistics.json").read_text())
    assert shape(reference) <= shape({**stats, "features": [by_name["color"]]})
    reference = json.loads((REFERENCE / "schema-constraints.json").read_text())
    assert shape(reference) <= shape(constraints)
    c = {f["name"]: f for f in constraints["features"]}
    assert c["price"]["completeness"] == pytest.approx(499 / 500)
    assert c["price"]["num_constraints"] == {"is_non_negative": True}
    assert sorted(c["color"]["string_constraints"]["domains"]) == ["blue", "green", "red"]
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_method"] == "Robust"

    # SageMaker's own files (with their legacy keys) are read as a baseline.
    base = tmp_path / "sagemaker"
    base.mkdir()
    (base / "statistics.json").write_text((REFERENCE / "sdk-test-statistics.json").read_text())
    (base / "constraints.json").write_text((REFERENCE / "sdk-test-constraints.json").read_text())
    write_csv(tmp_path / "m.csv", {"message": ["preproc-not-YET-supported-for-csv-json"] * 20})
    out = monitor("check", "--data", tmp_path / "m.csv", "--header", "--baseline", base, "--output", tmp_path / "o")
    violations = json.loads((tmp_path / "o" / "constraint_violations.json").read_text())
    reference = json.loads((REFERENCE / "sdk-test-constraint_violations.json").read_text())
    assert shape(reference) == shape(violations)
    assert [(v["feature_name"], v["constraint_check_type"]) for v in violations["violations"]] == \
        [("second_message", "missing_column_check")], out.stdout


@pytest.mark.parametrize("distribution", ["uniform", "normal", "pareto", "duplicates"])
def test_kll_rank_error_against_datasketches(tmp_path, distribution):
    import datasketches

    rng = np.random.default_rng(7)
    n = 300_000
    values = {"uniform": rng.uniform(0, 1, n), "normal": rng.normal(0, 1, n),
              "pareto": rng.pareto(1.5, n), "duplicates": rng.integers(0, 50, n).astype(float)}[distribution]
    (tmp_path / "v.csv").write_text("x\n" + "\n".join(repr(float(v)) for v in values) + "\n")
    monitor("baseline", "--data", tmp_path / "v.csv", "--header", "--output", tmp_path / "b")
    feature = json.loads((tmp_path / "b" / "statistics.json").read_text())["features"][0]
    sketch = feature["numerical_statistics"]["distribution"]["kll"]["sketch"]
    items = np.concatenate([np.array(level, dtype=float) for level in sketch["data"]])
    weights = np.concatenate([np.full(len(level), 2.0 ** h) for h, level in enumerate(sketch["data"])])
    assert weights.sum() == n, "every value is counted once"
    order = np.argsort(items)
    items, cum = items[order], np.cumsum(weights[order])

    theirs = datasketches.kll_doubles_sketch(2048)
    theirs.update(values.copy())
    exact = np.sort(values)
    probes = np.quantile(exact, np.linspace(0.01, 0.99, 99))
    exact_rank = np.searchsorted(exact, probes, side="right") / n
    ours_rank = cum[np.searchsorted(items, probes, side="right") - 1] / n
    ours = np.abs(ours_rank - exact_rank).max()
    ds = np.abs(np.array([theirs.get_rank(p) for p in probes]) - exact_rank).max()
    print(f"{distribution}: rank error rustmaker {ours:.6f}, DataSketches {ds:.6f}")
    # DataSketches' own a-priori bound at k = 2048 (99 % confidence) is about 0.00138.
    assert ours <= max(ds * 2, theirs.normalized_rank_error(False)), (ours, ds)


def test_each_violation_is_raised_by_its_fault_and_not_by_clean_data(tmp_path):
    write_csv(tmp_path / "train.csv", shop(3000, 1))
    monitor("baseline", "--data", tmp_path / "train.csv", "--header", "--output", tmp_path / "b")

    write_csv(tmp_path / "clean.csv", shop(2000, 2))
    out = monitor("check", "--data", tmp_path / "clean.csv", "--header", "--baseline", tmp_path / "b",
                  "--output", tmp_path / "clean")
    assert "Completed: 0 violation(s)" in out.stdout, out.stdout
    assert json.loads((tmp_path / "clean" / "constraint_violations.json").read_text()) == {"violations": []}

    bad = shop(2000, 3, shift=0.5, colors=("red", "blue", "green", "purple"))
    bad["price"][:100] = ["n/a"] * 100
    bad["extra"] = [1] * 2000
    bad["id"] = [None if i % 5 == 0 else v for i, v in enumerate(bad["id"])]
    del bad["qty"]
    write_csv(tmp_path / "bad.csv", bad)
    out = monitor("check", "--data", tmp_path / "bad.csv", "--header", "--baseline", tmp_path / "b",
                  "--output", tmp_path / "bad")
    assert "CompletedWithViolations" in out.stdout
    found = {(v["feature_name"], v["constraint_check_type"]): v["description"] for v in
             json.loads((tmp_path / "bad" / "constraint_violations.json").read_text())["violations"]}
    assert set(found) == {("price", "data_type_check"), ("price", "baseline_drift_check"),
                          ("color", "categorical_values_check"), ("color", "baseline_drift_check"),
                          ("id", "completeness_check"), ("qty", "missing_column_check"),
                          ("extra", "extra_column_check")}, found
    assert found[("price", "data_type_check")] == (
        "Data type match requirement is not met. Expected data type: Fractional, Expected match: 100.0%. "
        "Observed: Only 95.0% of data is Fractional.")
    assert "purple" in found[("color", "categorical_values_check")]
    assert "Expected completeness: 100.0%. Observed: Only 80.0%" in found[("id", "completeness_check")]

    # Thresholds edited in constraints.json apply, as SageMaker users edit them.
    path = tmp_path / "b" / "constraints.json"
    constraints = json.loads(path.read_text())
    constraints["monitoring_config"]["datatype_check_threshold"] = 0.9
    constraints["monitoring_config"]["distribution_constraints"]["comparison_threshold"] = 0.9
    constraints["monitoring_config"]["distribution_constraints"]["categorical_comparison_threshold"] = 0.9
    path.write_text(json.dumps(constraints))
    monitor("check", "--data", tmp_path / "bad.csv", "--header", "--baseline", tmp_path / "b",
            "--output", tmp_path / "edited")
    kinds = {v["constraint_check_type"] for v in
             json.loads((tmp_path / "edited" / "constraint_violations.json").read_text())["violations"]}
    assert "baseline_drift_check" not in kinds and "data_type_check" not in kinds, kinds

    # ChiSquared: the categorical drift is Pearson's test, flagged below the p-value threshold.
    constraints["monitoring_config"]["distribution_constraints"].update(
        categorical_drift_method="ChiSquared", categorical_comparison_threshold=0.01)
    path.write_text(json.dumps(constraints))
    for data, drifted in (("bad.csv", True), ("clean.csv", False)):
        monitor("check", "--data", tmp_path / data, "--header", "--baseline", tmp_path / "b",
                "--output", tmp_path / "chi")
        found = {v["feature_name"]: v["description"] for v in json.loads(
            (tmp_path / "chi" / "constraint_violations.json").read_text())["violations"]
            if v["constraint_check_type"] == "baseline_drift_check"}
        assert ("color" in found) == drifted, found
        if drifted:
            assert found["color"].startswith("Chi-squared test p-value: ") and "below threshold: 0.01" in found["color"]


def test_bad_inputs_are_named_and_nothing_is_half_written(tmp_path):
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3\n")
    err = monitor("baseline", "--data", tmp_path / "ragged.csv", "--header", "--output", tmp_path / "r",
                  expect_ok=False)
    assert err.returncode == 1 and "ragged.csv line 3: a row with 1 fields where the rows before have 2" in err.stderr
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())

    (tmp_path / "empty.csv").write_text("a,b\n")
    err = monitor("baseline", "--data", tmp_path / "empty.csv", "--header", "--output", tmp_path / "e",
                  expect_ok=False)
    assert "has no rows" in err.stderr

    err = monitor("baseline", "--data", tmp_path / "data.txt", "--output", tmp_path / "e", expect_ok=False)
    assert "cannot tell the format" in err.stderr

    # An all-null column is Unknown; mixed types make a column String.
    write_csv(tmp_path / "odd.csv", {"none": [None] * 10, "mixed": [1, 2, "x", 4, 5, 6, 7, 8, 9, 10]})
    monitor("baseline", "--data", tmp_path / "odd.csv", "--header", "--output", tmp_path / "odd")
    stats = {f["name"]: f for f in json.loads((tmp_path / "odd" / "statistics.json").read_text())["features"]}
    assert stats["none"]["inferred_type"] == "Unknown" and stats["mixed"]["inferred_type"] == "String"

    (tmp_path / "odd" / "statistics.json").write_text('{"version": 0.0, "dataset": ')
    err = monitor("check", "--data", tmp_path / "odd.csv", "--header", "--baseline", tmp_path / "odd",
                  "--output", tmp_path / "o2", expect_ok=False)
    assert "statistics.json is not a valid statistics.json (line 1" in err.stderr, err.stderr
    assert not (tmp_path / "o2").exists()

    (tmp_path / "d.jsonl").write_text('{"a": 1}\n[1, 2]\n')
    err = monitor("baseline", "--data", tmp_path / "d.jsonl", "--output", tmp_path / "j", expect_ok=False)
    assert "d.jsonl line 2: each line must be a JSON object" in err.stderr


def test_json_lines_and_parquet_sources(tmp_path):
    import pandas as pd

    records = [{"a": i, "b": f"v{i % 3}", "c": i / 2} for i in range(100)]
    records[5] = {"a": 5, "late": "x"}
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    monitor("baseline", "--data", tmp_path / "d.jsonl", "--output", tmp_path / "j")
    stats = {f["name"]: f for f in json.loads((tmp_path / "j" / "statistics.json").read_text())["features"]}
    assert stats["late"]["string_statistics"]["common"] == {"num_present": 1, "num_missing": 99}
    assert stats["b"]["string_statistics"]["common"]["num_missing"] == 1
    assert stats["c"]["inferred_type"] == "Fractional"

    pd.DataFrame({"x": np.arange(1000), "y": np.linspace(0, 1, 1000), "s": ["k"] * 1000}).to_parquet(
        tmp_path / "d.parquet")
    monitor("baseline", "--data", tmp_path / "d.parquet", "--output", tmp_path / "p")
    stats = {f["name"]: f for f in json.loads((tmp_path / "p" / "statistics.json").read_text())["features"]}
    assert [stats[n]["inferred_type"] for n in "xys"] == ["Integral", "Fractional", "String"]
    assert stats["x"]["numerical_statistics"]["sum"] == sum(range(1000))


def test_monitor_magic_on_frames_and_files(ak, boto, tmp_path):
    write_csv(tmp_path / "train.csv", shop(1000, 1))
    boto("s3").create_bucket(Bucket="monitor-data")
    boto("s3").upload_file(str(tmp_path / "train.csv"), "monitor-data", "train.csv")
    ok(ak, "%s3 read s3://monitor-data/train.csv -o train")
    out = ok(ak, f"%monitor baseline --data train --output {tmp_path / 'b'}")
    assert "Baseline of frame `train` (1000 rows, 4 features)" in stream_text(out)
    assert "Fractional" in html_of(out)

    bad = shop(500, 2, colors=("red", "purple"))
    write_csv(tmp_path / "today.csv", bad)
    reply_outputs = ok(ak, f"%monitor check --data {tmp_path / 'today.csv'} --header "
                           f"--baseline {tmp_path / 'b'} --output {tmp_path / 'r'} -o violations")
    text = "".join(m["content"]["data"]["text/plain"] for m in reply_outputs if m["msg_type"] == "display_data")
    assert "CompletedWithViolations" in text and "categorical_values_check" in html_of(reply_outputs)
    assert "violations:" in stream_text(ok(ak, "%frames violations"))
    out = ok(ak, f"%monitor report {tmp_path / 'r'}")
    html = html_of(out)
    assert "<svg" in html and "categorical_values_check" in html and (tmp_path / "r" / "report.html").exists()

    assert "neither a frame" in error_of(ak, f"%monitor baseline --data nothing --output {tmp_path / 'x'}")
    out = ok(ak, f"%monitor baseline --data s3://monitor-data/train.csv --header --output {tmp_path / 's3b'}")
    assert "1000 rows, 4 features" in stream_text(out)
    assert "no object at or under s3://monitor-data/nope.csv" in error_of(
        ak, f"%monitor baseline --data s3://monitor-data/nope.csv --output {tmp_path / 'x'}")
    assert "is a prefix" in error_of(ak, f"%monitor baseline --data s3://monitor-data/ --output {tmp_path / 'x'}")
    (tmp_path / "ragged.csv").write_text("a,b\n1\n")
    assert "line 2" in error_of(ak, f"%monitor baseline --data {tmp_path / 'ragged.csv'} --header --output {tmp_path / 'x'}")
    ok(ak, "%frames train")


def capture_line(payload: str, encoding: str, when: str, content_type="text/csv") -> str:
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": payload,
                              "encoding": encoding},
            "endpointOutput": {"observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT",
                               "data": "0.5", "encoding": "CSV"}},
        "eventMetadata": {"eventId": "f04a8538-696c-4648-8064-8b680b2e3318", "inferenceTime": when},
        "eventVersion": "0"})


def test_capture_from_s3_and_the_command_line_on_s3(ak, boto, moto_url, tmp_path):
    import os

    from conftest import AWS

    write_csv(tmp_path / "train.csv", shop(1000, 1), header=False)
    s3 = boto("s3")
    s3.create_bucket(Bucket="capture-data")
    s3.upload_file(str(tmp_path / "train.csv"), "capture-data", "train/train.csv")
    env = dict(os.environ, AWS_ENDPOINT_URL=moto_url, **AWS)
    proc = subprocess.run([BIN, "monitor", "baseline", "--data", "s3://capture-data/train/train.csv", "--output",
                           str(tmp_path / "b")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and "1000 rows" in proc.stdout, proc.stderr
    rows = shop(50, 2)
    for hour in (7, 8):
        lines = [capture_line(f"{i},{p},{c},{q}", "CSV", f"2026-11-25T{hour:02d}:{n:02d}:00Z")
                 for n, (i, p, c, q) in enumerate(zip(*rows.values()))]
        s3.put_object(Bucket="capture-data", Body="\n".join(lines).encode(),
                      Key=f"datacapture/ep/AllTraffic/2026/11/25/{hour:02d}/00-00-000-uuid.jsonl")
    out = ok(ak, f"%monitor check --capture s3://capture-data/datacapture/ep --baseline {tmp_path / 'b'} "
                 f"--output {tmp_path / 'r'} -o runs")
    html = html_of(out)
    assert html.count("Completed") >= 2 and "2026-11-25T08:00:00Z" in html, html
    assert (tmp_path / "r" / "2026/11/25/08" / "constraint_violations.json").exists()
    assert "runs: 2 rows" in stream_text(ok(ak, "%frames runs"))


def test_capture_is_checked_hour_by_hour_and_reported(tmp_path):
    import base64

    write_csv(tmp_path / "train.csv", shop(3000, 1), header=False)
    monitor("baseline", "--data", tmp_path / "train.csv", "--output", tmp_path / "b")
    root = tmp_path / "capture" / "my-endpoint" / "AllTraffic" / "2026" / "11" / "25"

    def hour_file(hour, lines):
        d = root / f"{hour:02d}"
        d.mkdir(parents=True)
        (d / "21-48-871-0b7bfd33-c8a7-4adf-a09a-98fd0af79974.jsonl").write_text("\n".join(lines) + "\n")

    clean = shop(300, 2)
    rows = [f"{i},{p},{c},{q}" for i, p, c, q in zip(*clean.values())]
    hour_file(10, [capture_line(r + "\n", "CSV", f"2026-11-25T10:{i % 60:02d}:00Z") for i, r in enumerate(rows)])
    drifted = shop(300, 3, shift=0.8, colors=("purple", "red"))
    lines = []
    for i, (idv, p, c, q) in enumerate(zip(*drifted.values())):
        when = f"2026-11-25T11:{i % 60:02d}:00Z"
        if i % 3 == 0:
            lines.append(capture_line(json.dumps([idv, p, c, q]), "JSON", when, "application/json"))
        elif i % 3 == 1:
            lines.append(capture_line(base64.b64encode(f"{idv},{p},{c},{q}".encode()).decode(), "BASE64", when,
                                      "application/octet-stream"))
        else:
            lines.append(capture_line(f"{idv},{p},{c},{q}", "CSV", when))
    hour_file(11, lines)
    hour_file(13, [capture_line("1,2,red,3", "CSV", "2026-11-25T13:00:00Z"),
                   capture_line("%%%", "BASE64", "2026-11-25T13:01:00Z")])

    out = monitor("check", "--capture", tmp_path / "capture" / "my-endpoint", "--baseline", tmp_path / "b",
                  "--output", tmp_path / "reports", "--since", "2026-11-25T10", "--until", "2026-11-25T13:59:59Z")
    lines = out.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["2026-11-25T10:00:00Z", "Completed"], ["2026-11-25T11:00:00Z", "CompletedWithViolations"],
        ["2026-11-25T12:00:00Z", "Failed"], ["2026-11-25T13:00:00Z", "Failed"]], out.stdout
    assert "records=300" in lines[0] and "no captured data" in lines[2]
    assert "line 2: BASE64 data that does not decode" in lines[3]
    kinds = {(v["feature_name"], v["constraint_check_type"]) for v in json.loads(
        (tmp_path / "reports" / "2026/11/25/11" / "constraint_violations.json").read_text())["violations"]}
    assert {("_c1", "baseline_drift_check"), ("_c2", "categorical_values_check")} <= kinds, kinds
    assert not (tmp_path / "reports" / "2026/11/25/12").exists()

    out = monitor("report", tmp_path / "reports" / "2026/11/25/11")
    page = (tmp_path / "reports" / "2026/11/25/11" / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "CompletedWithViolations" in page
    for feature in ("_c0", "_c1", "_c2", "_c3"):
        assert f">{feature}</h4>" in page
    assert "categorical_values_check" in page and "baseline_drift_check" in page
    assert page.count("<svg") == 4 and "drift distance" in page
    err = monitor("report", tmp_path / "b", expect_ok=False)
    assert "baseline_statistics.json" in err.stderr and "output directory of `%monitor check`" in err.stderr

    err = monitor("check", "--capture", tmp_path / "nothing-here", "--baseline", tmp_path / "b", "--output",
                  tmp_path / "x", expect_ok=False)
    assert "nothing-here" in err.stderr
    err = monitor("check", "--capture", tmp_path / "capture", "--since", "last tuesday", "--baseline",
                  tmp_path / "b", "--output", tmp_path / "x", expect_ok=False)
    assert "is not a time like" in err.stderr


def test_schema_names_and_types_columns(tmp_path):
    write_csv(tmp_path / "d.csv", {"a": [1, 2, 3], "b": ["x", "y", "x"], "c": [7, 8, 9]}, header=False)
    monitor("baseline", "--data", tmp_path / "d.csv", "--schema", "id,label:String,code:String",
            "--output", tmp_path / "b")
    stats = {f["name"]: f for f in json.loads((tmp_path / "b" / "statistics.json").read_text())["features"]}
    assert list(stats) == ["id", "label", "code"]
    assert stats["id"]["inferred_type"] == "Integral" and stats["code"]["inferred_type"] == "String"
    code = stats["code"]["string_statistics"]
    assert code["distinct_count"] == 3.0 and {b["value"] for b in code["distribution"]["categorical"]["buckets"]} == {"7", "8", "9"}
    err = monitor("baseline", "--data", tmp_path / "d.csv", "--schema", "id,label", "--output", tmp_path / "x",
                  expect_ok=False)
    assert "--schema names 2 columns but" in err.stderr and "has 3" in err.stderr
    err = monitor("baseline", "--data", tmp_path / "d.csv", "--schema", "a:Text,b,c", "--output", tmp_path / "x",
                  expect_ok=False)
    assert "`Text` is not a type" in err.stderr


def test_a_csv_header_is_sniffed_and_told(tmp_path):
    # The header of a 50,000-row CSV, profiled without --header, is not counted as a row.
    write_csv(tmp_path / "base.csv", shop(50_000, 4))
    proc = monitor("baseline", "--data", tmp_path / "base.csv", "--output", tmp_path / "b")
    stats = json.loads((tmp_path / "b" / "statistics.json").read_text())
    assert stats["dataset"]["item_count"] == 50_000, proc.stdout
    assert {f["name"]: f["inferred_type"] for f in stats["features"]} == {
        "id": "Integral", "price": "Fractional", "color": "String", "qty": "Integral"}
    assert "the first line is read as the header" in proc.stderr and "--no-header" in proc.stderr, proc.stderr

    # --no-header forces the first line to be data: one more row, and numeric columns hold text.
    proc = monitor("baseline", "--data", tmp_path / "base.csv", "--no-header", "--output", tmp_path / "forced")
    stats = json.loads((tmp_path / "forced" / "statistics.json").read_text())
    assert stats["dataset"]["item_count"] == 50_001 and stats["features"][0]["name"] == "_c0"
    assert "read as" not in proc.stderr, "a choice the user made is not repeated back"

    # A CSV without header is read as data, columns _c0 …, and says how to change that.
    write_csv(tmp_path / "raw.csv", shop(300, 5), header=False)
    proc = monitor("baseline", "--data", tmp_path / "raw.csv", "--output", tmp_path / "raw")
    stats = json.loads((tmp_path / "raw" / "statistics.json").read_text())
    assert stats["dataset"]["item_count"] == 300 and [f["name"] for f in stats["features"]] == ["_c0", "_c1", "_c2", "_c3"]
    assert "read as data" in proc.stderr and "--header" in proc.stderr, proc.stderr

    # check sniffs too; both flags at once are refused.
    proc = monitor("check", "--data", tmp_path / "base.csv", "--baseline", tmp_path / "b", "--output", tmp_path / "o")
    assert "Completed: 0 violation(s)" in proc.stdout, proc.stdout + proc.stderr
    err = monitor("baseline", "--data", tmp_path / "base.csv", "--header", "--no-header", "--output", tmp_path / "x",
                  expect_ok=False)
    assert err.returncode != 0 and "--no-header" in err.stderr, err.stderr


def test_monitor_magic_tells_the_sniffed_header(ak, tmp_path):
    write_csv(tmp_path / "named.csv", shop(200, 6))
    out = ok(ak, f"%monitor baseline --data {tmp_path / 'named.csv'} --output {tmp_path / 'b'}")
    assert "the first line is read as the header" in stream_text(out)
    assert json.loads((tmp_path / "b" / "statistics.json").read_text())["dataset"]["item_count"] == 200
