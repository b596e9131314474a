"""``tinygpt explore``: the page's API against the commands it mirrors (inspect attention,
inspect ablate, generate), its guards (token, Host, CSP, no file names), its lifecycle, and the
page itself in Chromium driven by Playwright."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, SMALL_TEXT, TINY, one_line_error, run_main

TOKEN = "test-token"


@pytest.fixture(scope="module")
def ck(trained_tiny: Path) -> Path:
    """The session's tiny run (TINY on SMALL_TEXT): these tests only read it."""
    return trained_tiny


@pytest.fixture(scope="module")
def explorer(ck):
    from tinygpt.checkpoint.store import load
    from tinygpt.explore.session import Explorer

    model, tokenizer, checkpoint = load(ck, "cpu", attention="manual")
    return Explorer(model, tokenizer, checkpoint)


@pytest.fixture(scope="module")
def client(explorer):
    from starlette.testclient import TestClient

    from tinygpt.explore.server import create_app

    app = create_app(explorer, TOKEN)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        c.params = {"token": TOKEN}  # in every address, as the page puts it
        yield c


def test_every_request_needs_the_token_and_a_local_host(explorer):
    from starlette.testclient import TestClient

    from tinygpt.explore.server import create_app

    app = create_app(explorer, TOKEN)
    fresh = TestClient(app, base_url="http://127.0.0.1:8000")
    for path in ("/", "/api/info", "/static/explore.js", "/api/generate?prompt=a"):
        assert fresh.get(path).status_code == 403, path
        assert fresh.get(path + ("&" if "?" in path else "?") + "token=wrong").status_code == 403
    assert fresh.post("/api/analyse", json={"ids": [1], "position": 0}).status_code == 403
    page = fresh.get(f"/?token={TOKEN}")
    # No cookie: a browser would send it to every port of 127.0.0.1, other servers' included.
    assert page.status_code == 200 and "set-cookie" not in page.headers
    fresh.cookies.set("tinygpt_explore", TOKEN)
    assert fresh.get("/api/info").status_code == 403  # the address alone carries the token
    assert fresh.get(f"/api/info?token={TOKEN}").status_code == 200
    rebound = TestClient(app, base_url="http://attacker.example:8000")  # DNS rebinding
    assert rebound.get(f"/api/info?token={TOKEN}").status_code == 400


def test_every_response_carries_the_csp_and_no_request_names_a_file(client):
    for path in ("/", "/api/info", "/static/explore.css", "/static/nothing.js"):
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp, path
    for name in ("../server.py", "..%2f..%2fpyproject.toml", "index.html", "__init__.py"):
        assert client.get(f"/static/{name}").status_code == 404, name
    html = client.get("/").text
    assert f'<script src="/static/explore.js?token={TOKEN}"' in html
    assert f'href="/static/explore.css?token={TOKEN}"' in html
    assert "http" not in html.split("<body>")[1]


def _attention_json(ck: Path, text: str) -> dict:
    code, out, err = run_main("inspect", "attention", "-c", str(ck), "-p", text, "--json")
    assert code == 0, err
    return json.loads(out)


def test_a_click_shows_the_attention_inspect_attention_prints(client, ck):
    text = "First Citizen"
    ids = client.post("/api/tokens", json={"text": text}).json()["ids"]
    report = _attention_json(ck, text)
    for position in (0, 5, len(ids) - 1):
        answer = client.post("/api/analyse", json={"ids": ids, "position": position}).json()
        assert answer["chance"] == pytest.approx(1 / (position + 1))
        for head in answer["heads"]:
            layer, h = (int(x) for x in head["label"][1:].split("H"))
            expected = report["attention"][layer][h][position][: position + 1]
            assert head["row"] == pytest.approx(expected, abs=1e-7)  # unrounded, as the JSON
        assert answer["tokens"] == report["tokens"]
        assert answer["lens"][-1]["target_prob"] == pytest.approx(
            answer["predictions"]["next_prob"] or answer["lens"][-1]["target_prob"], rel=1e-4
        )


def test_the_step_slider_shows_the_weights_the_run_kept_at_that_step(client, ck):
    from tinygpt.analysis.capture import capture_attention
    from tinygpt.checkpoint.store import open_checkpoint
    from tinygpt.checkpoint.weights import load_weights

    info = client.get("/api/info").json()
    assert info["steps"] == [15, 30] and info["step"] == 30  # TINY evaluates every 15 steps
    ids = client.post("/api/tokens", json={"text": "First Citizen"}).json()["ids"]
    now = client.post("/api/analyse", json={"ids": ids, "position": 7}).json()
    then = client.post("/api/analyse", json={"ids": ids, "position": 7, "step": 15}).json()
    checkpoint = open_checkpoint(ck)
    past = checkpoint.load_model("cpu", attention="manual")
    load_weights(past, checkpoint.history().weights(15), "step 15")
    weights = capture_attention(past.eval(), ids, [str(i) for i in ids]).weights
    for head in then["heads"]:
        layer, h = (int(x) for x in head["label"][1:].split("H"))
        assert head["row"] == pytest.approx(weights[layer, h, 7, :8].tolist(), abs=1e-7)
    assert then["heads"] != now["heads"] and then["lens"] != now["lens"]
    # The model the page explores is the saved one again after an answer at another step.
    assert client.post("/api/analyse", json={"ids": ids, "position": 7}).json() == now
    explained = client.post(
        "/api/explain", json={"ids": ids, "position": 7, "head": "L0H0", "step": 15}
    )
    assert explained.json()["weights"] == pytest.approx(weights[0, 0, 7, :8].tolist(), abs=1e-6)
    refused = client.post("/api/analyse", json={"ids": ids, "position": 7, "step": 16})
    assert refused.status_code == 400 and "no weights of step 16" in refused.json()["error"]


def test_a_text_longer_than_the_block_is_seen_through_the_models_window(client, explorer):
    block = explorer.model.config.block_size
    ids = client.post("/api/tokens", json={"text": SMALL_TEXT[:block]}).json()["ids"] * 3
    last = len(ids) - 1
    answer = client.post("/api/analyse", json={"ids": ids, "position": last}).json()
    assert answer["offset"] == len(ids) - block and answer["position"] == block - 1
    alone = client.post("/api/analyse", json={"ids": ids[-block:], "position": block - 1}).json()
    assert answer["heads"] == alone["heads"] and len(answer["heads"][0]["row"]) == block
    steps = client.post("/api/explain", json={"ids": ids, "position": last, "head": "L0H0"})
    assert steps.json()["offset"] == answer["offset"] and len(steps.json()["weights"]) == block


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_turning_a_head_off_changes_the_loss_as_inspect_ablate_says(client, ck, mode):
    text = SMALL_TEXT[: TINY["block_size"]]  # one block: the text inspect ablate scores
    ids = client.post("/api/tokens", json={"text": text}).json()["ids"]
    ask = {"ids": ids, "position": 3, "mode": mode}
    before = client.post("/api/analyse", json={**ask, "off": []}).json()["predictions"]
    after = client.post("/api/analyse", json={**ask, "off": ["L1H0"]}).json()["predictions"]
    code, out, err = run_main(
        "inspect", "ablate", "-c", str(ck), "--heads", "L1H0", "--mode", mode, "-p", text, "--json"
    )
    assert code == 0, err
    said = json.loads(out)["prompt"]
    assert before["prompt_loss"] == pytest.approx(said["loss"], abs=1e-5)
    assert after["prompt_loss"] == pytest.approx(said["ablated"], abs=1e-5)
    assert after["top"] != before["top"] or after["prompt_loss"] != before["prompt_loss"]


def test_patching_from_a_second_text_is_what_inspect_patch_says(client, ck):
    clean, corrupted = "First Citizen:\nB", "First Senator:\nB"  # one block, same length
    ids = client.post("/api/tokens", json={"text": clean}).json()["ids"]
    answer = client.post(
        "/api/patch", json={"ids": ids, "position": len(ids) - 1, "corrupted": corrupted}
    ).json()
    code, out, err = run_main(
        "inspect", "patch", "-c", str(ck), "--clean", clean, "--corrupted", corrupted, "--json"
    )
    assert code == 0, err
    said = json.loads(out)
    assert answer["clean_logprob"] == pytest.approx(said["clean_logprob"], abs=1e-5)
    # A share is a log-probability over the gap: the two agree in log-probability to float
    # precision (inspect patch runs SDPA), and a small gap magnifies that in the share.
    gap = abs(said["clean_logprob"] - said["corrupted_logprob"])
    for head in answer["heads"]:
        layer, h = (int(x) for x in head["label"][1:].split("H"))
        assert head["restored"] * gap == pytest.approx(said["heads"][layer][h] * gap, abs=2e-5)
    longer = client.post("/api/patch", json={"ids": ids, "position": 3, "corrupted": clean + "e"})
    assert longer.status_code == 400 and "as many as" in longer.json()["error"]


def _events(client, **params) -> list[dict]:
    with client.stream("GET", "/api/generate", params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    events = [block for block in body.split("\n\n") if block.strip()]
    assert events[-1].startswith("event: done")
    lines = [line for block in events[:-1] for line in block.split("\n")]
    return [json.loads(line.removeprefix("data: ")) for line in lines]


def test_the_stream_is_what_generate_writes(client, ck):
    options = {"prompt": "All:", "seed": "7", "max_new_tokens": "30", "temperature": "0.9"}
    items = _events(client, **options)
    code, out, err = run_main(
        "generate", "-c", str(ck), "-p", "All:", "--seed", "7", "--max-new-tokens", "30",
        "--temperature", "0.9", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert "".join(i["text"] for i in items) == json.loads(out)["samples"][0]
    sampled = [i for i in items if i["kind"] == "sample"]
    assert len(sampled) == 30 and all(0 < i["prob"] <= 1 and len(i["top"]) == 5 for i in sampled)
    stopped = _events(client, **{**options, "stop": "e"})
    assert "e" not in "".join(i["text"] for i in stopped if i["kind"] == "sample")[:-1]


def test_a_sampler_that_fails_midway_ends_the_stream_with_a_line(client, explorer, monkeypatch):
    def failing(prompt, cfg):
        yield {"kind": "prompt", "id": 1, "text": "A"}
        raise RuntimeError("out of memory")

    monkeypatch.setattr(explorer, "stream", failing)
    items = _events(client, prompt="All:")
    assert items[-1] == {"kind": "error", "text": "sampling stopped: RuntimeError: out of memory"}


def test_a_click_answers_while_a_long_sample_streams(client, explorer, monkeypatch):
    """The stream samples on the event loop in turns; a click waiting for the model goes next,
    so it answers before the sample ends, not after."""
    sampled: list[int] = []
    real = explorer.stream

    def counted(prompt, cfg):
        for item in real(prompt, cfg):
            sampled.append(1)
            yield item

    monkeypatch.setattr(explorer, "stream", counted)
    params = {"prompt": "All:", "max_new_tokens": "1024", "seed": "1"}
    with client.stream("GET", "/api/generate", params=params) as events:
        lines = events.iter_lines()
        next(line for line in lines if line.startswith("data: "))  # the stream has begun
        ids = client.post("/api/tokens", json={"text": "All:"}).json()["ids"]
        answer = client.post("/api/analyse", json={"ids": ids, "position": 1})
        at_answer = len(sampled)
        rest = [line for line in lines if line.startswith("data: ")]
    assert answer.status_code == 200 and answer.json()["heads"]
    assert 0 < at_answer < len(sampled) and rest  # answered mid-sample; the sample went on
    assert len(sampled) == len(ids) + 1024


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/analyse", {"ids": [999999], "position": 0}),
        ("/api/analyse", {"ids": [1] * 70_000, "position": 0}),
        ("/api/analyse", {"ids": [1, 2], "position": 5}),
        ("/api/analyse", {"ids": "1,2", "position": 0}),
        ("/api/analyse", {"ids": [1, 2], "position": "x"}),
        ("/api/analyse", {"ids": [1, 2], "position": 0, "off": 7}),
        ("/api/analyse", {"ids": [1, 2], "position": 0, "off": [1]}),
        ("/api/analyse", {"ids": [1, 2], "position": 1.5}),
        ("/api/analyse", {"ids": [1, 2], "position": 0, "step": True}),
        ("/api/analyse", {"ids": [1, 2], "position": 0, "off": ["L0H0"], "mode": "bogus"}),
        ("/api/explain", {"ids": [1, 2], "position": None, "head": "L0H0"}),
        ("/api/analyse", {"ids": [1, 2], "position": 0, "off": ["L9H9"]}),
        ("/api/explain", {"ids": [1, 2], "position": 1, "head": "nope"}),
        ("/api/tokens", {"text": ""}),
        ("/api/tokens", {"text": "ünknown ☃"}),
    ],
)
def test_a_bad_request_is_a_400_with_a_sentence(client, path, body):
    response = client.post(path, json=body)
    assert response.status_code == 400 and response.json()["error"], response.text
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"ids": [1, 2], "text": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # past json's recursion
        b'{"ids": [1, 2], "position": 1e400}',  # standard JSON for inf
        b'{"ids": [1, 2], "position": 0, "step": Infinity}',
        b'{"ids": [1, 2], "position": -Infinity}',
    ],
    ids=["nested-5000-deep", "1e400", "step-Infinity", "-Infinity"],
)
@pytest.mark.parametrize("path", ["/api/analyse", "/api/explain", "/api/patch", "/api/tokens"])
def test_json_no_route_can_use_is_a_400(client, path, body):
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"], response.text


def test_a_body_over_the_limit_is_refused_unread(client):
    from tinygpt.explore.server import MAX_BODY

    big = json.dumps({"text": "a" * MAX_BODY})
    response = client.post("/api/tokens", content=big)
    assert response.status_code == 413 and str(MAX_BODY) in response.json()["error"]
    assert client.post("/api/tokens", json={"text": "a" * 1000}).status_code == 200


def test_a_text_over_the_pages_tokens_is_refused_not_cut(client):
    # it was cut to its last 65,536 tokens without a word: the page showed text the model never saw
    from tinygpt.explore.session import MAX_TEXT

    at_most = client.post("/api/tokens", json={"text": "a" * MAX_TEXT})
    assert at_most.status_code == 200 and len(at_most.json()["ids"]) == MAX_TEXT
    over = client.post("/api/tokens", json={"text": "a" * (MAX_TEXT + 1)})
    assert over.status_code == 400
    assert over.json()["error"] == "the text is 65,537 tokens; the page takes 65,536 at most"


def test_bad_sampling_controls_are_a_400_before_the_stream(client):
    for params in (
        {"prompt": "A", "temperature": "-1"},
        {"prompt": ""},
        {"prompt": "A", "top_k": "x"},
    ):
        assert client.get("/api/generate", params=params).status_code == 400, params


# -- the command: start, address, Ctrl-C, ports, a checkpoint that can't load --------------
def _start(ck: Path, *args: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinygpt", "explore", "-c", str(ck), "--no-browser", *args],
        stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:  # the address line says the server is listening
        if " at http://" in line:
            return proc, line.split(" at ", 1)[1].strip()
    raise AssertionError(f"no address printed (exit {proc.wait()})")


@pytest.mark.slow
def test_the_command_serves_until_ctrl_c_and_a_second_one_takes_another_port(ck):
    from urllib.request import urlopen

    first, url = _start(ck)
    second, other = _start(ck)
    try:
        assert url.split("/?")[0] != other.split("/?")[0]
        assert url.startswith("http://127.0.0.1:")
        with urlopen(url.replace("/?", "/api/info?"), timeout=30) as response:
            assert json.loads(response.read())["n_layer"] == TINY["n_layer"]
        port = int(url.split(":")[2].split("/")[0])
        code, _, err = run_main("explore", "-c", str(ck), "--no-browser", "--port", str(port))
        assert "cannot listen" in one_line_error(code, err)
    finally:
        for proc in (first, second):
            proc.send_signal(signal.SIGINT)
    for proc in (first, second):
        assert proc.wait(timeout=60) == 0
        rest = proc.stderr.read() if proc.stderr else ""
        assert "Traceback" not in rest and "stopped" in rest, rest


@pytest.mark.parametrize("port", ["-1", "65536", str(2**63)])
def test_a_port_outside_the_range_is_one_line(ck, port):
    code, _, err = run_main("explore", "-c", str(ck), "--no-browser", "--port", port)
    assert "--port must be from 0" in one_line_error(code, err)  # was an unexpected OverflowError


def test_a_checkpoint_that_cannot_load_is_generates_one_line(tmp_path):
    explore = run_main("explore", "-c", "nowhere", "--no-browser", cwd=tmp_path)
    generate = run_main("generate", "-c", "nowhere", cwd=tmp_path)
    assert one_line_error(explore[0], explore[2]) == one_line_error(generate[0], generate[2])


@pytest.mark.parametrize(
    "host, printed, reached_as",
    [("::1", "http://[::1]:", "[::1]"), ("0.0.0.0", "http://127.0.0.1:", "192.0.2.7")],
)
def test_another_address_prints_a_working_url_and_answers_its_names(
    ck, monkeypatch, host, printed, reached_as
):
    from starlette.testclient import TestClient

    served = []
    monkeypatch.setattr("uvicorn.Server.run", lambda server, **k: served.append(server))
    code, _, err = run_main("explore", "-c", str(ck), "--no-browser", "--host", host)
    if code and "cannot listen" in err:
        pytest.skip(f"this machine cannot listen on {host}")
    assert code == 0, err
    url = err.split(" at ", 1)[1].split()[0]
    assert url.startswith(printed), url
    # Listening on every address, any name may reach it (the token guards it); ::1 by its own.
    client = TestClient(served[0].config.app, base_url=f"http://{reached_as}:8000")
    assert client.get("/api/info?" + url.split("?")[1]).status_code == 200
    assert client.get("/api/info").status_code == 403


def test_a_model_too_large_for_the_device_is_one_line_before_the_page(ck, monkeypatch):
    from tinygpt.config.model import ModelConfig
    from tinygpt.explore.session import memory_needed
    from tinygpt.model import device

    served = []
    monkeypatch.setattr("uvicorn.Server.run", lambda *a, **k: served.append(a))
    monkeypatch.setattr(device, "free_memory", lambda where: 10_000)
    code, _, err = run_main("explore", "-c", str(ck), "--no-browser")
    line = one_line_error(code, err)
    assert "needs about" in line and "GiB is free" in line and "--checkpoint" in line, line
    assert not served  # nothing was served
    monkeypatch.setattr(device, "free_memory", lambda where: None)  # unknown: no refusal
    assert run_main("explore", "-c", str(ck), "--no-browser")[0] == 0 and served
    small, big = ModelConfig(), ModelConfig(n_layer=48, n_embd=1600, block_size=1024)
    assert memory_needed(small, 0) < 2**26 < 2**33 < memory_needed(big, 0)  # 64 MB, 8 GB


# -- the page in Chromium ----------------------------------------------------------------
@pytest.fixture(scope="module")
def served(explorer):
    """The app on a free port of 127.0.0.1, served by uvicorn on a thread."""
    import uvicorn

    from tinygpt.explore.server import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(
        uvicorn.Config(create_app(explorer, TOKEN), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/?token={TOKEN}"
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def page(served):
    """The explore page in headless Chromium (tests/browser.py), which reaches only this server."""
    from urllib.parse import urlsplit

    from tests.browser import chromium_page

    url = urlsplit(served)
    with chromium_page(f"{url.scheme}://{url.netloc}", accept_downloads=True) as page:
        page.goto(served)
        page.wait_for_selector("body[data-ready='1']")
        yield page


@pytest.mark.browser
@pytest.mark.slow
def test_in_the_page_write_click_toggle_and_save(page, ck, explorer, tmp_path):
    page.fill("#prompt", "All:")
    page.fill("#seed", "3")
    page.fill("#max_new_tokens", "12")
    page.click("#go")
    page.wait_for_selector("body[data-written='12']", timeout=60_000)
    spans = page.query_selector_all("#text .tok")
    text = "".join(s.text_content() or "" for s in spans)
    assert len(spans) == 16 and text.startswith("All:")
    # A click shows every head's row for that query, as `inspect attention --json` has it
    report = _attention_json(ck, text)
    spans[9].click()
    page.wait_for_selector("#heads .head")
    for panel in page.query_selector_all("#heads .head"):
        label = panel.get_attribute("data-head") or ""
        layer, h = (int(x) for x in label[1:].split("H"))
        shown = [
            float(c.get_attribute("data-weight") or "nan")
            for c in panel.query_selector_all(".cell")
        ]
        expected = [round(w, 4) for w in report["attention"][layer][h][9][:10]]
        assert shown == pytest.approx(expected, abs=5e-5), label
    # Turning a head off changes the prompt's loss to what inspect ablate says
    before = float(page.get_attribute("#loss", "data-prompt-loss") or "nan")
    page.check("#toggles input[value='L1H0']")
    # (selectors, not script: the page's CSP allows no eval, Playwright's included)
    page.wait_for_selector(f"#loss:not([data-prompt-loss='{before:.6f}'])")
    after = float(page.get_attribute("#loss", "data-prompt-loss") or "nan")
    code, out, err = run_main(
        "inspect",
        "ablate",
        "-c",
        str(ck),
        "--heads",
        "L1H0",
        "--mode",
        "zero",
        "-p",
        text,
        "--json",
    )
    assert code == 0, err
    assert after == pytest.approx(json.loads(out)["prompt"]["ablated"], abs=1e-5)
    page.uncheck("#toggles input[value='L1H0']")
    # The step slider: the same query's rows with the weights the run kept at step 15
    from tinygpt.analysis.capture import capture_attention
    from tinygpt.checkpoint.store import open_checkpoint
    from tinygpt.checkpoint.weights import load_weights

    checkpoint = open_checkpoint(ck)
    past = checkpoint.load_model("cpu", attention="manual").eval()
    load_weights(past, checkpoint.history().weights(15), "step 15")
    ids = explorer.tokens(text)
    weights = capture_attention(past, ids, [str(i) for i in ids]).weights
    assert page.is_visible("#history") and page.inner_text("#step-shown") == "30 (as saved)"
    page.fill("#step", "0")
    page.wait_for_selector("body[data-shown-step='15']")
    for panel in page.query_selector_all("#heads .head"):
        layer, h = (int(x) for x in (panel.get_attribute("data-head") or "")[1:].split("H"))
        shown = [
            float(c.get_attribute("data-weight") or "nan")
            for c in panel.query_selector_all(".cell")
        ]
        assert shown == pytest.approx(weights[layer, h, 9, :10].tolist(), abs=5e-5)
    page.fill("#step", "1")
    page.wait_for_selector("body[data-shown-step='30']")
    # A head's step-by-step computation opens on a click
    page.click("#heads .head[data-head='L0H1']")
    page.wait_for_selector("#explain table")
    assert len(page.query_selector_all("#explain table tr")) == 11  # header + 10 keys
    # Save as page: one file, no script, the text in it, readable with no server
    with page.expect_download() as download:
        page.click("#save")
    saved = tmp_path / "saved.html"
    download.value.save_as(saved)
    html = saved.read_text()
    assert "<script" not in html and "L0H1" in html and "http" not in html.split("<body>")[1]
    assert TOKEN not in html  # a page handed out opens no door to the server
    # Patching from a second text fills the table of heads
    spans[15].click()
    page.wait_for_selector("#position:text-is('15')")  # the panels of this click, not the last
    seen = page.input_value("#corrupted")  # the text the model sees there, to change
    swap = "e" if seen[-1] != "e" else "a"  # the token just before the prediction, changed
    page.fill("#corrupted", seen[:-1] + swap)
    page.click("#patch")
    page.wait_for_selector("#patch-gap:not(:empty)")
    assert "share of the gap" in page.inner_text("#patch-gap"), page.inner_text("#patch-gap")
    assert page.query_selector_all("#patched tr")
    offline = page.context.browser.new_page()
    offline.goto(saved.as_uri())
    assert "What it predicted next" in offline.inner_text("body")
    assert offline.inner_text("#text") == text
    offline.close()


@pytest.mark.browser
@pytest.mark.slow
def test_a_hostile_prompt_stays_text_in_the_page(page):
    hostile = "<img src=x onerror=alert(1)>"
    page.fill("#prompt", hostile)
    page.click("#read")
    page.wait_for_selector("#status:not(:empty)")
    assert page.query_selector("#text img") is None
