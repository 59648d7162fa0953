"""The notebook as a person uses it: JupyterLab, started as `scripts/lab` starts it, driven in
a real browser (Debian's Chromium through Playwright). Each test starts from a fresh workspace
and leaves a screenshot in the artifacts folder ($RUSTMAKER_ARTIFACTS, default
tests/artifacts/); a failure names what the page was missing."""

from __future__ import annotations

import os
import pathlib
import shutil
import uuid

import pytest

from test_jupyterlab import TOKEN, lab  # noqa: F401  (the JupyterLab fixture)

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = pathlib.Path(os.environ.get("RUSTMAKER_ARTIFACTS",
                                        pathlib.Path(__file__).resolve().parent / "artifacts"))


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("Chromium is missing: scripts/setup installs Debian's chromium")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, lab, request):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{lab}/lab/workspaces/t{uuid.uuid4().hex[:10]}?reset&token={TOKEN}")
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    page.close()


def seen(locator, what: str, timeout: float = 60):
    """Waits for the locator, or fails naming what the page did not show."""
    try:
        locator.first.wait_for(timeout=timeout * 1000)
    except playwright.Error as e:
        pytest.fail(f"the page never showed {what}: {e.message.splitlines()[0]}")
    return locator.first


def new_rust_notebook(page):
    card = page.locator('.jp-LauncherCard[data-category="Notebook"]', has_text="Rust (rustmaker)")
    seen(card, "the launcher's Rust (rustmaker) card").click()
    seen(page.get_by_text("Rust (rustmaker) | Idle"), "the kernel going idle")


def run(page, code: str):
    """Types `code` into the notebook's last cell (the empty one that running a cell leaves)
    and runs it. The last, not the active one: an input box or an output clicked makes its
    own cell active again."""
    page.locator(".jp-NotebookPanel .jp-Cell").last.locator(".cm-content").click()
    # Inserted, not typed: the editor's bracket and quote closing would change typed code.
    page.keyboard.insert_text(code)
    page.keyboard.press("Shift+Enter")


def output(page, cell: int):
    return page.locator(".jp-NotebookPanel .jp-Cell").nth(cell).locator(".jp-OutputArea-output")


def test_the_launcher_offers_the_kernel_with_its_logo(page):
    card = seen(page.locator('.jp-LauncherCard[data-category="Notebook"]', has_text="Rust (rustmaker)"),
                "the launcher's Rust (rustmaker) card")
    logo = card.locator("img")
    assert logo.evaluate("img => img.complete && img.naturalWidth > 0"), "the kernel's logo did not load"


def test_rust_cells_keep_state_and_magics_render_tables(page):
    new_rust_notebook(page)
    run(page, "let x = 40 + 2;")
    run(page, "x * 2")
    assert seen(output(page, 1), "the second cell's result").inner_text() == "84"
    run(page, 'for i in 0..3 { println!("line {i}"); }')
    assert "line 2" in seen(output(page, 2), "the loop's printed lines").inner_text()
    run(page, "let y: u32 = \"text\";")
    error = seen(output(page, 3), "the compile error")
    assert "mismatched types" in error.inner_text() or "expected" in error.inner_text(), error.inner_text()
    run(page, "%lsmagic")
    seen(output(page, 4).locator("table"), "%lsmagic's HTML table")


def test_the_toolbar_interrupts_a_cell_that_loops_forever(page):
    new_rust_notebook(page)
    run(page, "let kept = 7;")
    seen(page.get_by_text("Rust (rustmaker) | Idle"), "the kernel idle after the first cell")
    run(page, 'println!("looping"); loop {}')
    # Pressed once the loop runs, as a person would: pressed at once after Run, under the
    # whole suite's load, it once went unanswered (cause not found; jupyter_client's interrupt
    # 50 ms after an execute is answered in 0.4 s).
    seen(output(page, 1).filter(has_text="looping"), "the loop's first line")
    page.locator('.jp-NotebookPanel-toolbar [data-jp-item-name="interrupt"]').first.click()
    seen(page.get_by_text("Rust (rustmaker) | Idle"), "the kernel idle after the interrupt", timeout=30)
    run(page, "1 + 1")
    assert seen(output(page, 2), "the result of a cell after the interrupt").inner_text() == "2"


PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def content(mime: str, text: str) -> str:
    """A one-line Rust cell printing evcxr's content block for `mime`."""
    return f'println!("EVCXR_BEGIN_CONTENT {mime}\\n{text}\\nEVCXR_END_CONTENT");'


def test_rich_output_from_rust_renders(page):
    new_rust_notebook(page)
    cells = [
        (content("text/html", "<b class='rm-html'>bold</b>"), ".rm-html", "HTML"),
        (content("image/svg+xml", "<svg xmlns='http://www.w3.org/2000/svg' width='20' height='20'>"
                                  "<circle cx='10' cy='10' r='8'/></svg>"), "img[src^='data:image/svg+xml']", "SVG"),
        (content("image/png", PNG), "img[src^='data:image/png']", "a PNG image"),
        (content("application/json", '{{\\"answer\\": 42}}'), "input[placeholder^='Find']", "the JSON viewer"),
        (content("text/markdown", "**strong** words"), "strong", "Markdown"),
        (content("text/latex", "$$x^2 + 1$$"), "mjx-container", "LaTeX typeset by MathJax"),
        # evcxr's method convention: a value with evcxr_display renders as what it prints.
        ("struct Badge; impl Badge { fn evcxr_display(&self) { "
         + content("text/html", "<i class='rm-badge'>badge</i>") + " } }", None, None),
        ("Badge", ".rm-badge", "a value's evcxr_display"),
        # A frame written by Rust is one of the kernel's frames.
        ('frames::put_columns("seen", &frames::Columns::new().with("word", vec!["tea", "cake"]))?;', None, None),
        ("%frames seen", None, None),
    ]
    for i, (code, selector, what) in enumerate(cells):
        run(page, code)
        if selector is not None:
            seen(output(page, i).locator(selector), f"{what} in cell {i}")
    seen(output(page, len(cells) - 1).filter(has_text="seen: 2 rows × 1 columns"), "the Rust-written frame")


def active_editor(page):
    return page.locator(".jp-NotebookPanel .jp-Cell.jp-mod-active .cm-content")


def idle(page, what: str, timeout: float = 120):
    seen(page.get_by_text("Rust (rustmaker) | Idle"), what, timeout)


def replace_text(page, text: str):
    """Puts `text` in place of what the last cell's editor holds (Escape may have left it)."""
    page.locator(".jp-NotebookPanel .jp-Cell").last.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)


def test_completion_inspector_and_pager(page):
    new_rust_notebook(page)
    run(page, "let numbers = vec![1, 2, 3];")
    idle(page, "the kernel idle after the first cell")
    active_editor(page).click()
    page.keyboard.insert_text("numbers.le")
    # Several matches open the completer; one would be inserted at once. The first request
    # loads rust-analyzer's view of the standard library, which a busy machine may take
    # longer for than the kernel waits: Tab is pressed again, as a person would, but only
    # after the last request had time to be answered (the kernel answers requests in turn,
    # and the completer drops the answer to a request that a newer one replaced).
    completed = page.locator(".jp-Completer-item", has_text="len").or_(
        active_editor(page).filter(has_text="numbers.len"))
    for _ in range(3):
        page.keyboard.press("Tab")
        try:
            completed.first.wait_for(timeout=40_000)
            break
        except playwright.Error:
            pass
    seen(completed, "completion of numbers.le", timeout=1)
    page.keyboard.press("Escape")
    replace_text(page, "String::new")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+Tab")
    assert "Creates a new empty" in seen(page.locator(".jp-Tooltip"), "the inspector's tooltip for String::new").inner_text()
    page.keyboard.press("Escape")
    replace_text(page, "%spark?")
    page.keyboard.press("Shift+Enter")
    # JupyterLab shows a page payload in the cell's output.
    seen(output(page, 1).filter(has_text="%%spark"), "%spark?'s help from the pager")


def test_panic_streaming_input_and_restart(page):
    new_rust_notebook(page)
    run(page, "let before = 1;")
    run(page, 'panic!("boom at {before}");')
    seen(output(page, 1).filter(has_text="boom at 1"), "the panic's message")
    run(page, "before + 1")
    assert seen(output(page, 2), "the cell after the panic").inner_text() == "2"
    run(page, 'for i in 0..8 { println!("tick {i}"); std::thread::sleep(std::time::Duration::from_millis(500)); }')
    seen(output(page, 3).filter(has_text="tick 0"), "the loop's first line while it runs")
    assert page.get_by_text("Rust (rustmaker) | Busy").count() == 1, "the first line came only at the end"
    seen(output(page, 3).filter(has_text="tick 7"), "the loop's last line")
    idle(page, "the kernel idle after the loop")
    run(page, ':dep evcxr_input = "1"')
    idle(page, "the kernel idle after :dep", timeout=300)
    run(page, 'let name = evcxr_input::get_string("Name? ");\nprintln!("hello {name}");')
    box = seen(page.locator(".jp-Stdin-input"), "the input box", timeout=120)
    box.fill("Ada")
    box.press("Enter")
    seen(output(page, 5).filter(has_text="hello Ada"), "what was typed reaching the cell")
    # Restart, from the Kernel menu: the kernel comes back, without the old variables.
    page.get_by_text("Kernel", exact=True).first.click()
    page.get_by_text("Restart Kernel…").first.click()
    seen(page.locator(".jp-Dialog-button.jp-mod-accept"), "the restart dialog").click()
    idle(page, "the kernel idle after the restart")
    run(page, "1 + 1")
    assert seen(output(page, 6), "a cell after the restart").inner_text() == "2"
    run(page, "before")
    seen(output(page, 7).filter(has_text="cannot find value"), "the old variable gone after the restart")


DATA = """let mut train = String::from("x,y,label\\n");
let mut today = String::from("x,y,label\\n");
for i in 0..4000 {
    let (x, y) = ((i % 17) as f64, (i % 5) as f64);
    let label = if x + y > 10.0 { "yes" } else { "no" };
    train.push_str(&format!("{x},{y},{label}\\n"));
    today.push_str(&format!("{},{y},{label}\\n", x + 30.0));
}
std::fs::write("train.csv", &train).unwrap();
std::fs::write("today.csv", &today).unwrap();"""


def test_a_magics_frame_through_rust_and_a_live_training_display(page):
    new_rust_notebook(page)
    run(page, DATA)
    run(page, "%monitor baseline --data train.csv --output base")
    run(page, "%monitor check --data today.csv --baseline base --output report -o violations")
    seen(output(page, 2).filter(has_text="violation"), "the check's violations")
    # The magic's frame, read in Rust, changed, and stored back for a magic to read.
    run(page, 'let v = frames::columns("violations")?;\n'
              'let n = v.height();\n'
              'frames::put_columns("reviewed", &frames::Columns::new()\n'
              '    .with("feature", v.text("feature_name").unwrap().to_vec())\n'
              '    .with("accepted", vec![false; n]))?;\n'
              'n')
    rows = seen(output(page, 3), "the number of violations Rust read").inner_text()
    run(page, "%frames reviewed")
    seen(output(page, 4).filter(has_text=f"reviewed: {rows} rows × 2 columns"), "the frame Rust stored back")
    # One display that updates in place while the job trains, and ends complete. The job may
    # finish within a frame or two (0.3 s in one CI run), too soon for a locator's polling to see
    # it in progress, so the page records every text the display has had as it changes.
    page.evaluate("""() => {
        window.trainingTexts = [];
        new MutationObserver(() => {
            for (const out of document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output')) {
                if (out.innerText.includes('training job browser-boost')) window.trainingTexts.push(out.innerText);
            }
        }).observe(document.querySelector('.jp-NotebookPanel'),
                   {subtree: true, childList: true, characterData: true});
    }""")
    run(page, "%train browser-boost --algorithm gradient-boosting --data train.csv --target label --hp num_round=300")
    job = output(page, 5).filter(has_text="training job browser-boost")
    seen(job.filter(has_text="Completed"), "the training job's display ending Completed", timeout=300)
    texts = page.evaluate("() => window.trainingTexts")
    assert any("InProgress" in text for text in texts), f"the display never showed the job in progress: {texts[:3]}"
    assert job.count() == 1, "the display was updated in place, not shown again"
