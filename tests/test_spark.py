"""The Spark magics end to end: this kernel, the local Livy-compatible server, real PySpark."""

from __future__ import annotations

import base64

import pytest

from conftest import error_of, interrupted_reply, run, start_kernel_with_env, stream_text


@pytest.fixture(scope="module")
def sk(livy_server, tmp_path_factory):
    """A kernel whose default Spark endpoint is the test server."""
    log = tmp_path_factory.mktemp("spark-kernel") / "kernel.log"
    km, kc = start_kernel_with_env(livy_server.kernel_env(), log)
    kc.km = km
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def ok(kc, code, timeout=180):
    reply, outputs = run(kc, code, timeout=timeout)
    assert reply["status"] == "ok", (reply, outputs)
    return outputs


def displays(outputs, mime):
    return [m["content"]["data"][mime] for m in outputs
            if m["msg_type"] in ("display_data", "update_display_data", "execute_result") and mime in m["content"]["data"]]


def test_spark_cell_starts_the_session_and_runs_dataframe_code(sk):
    outputs = ok(sk, "%%spark\ndf = spark.range(100).selectExpr('id', 'id % 3 AS k')\nprint(df.count())\ndf.groupBy('k').count().count()")
    assert stream_text(outputs) == "100\n3\n"
    # The session's start is shown as one display, updated in place to the session table.
    assert any("Application ID" in h for h in displays(outputs, "text/html"))
    assert stream_text(ok(sk, "%%pyspark\n1 + 1")) == "2\n"


def test_spark_error_is_a_jupyter_error_and_the_session_survives(sk):
    reply, outputs = run(sk, "%%spark\nx = 1\n1 / 0")
    assert reply["status"] == "error"
    assert reply["ename"] == "ZeroDivisionError"
    assert "division by zero" in reply["evalue"]
    assert any("1 / 0" in line or "<stdin>" in line for line in reply["traceback"]), reply["traceback"]
    assert [m for m in outputs if m["msg_type"] == "error"]
    assert stream_text(ok(sk, "%%spark\nprint(x)")) == "1\n"


def test_sql_output_keeps_every_type_and_null(sk):
    ok(sk, """%%spark
spark.sql('''SELECT * FROM VALUES
  (1, CAST(2 AS BIGINT), 1.5D, 'a', true, DATE'2024-02-29', TIMESTAMP'2024-02-29 12:34:56', CAST(12.34 AS DECIMAL(10,2))),
  (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
  AS t(i, l, d, s, b, dt, ts, m)''').createOrReplaceTempView('types')""")
    outputs = ok(sk, "%%sql -o typed\nSELECT * FROM types ORDER BY i NULLS LAST")
    html = displays(outputs, "text/html")[-1]
    assert "<th title=\"i32\">i</th>" in html and "2024-02-29" in html
    resource = displays(outputs, "application/vnd.dataresource+json")[-1]
    types = {f["name"]: f["type"] for f in resource["schema"]["fields"]}
    assert types == {"i": "integer", "l": "integer", "d": "number", "s": "string", "b": "boolean",
                     "dt": "date", "ts": "datetime", "m": "number"}
    assert resource["data"][0]["s"] == "a" and resource["data"][0]["b"] is True
    assert all(v is None for v in resource["data"][1].values())
    # The frame store holds it with Spark's types.
    text = stream_text(ok(sk, "%frames typed"))
    # Timestamps carry the Spark session's time zone.
    for dtype in ("i32", "i64", "f64", "str", "bool", "date", "ts: datetime[μs, ", "decimal[10,2]"):
        assert dtype in text, (dtype, text)
    assert "2 rows × 8 columns" in text
    # Sent back, Spark sees the same schema and values, nulls included.
    ok(sk, "%%send_to_spark -i typed -t df -n back")
    out = stream_text(ok(sk, """%%spark
orig = spark.table('types')
print(back.schema.simpleString())
print(sorted(map(tuple, back.collect()), key=str) == sorted(map(tuple, orig.collect()), key=str))"""))
    assert out == ("struct<i:int,l:bigint,d:double,s:string,b:boolean,dt:date,ts:timestamp,m:decimal(10,2)>\n"
                   "True\n"), out


def test_sql_options_quiet_take_and_sample(sk):
    outputs = ok(sk, "%%sql -q -o few -n 7\nSELECT id FROM range(1000)")
    assert not [h for h in displays(outputs, "text/html") if "<table" in h], "-q shows no table"
    assert "7 rows × 1 columns" in stream_text(ok(sk, "%frames few"))
    outputs = ok(sk, "%%sql -m sample -r 0.5 -n -1 -o half -q\nSELECT id FROM range(10000)")
    rows = int(stream_text(ok(sk, "%frames half")).split(" rows")[0].split()[-1])
    assert 4000 < rows < 6000, rows
    ok(sk, "%%sql -q -o empty\nSELECT id, CAST(id AS STRING) AS s FROM range(10) WHERE id > 100")
    assert "empty: 0 rows × 2 columns" in stream_text(ok(sk, "%frames empty"))
    assert "take` or `sample" in error_of(sk, "%%sql -m sideways\nSELECT 1")
    assert "not a valid frame name" in error_of(sk, "%%sql -o 9bad\nSELECT 1")
    assert "no_such_table" in error_of(sk, "%%sql\nSELECT * FROM no_such_table")


def test_send_a_rust_string_to_spark(sk):
    ok(sk, 'let greeting = String::from("hello \\"spark\\"");', timeout=300)
    ok(sk, "%%send_to_spark -i greeting -t str -n g")
    assert stream_text(ok(sk, "%%spark\nprint(g)")) == 'hello "spark"\n'
    assert "cannot read the Rust value `no_such_var`" in error_of(sk, "%%send_to_spark -i no_such_var -t str")
    assert "no frame named `nothing_here`" in error_of(sk, "%%send_to_spark -i nothing_here -t df")


def test_livy_png_output_is_displayed(sk):
    outputs = ok(sk, """%%spark
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
plt.figure(figsize=(2, 2)); plt.plot([1, 3, 2])
%matplot plt""")
    png = displays(outputs, "image/png")
    assert png and base64.b64decode(png[0]).startswith(b"\x89PNG")


def test_interrupt_cancels_the_running_statement_and_keeps_the_session(sk):
    ok(sk, "%%spark\nkept = 42")
    reply, took = interrupted_reply(
        sk, sk.km, "%%spark\nimport time\nspark.range(2).rdd.map(lambda x: time.sleep(120)).collect()", after=4)
    assert reply["status"] == "error"
    assert "cancelled" in reply["evalue"], reply
    assert took < 30
    assert stream_text(ok(sk, "%%spark\nprint(kept)")) == "42\n"


def test_long_statement_shows_progress_in_one_display(sk):
    outputs = ok(sk, "%%spark\nimport time\nspark.range(8).repartition(8).rdd.map(lambda x: time.sleep(0.5) or x).count()")
    ids = {m["content"]["transient"]["display_id"] for m in outputs
           if m["msg_type"] in ("display_data", "update_display_data") and m["content"].get("transient")}
    updates = [m for m in outputs if m["msg_type"] == "update_display_data"]
    assert len(ids) == 1 and updates, outputs
    assert "finished in" in updates[-1]["content"]["data"]["text/plain"]
    assert stream_text(outputs) == "8\n"


def test_two_named_sessions(sk, livy_server):
    auth = f"-a {livy_server.user} -p {livy_server.password} -t Basic_Access"
    ok(sk, f"%spark add -s one -l python -u {livy_server.url} {auth}")
    ok(sk, f"%spark add -s two -l python -u {livy_server.url} {auth}")
    assert "already exists" in error_of(sk, f"%spark add -s two -l python -u {livy_server.url} {auth}")
    assert "skipped" in stream_text(ok(sk, f"%spark add -s two -l python -u {livy_server.url} {auth} -k"))
    ok(sk, "%%spark -s one\nv = 'first'")
    ok(sk, "%%spark -s two\nv = 'second'")
    assert stream_text(ok(sk, "%%spark -s one\nprint(v)")) == "first\n"
    assert stream_text(ok(sk, "%%spark -s two\nprint(v)")) == "second\n"
    outputs = ok(sk, "%%sql -s two -o from_two\nSELECT 'x' AS c")
    assert displays(outputs, "text/html")
    logs = stream_text(ok(sk, "%spark logs -s two"))
    assert "starting a local PySpark session" in logs
    # A session of kind sql runs %%sql through Livy's sql statements.
    ok(sk, f"%spark add -s q -l sql -u {livy_server.url} {auth}")
    ok(sk, "%%sql -s q -o via_sql -q\nSELECT 1 AS a, 'x' AS b, CAST(NULL AS DOUBLE) AS c")
    text = stream_text(ok(sk, "%frames via_sql"))
    assert "1 rows × 3 columns" in text and "a: i32" in text and "c: f64" in text, text
    ok(sk, "%spark delete -s q")
    ok(sk, "%spark delete -s one")
    assert "no Spark session named `one`" in error_of(sk, "%%spark -s one\n1")
    ok(sk, "%spark delete -s two")


def test_info_and_logs(sk):
    out = ok(sk, "%%info")
    assert "Current session configs" in stream_text(out)
    assert any("Current session?" in h for h in displays(out, "text/html"))
    assert "starting a local PySpark session" in stream_text(ok(sk, "%%logs"))


def test_configure_needs_force_then_restarts_with_the_settings(sk):
    body = '{"name": "configured", "conf": {"spark.sql.shuffle.partitions": "3"}}'
    assert "%%configure -f" in error_of(sk, "%%configure\n" + body)
    assert "JSON object" in error_of(sk, "%%configure -f\nnot json")
    ok(sk, "%%configure -f\n" + body)
    out = stream_text(ok(sk, "%%spark\nprint(spark.conf.get('spark.sql.shuffle.partitions'))\nprint('kept' in dir())"))
    assert out == "3\nFalse\n", out


def test_delete_and_cleanup_need_force(sk):
    assert "-f" in error_of(sk, "%%delete -s 0")
    assert "%%cleanup -f" in error_of(sk, "%%cleanup")
    assert "unknown subcommand" in error_of(sk, "%spark frobnicate")
    assert "Deleted" in stream_text(ok(sk, "%%cleanup -f"))
    assert "No active sessions" in stream_text(ok(sk, "%%info"))
    # The next cell starts a fresh default session.
    assert stream_text(ok(sk, "%%spark\n6 * 7")) == "42\n"
