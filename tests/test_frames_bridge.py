"""Rust cells and the kernel's frames through the rustmaker-frames bridge, end to end: a frame
written by Rust is listed by `%frames` and used by a magic, a magic's frame is read by Rust, a
DataFrame ending a cell renders as the kernel's table, and each refusal says what to do."""

from __future__ import annotations

import json
import os

import pytest

from conftest import ok, results, run, start_kernel_with_env, stream_text

# 50 KB: the sample frames pass, a 10,000-row one does not.
LIMIT_MB = "0.05"

SALES = """frames::put_columns("{name}", &frames::Columns::new()
    .with("price", (0..200).map(|i| {base} + (i % 7) as f64).collect::<Vec<f64>>())
    .with("color", (0..200).map(|i| ["red", "blue"][i % 2]).collect::<Vec<&str>>())
    .with("units", (0..200).map(|i| if i == 3 {{ None }} else {{ Some(i as i64) }}).collect::<Vec<_>>()))?;"""


def refusal(kc, code: str) -> str:
    """What a cell returning the bridge's error with `?` shows: evcxr prints an error a cell
    returns with `?` on stderr (the cell itself ends, as evcxr_jupyter's do)."""
    return stream_text(ok(kc, code), "stderr")


@pytest.fixture(scope="module")
def fk(tmp_path_factory):
    home = tmp_path_factory.mktemp("frames-home")
    env = dict(os.environ, RUSTMAKER_FRAMES_LIMIT_MB=LIMIT_MB, RUSTMAKER_DATA_DIR=str(home / "data"))
    km, kc = start_kernel_with_env(env, home / "kernel.log")
    kc.home = home
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def test_rust_writes_a_frame_that_magics_list_and_use_and_reads_theirs(fk, tmp_path):
    ok(fk, SALES.format(name="sales", base="10.0"), timeout=300)
    listed = stream_text(ok(fk, "%frames"))
    assert "sales: 200 rows × 3 columns" in listed, listed
    shown = stream_text(ok(fk, "%frames sales"))
    assert "price: f64" in shown and "color: str" in shown and "units: i64" in shown, shown
    # A magic uses the frame Rust wrote...
    ok(fk, f"%monitor baseline --data sales --output {tmp_path}/baseline")
    stats = json.loads((tmp_path / "baseline" / "statistics.json").read_text())
    assert stats["dataset"]["item_count"] == 200
    # ... and Rust reads the frame a magic wrote.
    ok(fk, SALES.format(name="today", base="90.0"))
    ok(fk, f"%monitor check --data today --baseline {tmp_path}/baseline --output {tmp_path}/today -o violations")
    [checked] = results(ok(fk, 'let v = frames::columns("violations")?;\n'
                               'v.text("feature_name").unwrap().iter().flatten().any(|f| f == "price")'))
    assert checked == "true"
    [nulls] = results(ok(fk, 'frames::columns("sales")?.int("units").unwrap().iter().filter(|u| u.is_none()).count()'))
    assert nulls == "1"
    [names] = results(ok(fk, 'frames::list()?.iter().map(|(n, r, c)| format!("{n}:{r}x{c}")).collect::<Vec<_>>().join(",")'))
    assert "sales:200x3" in names and "today:200x3" in names and "violations:" in names, names


def test_refusals_say_what_was_wrong_and_the_store_keeps_its_frames(fk):
    ok(fk, SALES.format(name="kept", base="1.0"), timeout=300)
    missing = refusal(fk, 'frames::columns("nope")?.height()')
    assert "no frame named `nope`" in missing and "kept" in missing, missing
    bad = refusal(fk, 'frames::put_columns("1bad", &frames::Columns::new().with("x", vec![1.0]))?;')
    assert "not a valid frame name" in bad, bad
    uneven = refusal(fk, 'frames::put_columns("u", &frames::Columns::new().with("a", vec![1.0, 2.0]).with("b", vec![1.0]))?;')
    assert "column `b` has 1 values where `a` has 2" in uneven, uneven
    large = refusal(fk, 'frames::put_columns("big", &frames::Columns::new().with("x", vec![0.5f64; 10_000]))?;')
    assert "is 0.09 MB, over the bridge's limit of 0.05 MB" in large, large
    assert "RUSTMAKER_FRAMES_LIMIT_MB" in large
    listed = stream_text(ok(fk, "%frames"))
    assert "kept: 200 rows" in listed and "big" not in listed and "1bad" not in listed, listed


def test_a_frame_ending_a_cell_renders_as_the_kernels_table(fk):
    # What FrameDisplay::evcxr_display prints for a polars DataFrame, done with the light
    # form: the head in a file of the session folder, named in evcxr's content markers.
    code = """let socket = std::path::PathBuf::from(std::env::var("RUSTMAKER_FRAMES_SOCKET").unwrap());
let path = frames::exchange_file(socket.parent().unwrap(), "show");
frames::columns::write_file(&frames::Columns::new().with("word", vec!["a", "b"]).with("n", vec![1i64, 2]), &path)?;
println!("EVCXR_BEGIN_CONTENT application/x-rustmaker-frame\\n1200\\t{}\\nEVCXR_END_CONTENT", path.display());"""
    reply, outputs = run(fk, code)
    assert reply["status"] == "ok", reply
    data = next(m["content"]["data"] for m in outputs if m["msg_type"] in ("execute_result", "display_data"))
    assert "<table" in data["text/html"] and "1200 rows × 2 columns (showing the first 2)" in data["text/html"]
    rows = data["application/vnd.dataresource+json"]["data"]
    assert rows == [{"word": "a", "n": 1}, {"word": "b", "n": 2}], rows
    assert "application/x-rustmaker-frame" not in data
    # A marker naming a file outside the session folder is not read.
    reply, outputs = run(fk, 'println!("EVCXR_BEGIN_CONTENT application/x-rustmaker-frame\\n1\\t/etc/passwd\\nEVCXR_END_CONTENT");')
    assert reply["status"] == "ok"
    assert not any("<table" in m["content"].get("data", {}).get("text/html", "") for m in outputs)


def test_a_damaged_frame_file_is_said_not_shown(fk):
    code = """let socket = std::path::PathBuf::from(std::env::var("RUSTMAKER_FRAMES_SOCKET").unwrap());
let path = frames::exchange_file(socket.parent().unwrap(), "show");
std::fs::write(&path, b"PAR1 not a frame").unwrap();
println!("EVCXR_BEGIN_CONTENT application/x-rustmaker-frame\\n3\\t{}\\nEVCXR_END_CONTENT", path.display());"""
    reply, outputs = run(fk, code)
    assert reply["status"] == "ok", reply
    [shown] = results(outputs)
    assert "the frame could not be shown" in shown and "RMFRAME1" in shown, shown
    # The kernel serves on, frames intact.
    assert "kept: 200 rows" in stream_text(ok(fk, "%frames"))


@pytest.mark.parametrize("broken", ["TMPDIR", "RUSTMAKER_DATA_DIR"])
def test_a_bridge_that_cannot_be_made_fails_the_cell_and_the_kernel_serves_on(tmp_path, broken):
    # A path under a file cannot be a folder: the session folder (TMPDIR) or the crate's
    # place (the data folder) cannot be made.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = dict(os.environ, RUSTMAKER_DATA_DIR=str(tmp_path / "data"))
    env[broken] = str(blocker / "below")
    km, kc = start_kernel_with_env(env, tmp_path / "kernel.log")
    try:
        reply, _ = run(kc, 'frames::columns("x")?.height()', timeout=300)
        assert reply["status"] == "error" and reply["ename"] == "FramesUnavailable", reply
        expected = "could not open its frame bridge" if broken == "TMPDIR" else "cannot write the rustmaker-frames crate"
        assert expected in reply["evalue"], reply["evalue"]
        assert run(kc, "%lsmagic")[0]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
