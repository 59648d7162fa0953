"""The real sparkmagic Livy client (sparkmagic.livyclientlib) against the local server: the
server speaks Livy to a client nobody here wrote."""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest


@pytest.fixture()
def session(livy_server):
    from sparkmagic.auth.basic import Basic
    from sparkmagic.livyclientlib.endpoint import Endpoint
    from sparkmagic.livyclientlib.livyreliablehttpclient import LivyReliableHttpClient
    from sparkmagic.livyclientlib.livysession import LivySession

    auth = Basic()
    auth.username, auth.password = livy_server.user, livy_server.password
    endpoint = Endpoint(livy_server.url, auth)
    http = LivyReliableHttpClient.from_endpoint(endpoint)
    s = LivySession(http, {"kind": "pyspark"}, MagicMock(), heartbeat_timeout=60)
    s.start()
    yield s
    s.delete()


def test_sparkmagic_creates_a_session_runs_statements_and_reads_sql(session, livy_server):
    from sparkmagic.livyclientlib.command import Command
    from sparkmagic.livyclientlib.sqlquery import SQLQuery

    assert session.status == "idle" and session.id >= 0
    ok, out, mime = Command("spark.range(10).count()").execute(session)
    assert ok and out.strip() == "10" and mime == "text/plain"
    ok, out, _ = Command("raise ValueError('bad input')").execute(session)
    assert not ok and "ValueError" in out and "bad input" in out
    df = SQLQuery("SELECT id, CAST(id * 1.5 AS DOUBLE) AS x, CONCAT('r', id) AS s FROM range(5)", maxrows=-1).execute(session)
    assert list(df.columns) == ["id", "x", "s"]
    assert df["id"].tolist() == [0, 1, 2, 3, 4]
    assert df["x"].tolist() == [0.0, 1.5, 3.0, 4.5, 6.0]
    assert df["s"].tolist()[-1] == "r4"
    logs = session.get_logs()
    assert "starting a local PySpark session" in logs


def test_sparkmagic_sees_sessions_and_deletes_them(livy_server, session):
    from sparkmagic.auth.basic import Basic
    from sparkmagic.livyclientlib.endpoint import Endpoint
    from sparkmagic.livyclientlib.livyreliablehttpclient import LivyReliableHttpClient

    auth = Basic()
    auth.username, auth.password = livy_server.user, livy_server.password
    http = LivyReliableHttpClient.from_endpoint(Endpoint(livy_server.url, auth))
    ids = [s["id"] for s in http.get_sessions()["sessions"]]
    assert session.id in ids
    assert http.get_session(session.id)["state"] in ("idle", "busy")
