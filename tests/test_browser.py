"""The attention page (``--html``) and figure (``--svg``) as a person sees them, in Chromium.

How: one headless Chromium page per module, driven by Playwright's sync API (tests/browser.py:
Debian's Chromium, launched by ``executable_path``). A test writes the files exactly as
``inspect-attention`` does, opens them, reads the rendered page (text, element positions) with
``page.evaluate``, clicks and hovers with the mouse like a user, and takes screenshots whose
pixels are compared with the attention weights. The browser has no network (every host resolves
nowhere, the proxy is a closed port, a route aborts anything but ``file:`` URLs) and every request
the page makes is recorded, as are console errors and uncaught exceptions (tests.browser.PageLog).

Without a chromium binary (or Playwright) these tests skip (apt-get install chromium); with CI
set, that is a failure. Run only them with ``python -m pytest -m browser``; each takes about a
second.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from tests.browser import PageLog, chromium_page, find_chromium, screenshot
from tests.conftest import ROOT, SMALL_TEXT, TINY, random_gpt, run_main
from tinygpt.analysis.attention_report import AttentionReport
from tinygpt.analysis.labels import visible
from tinygpt.views.attention_files import ReportFiles, write_report
from tinygpt.views.attention_html import _pack

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

HOSTILE = [
    "<script>window.pwned=1</script>",
    "</script><script>window.pwned=2</script>",
    "<img src=x onerror=window.pwned=3>",
    "\"double\" 'single'",
    "&amp; &lt; &",
    "\u202eevil",  # RIGHT-TO-LEFT OVERRIDE
    "__DATA__",
]
# Short enough (with --layer, two panels) for the SVG figure to label every character.
CLI_PROMPT = "All:\n<script>window.pwned=1</script> \"q\" 's' &amp; \u202eevil"
WORDS = ["ROMEO:", "\n", "Is", " this", " the", " way", " to", " Mantua", "?", " Is"]


@pytest.fixture(scope="module")
def chromium() -> Iterator[tuple[Page, PageLog]]:
    with chromium_page() as page:
        yield page, PageLog(page)


@pytest.fixture
def page(chromium: tuple[Page, PageLog]) -> Page:
    """The one page, loaded anew by each test (``open_file``)."""
    return chromium[0]


@pytest.fixture
def log(chromium: tuple[Page, PageLog]) -> PageLog:
    """What the page asked for and what went wrong since it was last opened."""
    return chromium[1]


def open_file(page: Page, log: PageLog, path: Path) -> str:
    """Load a file and wait until it has loaded (its scripts have run by then), the log
    emptied first; its URL."""
    log.clear()
    url = path.resolve().as_uri()
    page.goto(url)
    return url


def build_report(tokens: list[str], seed: int = 0) -> AttentionReport:
    """A report of an untrained 2 layer x 2 head model on these tokens (any strings)."""
    model = random_gpt(vocab_size=64, block_size=256, n_layer=2, n_head=2, n_embd=32, seed=seed)
    ids = [sum(map(ord, t)) % 64 for t in tokens]
    return AttentionReport.build(model, ids, tokens, "<b>random</b> & model")


def write_page(report: AttentionReport, tmp_path: Path, title: str = "t") -> tuple[Path, Path]:
    """The HTML page and SVG figure, written by the same function as the CLI."""
    html, svg = tmp_path / "page.html", tmp_path / "fig.svg"
    write_report(report, ReportFiles(html=html, svg=svg), title=title)
    return html, svg


def short_label(token: str, chars: int) -> str:
    """The page's label of a token: whitespace made visible, cut to ``chars`` with an ellipsis."""
    text = visible(token)
    return text if len(text) <= chars else text[: chars - 1] + "\u2026"


# A heatmap on the page: its canvas (content box, page coordinates) and its labels.
FIGURE_JS = """sel => { const f = document.querySelector(sel), c = f.querySelector("canvas");
  const r = c.getBoundingClientRect(), y = window.scrollY;
  const box = e => { const b = e.getBoundingClientRect();
    return {x: b.left, y: b.top + y, w: b.width, h: b.height}; };
  const label = e => ({...box(e), index: +e.dataset.index, text: e.textContent});
  return {canvas: {x: r.left + c.clientLeft, y: r.top + y + c.clientTop, w: c.clientWidth,
                   h: c.clientHeight, width: c.width, height: c.height},
          strip: box(f.querySelector(".keys")), column: box(f.querySelector(".queries")),
          keys: [...f.querySelectorAll(".keys span")].map(label),
          queries: [...f.querySelectorAll(".queries span")].map(label)}; }"""


def figure(page: Page, selector: str = "#focus .fig") -> dict:
    return page.evaluate(FIGURE_JS, selector)


def expected_shades(report: AttentionReport, layer: int, head: int) -> np.ndarray:
    """The red (= green) channel the page paints for each cell: exactly its 8-bit weights
    (decoded from what the page carries), shaded as its script does; 255 is white."""
    t, a = len(report.tokens), report.first_query
    packed = base64.b64decode(_pack(report.query_weights[layer, head], a))
    shades = np.full((t - a, t), 255, np.int32)
    for i in range(a, t):
        for j in range(i + 1):
            byte = packed[i * (i + 1) // 2 - a * (a + 1) // 2 + j]
            shades[i - a, j] = math.floor(255 * (1 - math.sqrt(byte / 255)) + 0.5)
    return shades


def cell_colours(page: Page, fig: dict, rows: int, cols: int) -> np.ndarray:
    """A screenshot of the canvas, sampled at the centre of every cell: (rows, cols, 3)."""
    c = fig["canvas"]
    shot = screenshot(page, {"x": c["x"], "y": c["y"], "width": c["w"], "height": c["h"]})
    ys = ((np.arange(rows) + 0.5) * c["h"] / rows).astype(int)
    xs = ((np.arange(cols) + 0.5) * c["w"] / cols).astype(int)
    return shot[ys][:, xs].astype(np.int32)


def assert_shows_head(page: Page, report: AttentionReport, layer: int, head: int) -> np.ndarray:
    t, a = len(report.tokens), report.first_query
    colours = cell_colours(page, figure(page), t - a, t)
    want = expected_shades(report, layer, head)
    assert np.abs(colours[..., 0] - want).max() <= 1, f"picture is not L{layer}H{head}"
    assert np.abs(colours[..., 1] - want).max() <= 1 and (colours[..., 2] == 255).all()
    return colours


def test_heatmap_pixels_are_the_weights_and_switching_head_redraws(page, log, tmp_path):
    report = build_report(WORDS * 2)
    html, _ = write_page(report, tmp_path)
    open_file(page, log, html)
    assert log.problems == []
    before = assert_shows_head(page, report, 0, 0)  # the page opens on the selected head
    weights = report.query_weights[0, 0]
    large = (weights >= 0.25).numpy()
    assert large.any() and (before[large][:, 0] <= 128).all()  # large weights: clearly blue
    future = np.triu(np.ones_like(large), 1).astype(bool)
    assert (before[future] == 255).all()  # the masked future stays white
    # A real mouse click at the middle of another head's thumbnail (scrolled into view).
    page.click('.thumb[data-key="1.1"] canvas')
    after = assert_shows_head(page, report, 1, 1)
    assert (np.abs(after - before).max(-1) > 8).sum() > len(report.tokens)  # a new picture
    assert page.evaluate("document.querySelector('.thumb.sel').dataset.key") == "1.1"
    assert page.evaluate("document.getElementById('layer').value") == "1"
    # The head picker, operated as a user does: choose an option, which fires "change".
    page.select_option("#head", "0")
    assert_shows_head(page, report, 1, 0)
    assert log.problems == []


@pytest.mark.parametrize(
    ("tokens", "queries"),
    [(WORDS * 2, None), (WORDS * 2, (6, 20)), ([c for c in SMALL_TEXT[:150]], None)],
    ids=["words", "queries-6:20", "150-chars"],
)
def test_labels_sit_on_their_columns_and_rows(page, log, tmp_path, tokens, queries):
    report = build_report(tokens)
    if queries:
        report = report.cut(*queries)
    t, a = len(report.tokens), report.first_query
    html, _ = write_page(report, tmp_path)
    open_file(page, log, html)
    for where in ("#focus .fig", "#rollout .fig"):
        fig = figure(page, where)
        c = fig["canvas"]
        assert c["w"] == c["width"] and c["h"] == c["height"] == (t - a) * c["height"] // (t - a)
        cell_w, cell_h = c["w"] / t, c["h"] / (t - a)
        # The keys strip is exactly as wide as the heatmap, and every key label centred on its
        # column; every query label on its row.
        assert fig["strip"]["x"] == pytest.approx(c["x"], abs=1)
        assert fig["strip"]["w"] == pytest.approx(c["w"], abs=1)
        for k in fig["keys"]:
            centre = c["x"] + (k["index"] + 0.5) * cell_w
            assert k["x"] + k["w"] / 2 == pytest.approx(centre, abs=1.5), k
        for q in fig["queries"]:
            centre = c["y"] + (q["index"] - a + 0.5) * cell_h
            assert q["y"] + q["h"] / 2 == pytest.approx(centre, abs=1.5), q
        if t <= 40:  # cells big enough for text: one label per key and per query
            assert [k["index"] for k in fig["keys"]] == list(range(t))
            assert [q["index"] for q in fig["queries"]] == list(range(a, t))
        else:  # every k-th, never overlapping
            assert len(fig["keys"]) >= t // 4 and len(fig["queries"]) >= (t - a) // 4
            for one, two in zip(fig["keys"], fig["keys"][1:], strict=False):
                assert one["x"] + one["w"] <= two["x"] + 0.5
        for k in fig["keys"]:
            assert k["text"] == short_label(report.tokens[k["index"]], 8)
        for q in fig["queries"]:
            assert q["text"] == short_label(report.tokens[q["index"]], 10)
    # The labels are painted: dark text above each labelled column, left of each labelled row.
    fig = figure(page)
    c, strip, column = fig["canvas"], fig["strip"], fig["column"]
    # Hovering the last query's first key names that cell (the mouse at that point of the
    # canvas, scrolled into view).
    cell = {"x": 0.5 * c["w"] / t, "y": c["h"] - 0.5 * c["h"] / (t - a)}
    page.hover("#focus .fig canvas", position=cell)
    tip = page.evaluate("document.getElementById('tip').innerText").splitlines()
    assert tip[0].startswith(f"query {t - 1} ") and tip[1].startswith("key   0 ")
    top = screenshot(page, {"x": c["x"], "y": strip["y"], "width": c["w"], "height": strip["h"]})
    for k in fig["keys"]:
        x0 = max(0, round(k["x"] - c["x"]))
        assert (top[:, x0 : x0 + round(k["w"])] < 160).all(-1).any(), f"key {k} not drawn"
    left = screenshot(page, {"x": column["x"], "y": c["y"], "width": column["w"], "height": c["h"]})
    for q in fig["queries"]:
        y0 = max(0, round(q["y"] - c["y"]))
        assert (left[y0 : y0 + round(q["h"])] < 160).all(-1).any(), f"query {q} not drawn"
    assert log.problems == []


def test_head_table_has_a_chance_row(page, log, tmp_path):
    report = build_report(WORDS * 2)
    html, _ = write_page(report, tmp_path)
    open_file(page, log, html)
    rows = page.evaluate(
        "[...document.querySelectorAll('table.scores tr')].map(r => "
        "[...r.cells].map(c => c.innerText))"
    )
    _, chance, heads = rows[0], rows[1], rows[2:]
    assert chance[0] == "chance" and [h[0] for h in heads] == ["L0H0", "L0H1", "L1H0", "L1H1"]
    # Headers as the terminal's head table names them; each score's key on hover.
    names = page.evaluate("[...document.querySelectorAll('table.scores th')].map(c => c.innerText)")
    header = page.evaluate("[...document.querySelectorAll('table.scores th')].map(c => c.title)")
    assert names[header.index("previous_token")] == "prev"
    assert names[header.index("entropy_normalised")] == "ent"
    levels = report.scores[0].chance
    for key in ("previous_token", "sink", "self_attention", "induction", "duplicate_token"):
        assert chance[header.index(key)] == f"{levels[key]:.3f}", key
    assert chance[header.index("entropy_normalised")] == "1.000"
    assert chance[header.index("copying")] == ""  # no chance level for a weights-only score
    assert "3\u00d7 chance" in page.evaluate("document.getElementById('chance-note').innerText")


def test_the_page_fetches_nothing_and_allows_nothing_else(page, log, tmp_path):
    html, _ = write_page(build_report(WORDS), tmp_path)
    url = open_file(page, log, html)
    assert log.requests == [url]  # the page itself, nothing more
    # It rendered regardless: every thumbnail and both heatmaps drawn, with some blue in them.
    shot = screenshot(page)
    assert page.evaluate("document.querySelectorAll('canvas').length") == 4 + 2
    assert ((shot[..., 2] == 255) & (shot[..., 0] < 128)).sum() > 100
    assert log.problems == []
    csp = page.evaluate(
        "document.querySelector('meta[http-equiv=Content-Security-Policy]').content"
    )
    assert "default-src 'none'" in csp and "unsafe" not in csp
    # Anything a script might try is refused by the page's own policy.
    refused = page.evaluate("fetch('http://example.com/x').then(() => 'fetched', () => 'refused')")
    assert refused == "refused"


def test_a_hostile_prompt_shows_as_text_and_runs_nothing(page, log, tmp_path):
    tokens = [*WORDS[:3], *HOSTILE, *WORDS[3:]]
    report = build_report(tokens)
    title = "".join(tokens)[:80]
    html, svg = write_page(report, tmp_path, title=title)
    open_file(page, log, html)
    assert page.evaluate("window.pwned") is None and log.problems == []
    assert page.evaluate("document.scripts.length") == 2  # the data block and the page's script
    assert page.evaluate("document.querySelectorAll('img, b').length") == 0
    title_text = " ".join(f"tinygpt attention: {title}".split())  # as a browser collapses it
    assert page.evaluate("document.title") == title_text
    assert page.evaluate("document.getElementById('model').innerText") == report.model
    shown = page.evaluate("document.getElementById('prompt').innerText")
    assert shown == "".join(tokens)
    for token in HOSTILE:
        assert token in shown
    keys = figure(page)["keys"]
    assert [k["text"] for k in keys] == [short_label(t, 8) for t in tokens]
    assert short_label("\u202eevil", 8) == "·evil"  # the override is shown, not obeyed
    # The SVG figure, opened on its own: drawn, and every label exactly its token's text.
    open_file(page, log, svg)
    assert page.evaluate("window.pwned") is None and log.problems == []
    assert page.evaluate("document.documentElement.localName") == "svg"  # parsed, no error page
    assert page.evaluate("document.querySelectorAll('script, img, b').length") == 0
    texts = page.evaluate("[...document.querySelectorAll('text')].map(t => t.textContent)")
    for token in tokens:
        assert visible(token)[:8] in texts
    assert "<script>" in texts and "&amp;␣&l" in texts and '"double"' in texts
    assert_svg_drawn(page)


def assert_svg_drawn(page: Page) -> None:
    """Every weight rectangle of the figure is on screen in its own colour."""
    cells = page.evaluate(
        "[...document.querySelectorAll('rect[fill^=\"rgb(\"]')].map(r => { "
        "const b = r.getBoundingClientRect(); "
        "return [b.left + b.width / 2, b.top + b.height / 2, r.getAttribute('fill')]; })"
    )
    shot = screenshot(page)
    assert cells and (shot < 250).any()
    for x, y, fill in cells:
        want = [int(v) for v in fill[4:-1].split(",")]
        assert np.abs(shot[int(y), int(x)].astype(int) - want).max() <= 1, (x, y, fill)


@pytest.fixture(scope="module")
def hostile_checkpoint(tmp_path_factory):
    """A char model trained for one step on text holding every character of CLI_PROMPT."""
    import tinygpt

    root = tmp_path_factory.mktemp("browser")
    (root / "t.txt").write_text(SMALL_TEXT + CLI_PROMPT, encoding="utf-8")
    options = {**TINY, "max_steps": 1, "eval_every": 1, "block_size": 64}
    return tinygpt.train(root / "t.txt", out_dir=root / "ck", **options).out_dir


def test_cli_page_and_figure_in_the_browser(page, log, hostile_checkpoint, tmp_path):
    prompt = CLI_PROMPT
    html, svg = tmp_path / "p.html", tmp_path / "f.svg"
    code, _, err = run_main(
        "inspect-attention",
        "-c",
        str(hostile_checkpoint),
        "--prompt",
        prompt,
        "--layer",
        "1",
        "--html",
        str(html),
        "--svg",
        str(svg),
    )
    assert code == 0, err
    open_file(page, log, html)
    assert log.problems == [] and page.evaluate("window.pwned") is None
    assert page.evaluate("document.getElementById('prompt').innerText") == prompt
    assert page.evaluate("document.getElementById('layer').selectedOptions[0].text") == "layer 1"
    fig, t = figure(page), len(prompt)  # a char model: a token per character
    assert [k["text"] for k in fig["keys"]] == [visible(c) for c in prompt]
    assert [q["text"] for q in fig["queries"]] == [visible(c) for c in prompt]
    colours = cell_colours(page, fig, t, t)
    assert (colours[..., 0] < 250).sum() >= t  # at least each row's largest weight
    open_file(page, log, svg)
    assert log.problems == [] and page.evaluate("window.pwned") is None
    texts = page.evaluate("[...document.querySelectorAll('text')].map(t => t.textContent)")
    assert {"<", ">", "&", '"', "'", "·", "↵"} <= set(texts)  # one character a label here
    assert_svg_drawn(page)


def test_a_one_token_prompt_renders(page, log, tmp_path):
    # Its scores are NaN (nothing to score); NaN is not JSON and used to stop the page's script.
    report = build_report(["ROMEO"])
    assert math.isnan(report.scores[0].previous_token)
    html, _ = write_page(report, tmp_path)
    open_file(page, log, html)
    assert log.problems == []
    assert page.evaluate("document.querySelectorAll('table.scores tr').length") == 1 + 1 + 4
    assert_shows_head(page, report, 0, 0)
    assert torch.equal(report.query_weights[0, 0], torch.ones(1, 1))


@pytest.mark.parametrize("ci", [None, "true"])
def test_a_missing_browser_skips_except_in_ci(monkeypatch, ci):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    if ci:
        monkeypatch.setenv("CI", ci)
    else:
        monkeypatch.delenv("CI", raising=False)
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(outcome, match="chromium not found: apt-get install chromium"):
        find_chromium()


def test_ci_installs_chromium_and_the_readme_says_so():
    ci = (ROOT / ".ci" / "run").read_text()
    install = ci.index("apt-get install -y --no-install-recommends chromium")
    assert install < ci.index("pip install") and 'export CI="${CI:-1}"' in ci
    from tests.docs import documentation  # README.md and docs/ (docs/install.md says it)

    readme = documentation()
    assert "python -m pytest -m browser" in readme and "apt-get install chromium" in readme


def span_colours(page: Page, selector: str) -> list[tuple[str, list[int], str]]:
    """Each span under ``selector``: its text, the colour painted at its centre, its title."""
    spans = page.evaluate(
        f"[...document.querySelectorAll({selector!r})].map(s => {{ "
        "const b = s.getBoundingClientRect(); "
        "return [s.textContent, b.left + b.width / 2, b.top + b.height / 2, s.title]; })"
    )
    shot = screenshot(page)
    return [(text, shot[int(y), int(x)].tolist(), title) for text, x, y, title in spans]


def test_the_attention_page_shows_the_predictions_coloured_by_loss(
    page, log, hostile_checkpoint, tmp_path
):
    from tinygpt.analysis import commands
    from tinygpt.views.interpret_text import loss_rgb

    html = tmp_path / "p.html"
    code, _, err = run_main(
        "inspect-attention",
        "-c",
        str(hostile_checkpoint),
        "--prompt",
        CLI_PROMPT,
        "--html",
        str(html),
    )
    assert code == 0, err
    open_file(page, log, html)
    assert log.problems == [] and page.evaluate("window.pwned") is None
    report = commands.predictions_report(hostile_checkpoint, CLI_PROMPT, device="cpu")
    spans = span_colours(page, "#predicted span")
    assert "".join(text for text, _, _ in spans) == CLI_PROMPT
    for i, (text, colour, title) in enumerate(spans):
        assert title.startswith(f"{i}: ")
        if i == 0:
            continue
        loss = report.predictions[i - 1].loss
        assert f"loss {loss:.2f}" in title and "expected:" in title
        if text.strip():  # a glyph may cover the centre of a visible character: check blanks
            continue
        want = loss_rgb(min(10, round(10 * loss / 5.0)) / 10 * 5.0)
        assert max(abs(a - b) for a, b in zip(colour, want, strict=True)) <= 2, i


@pytest.mark.parametrize(
    "command",
    [
        ["predictions", "-p", CLI_PROMPT],
        ["attribution", "-p", CLI_PROMPT],
        ["patch", "--clean", CLI_PROMPT, "--corrupted", CLI_PROMPT[::-1]],
    ],
)
def test_the_interpret_pages_show_hostile_text_as_text(
    page, log, hostile_checkpoint, tmp_path, command
):
    html, svg = tmp_path / "p.html", tmp_path / "f.svg"
    code, _, err = run_main(
        "inspect", *command, "-c", str(hostile_checkpoint), "--html", str(html), "--svg", str(svg)
    )
    assert code == 0, err
    url = open_file(page, log, html)
    assert log.requests == [url]
    assert log.problems == [] and page.evaluate("window.pwned") is None
    assert page.evaluate("document.scripts.length") == 0  # the page has no script at all
    assert page.evaluate("document.querySelectorAll('img, script, b b').length") == 0
    csp = page.evaluate(
        "document.querySelector('meta[http-equiv=Content-Security-Policy]').content"
    )
    assert "script-src 'none'" in csp and "unsafe" not in csp
    text = page.evaluate("document.body.innerText")
    if command[0] != "attribution":
        assert "<script>window.pwned=1</script>" in text
    shot = screenshot(page)
    assert (shot[..., 0] < 200).any()  # something coloured was painted
    if command[0] == "predictions":
        spans = span_colours(page, ".text span")
        assert "".join(t for t, _, _ in spans) == CLI_PROMPT
    if command[0] == "patch":
        cells = page.evaluate("document.querySelectorAll('.grid td[class]').length")
        assert cells == (2 * 2 + 2) * len(CLI_PROMPT)  # heads and streams, every position
    open_file(page, log, svg)
    assert log.problems == [] and page.evaluate("window.pwned") is None
    assert page.evaluate("document.documentElement.localName") == "svg"
    assert page.evaluate("document.querySelectorAll('script, img').length") == 0
