"""Every notebook in notebooks/ runs from start to finish on this kernel, as a user would run it."""

from __future__ import annotations

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def _check_quickstart(nb):
    by_source = {c.source: c.outputs for c in nb.cells if c.cell_type == "code"}
    assert by_source["total"][0]["data"]["text/plain"] == "17.75"
    loop = 'for (i, p) in prices.iter().enumerate() {\n    println!("item {i}: {p:>6.2}");\n}'
    assert "item 2:  10.00" in by_source[loop][0]["text"]
    assert [o["output_type"] for o in by_source[loop]] == ["stream"], "a loop's () is not shown"
    lsmagic = by_source["%lsmagic"][0]["data"]
    assert "%lsmagic" in lsmagic["text/plain"] and "<table>" in lsmagic["text/html"]


# What each notebook must show besides running without errors.
CHECKS = {"quickstart.ipynb": _check_quickstart}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_end_to_end(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="rustmaker", timeout=300, resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    nbformat.validate(nb)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code_cells), "every code cell ran"
    errors = [o for c in code_cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    CHECKS.get(path.name, lambda nb: None)(nb)


def test_every_notebook_is_checked():
    assert "quickstart.ipynb" in {p.name for p in NOTEBOOKS}
