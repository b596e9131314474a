import base64
import hashlib
import itertools
import json
import math
import re
from collections import Counter

import pytest
import torch

from tests.conftest import GPT2, random_gpt, run_in_process
from tests.conftest import TINY as TINY_OPTIONS
from tinygpt.analysis.attention_report import AttentionReport
from tinygpt.analysis.capture import capture_attention, rollout
from tinygpt.analysis.explain import explain
from tinygpt.analysis.probes import (
    copying_scores,
    induction_chance,
    induction_scores_from_weights,
)
from tinygpt.analysis.scores import all_head_scores, head_scores
from tinygpt.config.model import ModelConfig
from tinygpt.errors import UsageError
from tinygpt.model import GPT
from tinygpt.views.attention_html import render_html

T = 16


def random_model(seed=0, n_layer=2, n_head=2):
    return random_gpt(
        "gpt2", seed, vocab_size=30, block_size=T, n_layer=n_layer, n_head=n_head, n_embd=32
    )


def hand_built(kind: str, scale: float = 12.0) -> GPT:
    """One layer, one head, whose attention provably goes to the previous token or to token 0.

    Tokens are ignored (zero token embeddings); position p is the one-hot vector e_p, which
    LayerNorm maps to (e_p - m)/s. Constant terms then shift whole rows of scores and cancel in
    the softmax, leaving only the structure built in:
    * previous: q_i = c x_i and k_j = c S x_j, with S shifting e_d to e_(d+1), so q_i . k_j is
      large exactly when j + 1 = i;
    * sink: q = c e_0 for every query (a bias) and k_j = c x_j[0] e_0, largest for j = 0.
    """
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=5, block_size=T, n_layer=1, n_head=1, n_embd=32, **GPT2)
    model = GPT(cfg).eval()
    n = cfg.n_embd
    with torch.no_grad():
        model.wte.weight.zero_()
        model.wpe.weight.copy_(torch.eye(T, n))
        attn = model.blocks[0].attn
        w = torch.zeros(3 * n, n)
        b = torch.zeros(3 * n)
        if kind == "previous":
            w[:n] = scale * torch.eye(n)
            w[n : 2 * n] = scale * torch.diag(torch.ones(n - 1), -1)  # e_d -> e_(d+1)
        else:
            b[0] = scale
            w[n, 0] = scale
        w[2 * n :] = torch.eye(n)
        attn.c_attn.weight.copy_(w)
        attn.c_attn.bias.copy_(b)
    return model


def test_hand_built_previous_token_head_scores_one():
    model = hand_built("previous")
    run = capture_attention(model, [0] * T, ["a"] * T)
    s = head_scores(run.weights[0, 0])
    # query 1's previous token is token 0, so a perfect previous-token head has sink 1/(T-1)
    assert s.previous_token > 0.99 and s.sink == pytest.approx(1 / (T - 1), abs=0.01)
    assert "previous-token" in s.roles


def test_hand_built_sink_head_scores_one():
    model = hand_built("sink", scale=8.0)
    run = capture_attention(model, [0] * T, ["a"] * T)
    s = head_scores(run.weights[0, 0])
    assert s.sink > 0.99 and s.previous_token < 0.1 and "sink" in s.roles


def test_detectors_on_hand_built_weight_matrices():
    prev = torch.zeros(T, T)
    prev[0, 0] = 1
    prev[torch.arange(1, T), torch.arange(0, T - 1)] = 1
    s = head_scores(prev)
    assert s.previous_token == 1 and s.entropy == 0 and s.self_attention == 0
    uniform = torch.tril(torch.ones(T, T))
    uniform = uniform / uniform.sum(-1, keepdim=True)
    u = head_scores(uniform)
    assert u.entropy_normalised == pytest.approx(1.0) and u.roles == ["broad"]
    n = T // 2
    induction = torch.zeros(2 * n, 2 * n)
    induction[0, 0] = 1
    for i in range(1, 2 * n):
        induction[i, i - n + 1 if i >= n else i - 1] = 1
    assert float(induction_scores_from_weights(induction, n)) == 1.0


def test_captured_weights_match_recomputation_from_q_and_k():
    model = random_model()
    run = capture_attention(model, torch.randint(0, 30, (T,)).tolist(), ["x"] * T)
    for layer, head, query in itertools.product(range(2), range(2), range(T)):
        e = explain(model, run, layer, head, query)  # softmax(q·k/√d) over keys 0..query
        assert e.weights_match_model, (layer, head, query)
        row = run.captures[layer].weights[0, head, query, : query + 1].double()
        torch.testing.assert_close(torch.tensor(e.weights, dtype=torch.float64), row)
    w = run.weights
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))
    assert torch.all(w.triu(1) == 0)


def test_rollout_of_identity_attention_is_identity_and_rows_sum_to_one():
    eye = torch.eye(T).expand(3, 2, T, T)
    torch.testing.assert_close(rollout(eye), torch.eye(T))
    model = random_model()
    run = capture_attention(model, list(range(T)), ["x"] * T)
    torch.testing.assert_close(rollout(run.weights).sum(-1), torch.ones(T))


def test_explanation_reproduces_the_model():
    model = random_model()
    run = capture_attention(model, list(range(10)), [str(i) for i in range(10)])
    e = explain(model, run, layer=1, head=1, query=6)
    assert e.weights_match_model and len(e.raw_scores) == 7 and e.masked == 3
    assert sum(e.weights) == pytest.approx(1.0)
    assert e.scaled_scores[0] == pytest.approx(e.raw_scores[0] / math.sqrt(16))
    assert len(e.head_shares) == 2


def test_resolve_query_by_position_and_text():
    tokens = ["The", " cat", " sat", " cat"]
    report = AttentionReport.build(random_model(), [1, 2, 3, 2], tokens, "m")
    assert report.query_position(None) == 3
    assert report.query_position("-2") == 2
    assert report.query_position("cat") == 3
    with pytest.raises(UsageError):
        report.query_position("dog")
    with pytest.raises(UsageError):
        report.query_position("9")
    for start, end in ((2, 2), (0, 5)):  # the same check and words as --queries
        with pytest.raises(UsageError, match=rf"queries='{start}:{end}': need 0 <= A < B <= 4"):
            report.cut(start, end)
    cut = report.cut(2, 3)  # the query " sat" of the prompt cut after it
    assert cut.query_position(None) == 2 and cut.query_position("sat") == 2
    for before in ("0", "cat"):  # before the first query in range
        with pytest.raises(UsageError):
            cut.query_position(before)


def test_html_escapes_untrusted_tokens():
    payload = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"
    tokens = [payload, "&amp;", "ok"]
    w = torch.tril(torch.ones(3, 3))
    w = (w / w.sum(-1, keepdim=True))[None, None]
    report = {
        "model": "<b>m</b>",
        "tokens": tokens,
        "attention": w.tolist(),
        "scores": [s.to_dict() for s in all_head_scores(w)],
        "rollout": rollout(w).tolist(),
    }
    page = render_html(report, title=payload + "__DATA__")
    assert "<script>alert" not in page and "<img" not in page and "<b>m" not in page
    assert page.count("<script") == 2  # the data block and the page's own script
    assert "http://" not in page and "https://" not in page  # nothing fetched from a network
    data = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    doc = json.loads(data.group(1))
    assert doc["tokens"][0] == payload
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert title.endswith("__DATA__")  # filled in one pass: a title cannot pull the data in
    assert doc["chance"] == report["scores"][0]["chance"]  # the head table's chance row
    # The policy allows exactly the page's own script and style, by hash, and nothing else.
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    assert csp.startswith("default-src 'none';") and "unsafe" not in csp
    for tag in ("script", "style"):
        (body,) = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.S)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp, tag


@pytest.fixture(scope="module")
def char_checkpoint(tmp_path_factory):
    import tinygpt
    from tests.conftest import SMALL_TEXT, TINY

    root = tmp_path_factory.mktemp("attn")
    (root / "t.txt").write_text(SMALL_TEXT + "<script>&")
    options = {**TINY, "block_size": 64}
    return tinygpt.train(root / "t.txt", out_dir=root / "ck", **options).out_dir


@pytest.mark.slow
def test_cli_json_file(char_checkpoint, tmp_path):
    out = tmp_path / "a.json"
    proc = run_in_process(
        "inspect-attention",
        "-c",
        str(char_checkpoint),
        "--prompt",
        "All: Speak, speak.",
        "--json-file",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    att = torch.tensor(doc["attention"])
    assert att.shape == (2, 2, 18, 18) and len(doc["tokens"]) == 18
    torch.testing.assert_close(att.sum(-1), torch.ones(2, 2, 18), rtol=0, atol=1e-5)
    assert torch.all(att.triu(1) == 0)
    assert {"previous_token", "sink", "induction", "entropy", "roles"} <= set(doc["scores"][0])


@pytest.mark.slow
def test_cli_renders_at_80_columns_without_colour(char_checkpoint, tmp_path):
    prompt = "First Citizen:\nBefore we proceed any further, hear me speak."
    proc = run_in_process(
        "inspect-attention",
        "-c",
        str(char_checkpoint),
        "--prompt",
        prompt,
        "--explain",
        "--rollout",
        "--query",
        "-1",
        "--html",
        str(tmp_path / "a.html"),
        env={"COLUMNS": "80", "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "\x1b[" not in proc.stdout
    assert "L1H1" in proc.stdout and "Head roles" in proc.stdout
    assert "showing tokens" in proc.stdout  # 47 tokens, windowed to 24
    assert "causal mask" in proc.stdout and "equal the model's own softmax" in proc.stdout
    assert "<script" in (tmp_path / "a.html").read_text()


@pytest.mark.slow
def test_cli_induction_probe_needs_no_prompt(char_checkpoint, tmp_path):
    from tinygpt.analysis.probes import induction_sequence
    from tinygpt.checkpoint.store import open_checkpoint

    out = tmp_path / "ind.json"
    proc = _inspect(
        char_checkpoint,
        "--induction",
        "--layer",
        "0",
        "--json-file",
        str(out),
        env={"COLUMNS": "80"},
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    n = doc["induction"]["repeated_length"]
    ck = open_checkpoint(char_checkpoint)
    newline = ck.tokenizer.encode("\n")  # the probe never draws a line break
    ids = induction_sequence(ck.config.model.vocab_size, n, avoid=newline)
    assert doc["ids"] == ids and len(doc["tokens"]) == 2 * n  # the probe itself, shown
    assert "\n" not in doc["tokens"]
    with_prompt = _inspect(char_checkpoint, "--induction", "--prompt", "All")
    assert with_prompt.returncode == 2 and "--induction" in with_prompt.stderr


def test_induction_view_uses_the_probe_ids_directly_and_loads_once(
    tiny_run, monkeypatch, gpt2_encoding
):
    # BPE: decoding random ids to text and encoding it again is not the identity.
    from tinygpt.analysis import commands
    from tinygpt.analysis.probes import induction_sequence
    from tinygpt.checkpoint.store import Checkpoint

    out = tiny_run("bpe", tokenizer="gpt2", max_steps=1, eval_every=1).out_dir
    loads = []
    real = Checkpoint.load_model
    monkeypatch.setattr(
        Checkpoint, "load_model", lambda self, *a, **k: loads.append(1) or real(self, *a, **k)
    )
    report = commands.attention_report(out, induction=True, device="cpu")
    n = report.induction.length
    assert report.run.ids == induction_sequence(50257, n) and len(loads) == 1


@pytest.mark.slow
def test_cli_layer_focus_labels_the_right_layer(char_checkpoint):
    proc = run_in_process(
        "inspect-attention",
        "-c",
        str(char_checkpoint),
        "--prompt",
        "All: speak",
        "--layer",
        "1",
        env={"COLUMNS": "80"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "L1H0" in proc.stdout and "L0H0" not in proc.stdout


@pytest.mark.slow
def test_cli_bad_layer_is_a_usage_error(char_checkpoint):
    proc = run_in_process(
        "inspect-attention", "-c", str(char_checkpoint), "--prompt", "All", "--layer", "7"
    )
    assert proc.returncode == 2 and "--layer must be in 0..1" in proc.stderr


def _uniform(t: int) -> torch.Tensor:
    w = torch.tril(torch.ones(t, t, dtype=torch.float64))
    return w / w.sum(-1, keepdim=True)


def test_a_uniform_head_scores_exactly_its_chance_level():
    ids = [1, 2, 1, 3, 2, 1, 4, 4]
    s = head_scores(_uniform(len(ids)), ids=ids)
    for name in (
        "previous_token",
        "self_attention",
        "sink",
        "local",
        "mean_distance",
        "duplicate_token",
    ):
        assert getattr(s, name) == pytest.approx(s.chance[name], abs=1e-12), name
    assert s.entropy_normalised == pytest.approx(s.chance["entropy_normalised"])
    assert s.roles == ["broad"]
    n = 8
    assert float(induction_scores_from_weights(_uniform(2 * n), n)) == pytest.approx(
        induction_chance(n)
    )


def test_exact_previous_token_head_on_long_and_short_prompts():
    def exact_prev(t):
        a = torch.zeros(t, t)
        a[0, 0] = 1
        a[torch.arange(1, t), torch.arange(t - 1)] = 1
        return a

    s = head_scores(exact_prev(T))
    assert s.previous_token == 1 and s.mean_distance == 1 and s.local == 1
    assert s.entropy_normalised == 0 and "previous-token" in s.roles
    short = head_scores(exact_prev(3))  # chance is 0.42 here: 1.0 is not 3x chance
    assert short.previous_token == 1 and "previous-token" not in short.roles


def test_duplicate_token_head():
    ids = [5, 6, 7, 5, 8, 6]
    a = torch.zeros(6, 6)
    for i, tok in enumerate(ids):
        earlier = [j for j in range(i) if ids[j] == tok]
        a[i, earlier[-1] if earlier else i] = 1
    s = head_scores(a, ids=ids)
    assert s.duplicate_token == 1 and s.chance["duplicate_token"] < 0.25
    assert "duplicate-token" in s.roles
    assert head_scores(a).duplicate_token is None  # without ids there is nothing to match


def test_copying_score_of_constructed_ov_circuits():
    model = random_model(n_layer=1, n_head=1)
    attn = model.blocks[0].attn
    d = model.config.n_embd
    with torch.no_grad():
        attn.c_attn.weight[2 * d :] = torch.eye(d)  # W_V = I
        attn.c_proj.weight.copy_(torch.eye(d))  # W_O = I: the circuit is W_E W_E^T, PSD
    assert float(copying_scores(model)[0, 0]) == pytest.approx(1.0)
    with torch.no_grad():
        attn.c_proj.weight.copy_(-torch.eye(d))  # the head suppresses what it attends to
    assert float(copying_scores(model)[0, 0]) == pytest.approx(0.0)


def test_ablating_an_unused_head_changes_nothing_and_an_essential_one_a_lot(tmp_path):
    import tinygpt
    from tinygpt.analysis.ablation import MODES, ablated, loss_on, reference_statistics
    from tinygpt.checkpoint.store import open_checkpoint

    sentence = "the quick brown fox jumps over the lazy dog. "
    path = tmp_path / "fox.txt"
    path.write_text(sentence * 40)
    # One layer with one head: by construction the head is the model's only way to see past
    # the current token, so without it only a bigram guess is left.
    options = {
        **TINY_OPTIONS,
        "n_layer": 1,
        "n_head": 1,
        "max_steps": 200,
        "eval_every": 200,
        "lr": 3e-3,
        "warmup_steps": 10,
    }
    model = tinygpt.train(path, out_dir=tmp_path / "fox", **options).model.eval()
    tok = open_checkpoint(tmp_path / "fox").tokenizer
    text = tok.encode(sentence * 2)
    n = len(sentence)
    # A window from every offset: each (token, next token) pair of the cycle equally often.
    rows = torch.tensor([text[s : s + 17] for s in range(n)])
    # The least loss any guess from the current token (and its place) alone can have: the
    # text's entropy of the next token given the current one.
    pairs, current = Counter(itertools.pairwise(text[: n + 1])), Counter(text[:n])
    bigram_floor = -sum(k * math.log(k / current[a]) for (a, _), k in pairs.items()) / n
    # Reference text: other windows of the same text (for "pattern", a sequence is its own
    # position-wise mean, so it cannot serve as its own reference).
    stats = reference_statistics(model, torch.tensor([text[s : s + 17] for s in range(3, 40, 4)]))
    assert loss_on(model, rows) < bigram_floor / 2  # the head carries the context
    for mode in MODES:
        with ablated(model, [(0, 0)], mode, stats):
            assert loss_on(model, rows) > bigram_floor, mode
    # An unused head: its slice of the output projection is zero, so no ablation can matter.
    other = random_model(n_layer=1, n_head=2)
    d = other.config.head_dim
    with torch.no_grad():
        other.blocks[0].attn.c_proj.weight[:, :d] = 0
    rows = torch.randint(0, 30, (2, T))
    stats = reference_statistics(other, rows)
    base = loss_on(other, rows)
    for mode in MODES:
        with ablated(other, [(0, 0)], mode, stats):
            assert loss_on(other, rows) == pytest.approx(base, abs=1e-6)
        with ablated(other, [(0, 1)], mode, stats):
            assert loss_on(other, rows) != pytest.approx(base, abs=1e-6)
    with pytest.raises(UsageError, match="mode must be one of zero, mean, pattern"):
        ablated(other, [(0, 0)], "resample", stats).__enter__()


def test_identical_checkpoints_have_zero_divergence(char_checkpoint):
    from tinygpt.analysis.commands import compare_attention

    deltas = compare_attention(char_checkpoint, char_checkpoint, "All: Speak, speak.")
    assert all(d["js_divergence"] == 0 and d["previous_token"] == 0 for d in deltas)
    from tinygpt.analysis.capture import js_divergence

    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    q = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    assert js_divergence(p, q).tolist() == pytest.approx([math.log(2), 0.0])


def test_trajectory_flags_first_crossings():
    from tinygpt.analysis.snapshot import first_crossings

    chance = {"previous_token": 0.1, "induction": 0.02, "sink": 0.1}
    metrics = [
        {"step": 100, "chance": chance, "heads": {"L0H0": {"previous_token": 0.2}}},
        {"step": 200, "chance": chance, "heads": {"L0H0": {"previous_token": 0.6}}},
        {
            "step": 300,
            "chance": chance,
            "heads": {"L0H0": {"previous_token": 0.9, "induction": 0.4}},
        },
    ]
    assert first_crossings(metrics) == [
        ("L0H0", "previous-token", 200, 0.6),
        ("L0H0", "induction", 300, 0.4),
    ]


@pytest.mark.slow
def test_training_records_head_snapshots_and_cli_shows_the_trajectory(char_checkpoint):
    from tinygpt.checkpoint.metrics import read_metrics

    record = read_metrics(char_checkpoint)[-1]
    assert set(record["heads"]) == {"L0H0", "L0H1", "L1H0", "L1H1"}
    assert {"induction_loss", "icl_score", "chance"} <= set(record)
    proc = run_in_process(
        "inspect", "trajectory", str(char_checkpoint), env={"COLUMNS": "80", "NO_COLOR": "1"}
    )
    assert proc.returncode == 0, proc.stderr
    assert "Trajectory" in proc.stdout and " probe " in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
    # no cell cut short: every row of the table ends in a whole head label
    rows = [ln for ln in proc.stdout.splitlines() if ln.strip()[:1].isdigit()]
    assert rows and all(re.search(r"L\d+H\d+$", row.rstrip()) for row in rows), rows
    assert "…" not in proc.stdout


def test_readme_trajectory_example_shows_the_run_it_reads():
    import typer.main

    from tests.docs import pages
    from tinygpt.cli import app

    # The first page (README.md, then docs/ as it links them) with a trajectory example.
    example = r"\$ tinygpt inspect trajectory (\S+)\n(.*?)```"
    found = ((path, re.search(example, text, re.S), text) for path, text in pages())
    path, shown, readme = next((f for f in found if f[1]), (None, None, ""))
    assert shown, "the docs' inspect trajectory example is gone"
    run_dir, table = shown[1], shown[2]
    before = readme[: shown.start()]
    made = re.findall(rf"\$ tinygpt train ([^\n]*--out {re.escape(run_dir)})\n", before)
    assert made, f"{path.name} never shows the command that made {run_dir} before it"
    args = made[-1].split()
    steps = [int(m) for m in re.findall(r"^\s+(\d+)\s+\d\.\d{3}\s", table, re.M)]
    assert int(args[args.index("--max-steps") + 1]) == steps[-1]  # the table's last row
    assert int(args[args.index("--eval-every") + 1]) == steps[1] - steps[0]
    train = typer.main.get_command(app).commands["train"]
    known = {opt for param in train.params for opt in param.opts}
    assert {a for a in args if a.startswith("--")} <= known  # a command that runs today


@pytest.mark.slow
def test_ablation_without_the_training_text_measures_on_the_prompt(tmp_path):
    import tinygpt
    from tests.conftest import SMALL_TEXT, one_line_error
    from tinygpt.analysis.ablation import ablation_report
    from tinygpt.checkpoint.store import load

    text = tmp_path / "t.txt"
    text.write_text(SMALL_TEXT)
    ck = tinygpt.train(text, out_dir=tmp_path / "ck", **TINY_OPTIONS).out_dir
    text.unlink()  # moved away since the run: the mean comes from the prompt alone
    ablate = ("inspect", "ablate", "-c", str(ck), "--heads", "L1H0")
    proc = run_in_process(*ablate, "--prompt", "All: Speak, speak.", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["text_source"] is None and "text" not in result and "repeat" not in result
    model, tokenizer, _ = load(ck, "cpu", attention="manual")
    alone = ablation_report(model, tokenizer, ["L1H0"], "mean", "All: Speak, speak.")
    assert result == json.loads(json.dumps(alone))  # as if no text had ever been named
    assert result["prompt"]["delta"] != 0
    for extra, words in (
        (["--prompt", "All: Speak", "--mode", "pattern"], "--mode pattern needs reference text"),
        ([], "--heads needs a --prompt"),
    ):
        proc = run_in_process(*ablate, *extra)
        assert words in one_line_error(proc.returncode, proc.stderr), extra


@pytest.mark.slow
def test_cli_ablation_and_compare(char_checkpoint, tmp_path):
    proc = run_in_process(
        "inspect",
        "ablate",
        "-c",
        str(char_checkpoint),
        "--prompt",
        "All: Speak, speak.",
        "--heads",
        "1.0",
        "--mode",
        "pattern",
        "--json-file",
        str(tmp_path / "ab.json"),
        env={"COLUMNS": "80"},
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "ab.json").read_text())
    assert result["mode"] == "pattern" and "probe" in result and "prompt" in result
    bad = run_in_process(
        "inspect", "ablate", "-c", str(char_checkpoint), "--prompt", "All", "--heads", "9.9"
    )
    assert bad.returncode == 2 and "--heads 9.9" in bad.stderr
    cmp_ = run_in_process(
        "inspect",
        "compare",
        str(char_checkpoint),
        str(char_checkpoint),
        "--prompt",
        "All: speak",
        env={"COLUMNS": "80"},
    )
    assert cmp_.returncode == 0 and "JS div" in cmp_.stdout


def test_html_stores_the_causal_half_compactly():
    from tinygpt.views.attention_html import _pack

    torch.manual_seed(0)
    t = 256
    w = torch.softmax(
        torch.randn(2, 4, t, t).masked_fill(torch.ones(t, t).triu(1).bool(), float("-inf")), -1
    )
    report = {
        "model": "m",
        "tokens": ["a"] * t,
        "attention": w,
        "rollout": rollout(w),
        "scores": [s.to_dict() for s in all_head_scores(w)],
    }
    page = render_html(report, "t")
    assert len(page.encode()) < 1.5e6  # 2 layers x 4 heads x 256 tokens
    packed = base64.b64decode(_pack(w[1, 2]))
    assert len(packed) == t * (t + 1) // 2
    i, j = 200, 37  # row-major causal half: row i starts at i(i+1)/2
    assert abs(packed[i * (i + 1) // 2 + j] / 255 - float(w[1, 2, i, j])) <= 0.5 / 255
    one_head = render_html(report, "t", (1, 2), layers=[1], heads=[2])
    assert len(one_head) < len(page) / 4


@pytest.mark.slow
def test_figures_png_and_svg(char_checkpoint, tmp_path):
    import xml.etree.ElementTree as ET

    from tests.test_runs_cli import _check_png

    for focus in ([], ["--layer", "1"], ["--layer", "1", "--head", "0"]):
        png, svg = tmp_path / "f.png", tmp_path / "f.svg"
        proc = run_in_process(
            "inspect-attention",
            "-c",
            str(char_checkpoint),
            "--prompt",
            "All: speak, speak.\nFirst",
            *focus,
            "--png",
            str(png),
            "--svg",
            str(svg),
        )
        assert proc.returncode == 0, proc.stderr
        _check_png(png.read_bytes())
        root = ET.fromstring(svg.read_text())
        texts = [el.text for el in root.iter("{http://www.w3.org/2000/svg}text")]
        assert "␣" in texts and "↵" in texts  # whitespace made visible in the labels
        panels = [t for t in texts if t and re.fullmatch(r"L\d+H\d+", t)]
        assert len(panels) == {0: 4, 2: 2, 4: 1}[len(focus)]


@pytest.mark.slow
def test_rollout_and_focused_heatmaps_label_their_keys(char_checkpoint, tmp_path):
    prompt = "All: speak, speak."
    svg = tmp_path / "r.svg"
    proc = _inspect(
        char_checkpoint, "--prompt", prompt, "--rollout", "--layer", "1", "--head", "0",
        "--svg", str(svg),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    keys = "All:␣speak,␣speak.  ← keys"
    assert out.count(keys) == 2, out  # under the focused head and under the rollout
    assert out.index("Rollout") < out.rindex(keys)
    # The figure draws the rollout too, as a panel labelled like the head's.
    import xml.etree.ElementTree as ET

    texts = [el.text for el in ET.fromstring(svg.read_text()).iter() if el.tag.endswith("text")]
    assert "rollout" in texts and "L1H0" in texts
    assert texts.count("k") == 2 * 4  # 2 panels x (2 rows + 2 key columns) of a char model


def _png_texts(monkeypatch) -> list[tuple[int, int, str]]:
    """Record what a PNG figure writes: (x, y, text) of every label."""
    from tinygpt.views.png import Canvas

    drawn: list[tuple[int, int, str]] = []
    real = Canvas.text

    def record(self, x, y, text, *args, **kwargs):
        drawn.append((x, y, text))
        return real(self, x, y, text, *args, **kwargs)

    monkeypatch.setattr(Canvas, "text", record)
    return drawn


@pytest.mark.parametrize("t", [12, 50, 80])
def test_png_figures_label_every_row_and_key(monkeypatch, t):
    from tinygpt.views.attention_figures import attention_png
    from tinygpt.views.font import HEIGHT

    tokens = [chr(ord("a") + i % 26) for i in range(t)]
    weights = torch.tril(torch.ones(t, t)) / torch.arange(1, t + 1)[:, None]
    drawn = _png_texts(monkeypatch)
    attention_png([[("L0H0", weights)], [("rollout", weights)]], tokens)
    for title in ("L0H0", "rollout"):
        start = next(k for k, (_, _, text) in enumerate(drawn) if text == title)
        labels = drawn[start + 1 : start + 1 + 2 * t]
        rows, keys = labels[:t], labels[t:]
        assert [text for *_, text in rows] == tokens and [text for *_, text in keys] == tokens
        ys = [y for _, y, _ in rows]
        assert all(b - a >= HEIGHT for a, b in itertools.pairwise(ys))  # none overlap


def test_readme_states_when_png_figures_are_labelled():
    from tests.docs import documentation
    from tinygpt.views.attention_figures import _layout

    readme = " ".join(documentation().split())  # docs/inspect.md says it
    stated = re.search(r"up to (\d+) tokens for one panel across, (\d+) for four", readme)
    assert stated, "the docs no longer say when PNG figures are labelled"
    for limit, panels in ((int(stated[1]), 1), (int(stated[2]), 4)):
        assert _layout(limit, panels)[1] and not _layout(limit + 1, panels)[1], (limit, panels)


def _inspect(checkpoint, *args, **kw):
    return run_in_process("inspect-attention", "-c", str(checkpoint), *args, **kw)


@pytest.mark.slow
def test_query_range_cuts_the_prompt_exactly(char_checkpoint, tmp_path):
    # A char model: the prompt's first 20 characters are its first 20 tokens.
    prompt = "All: Speak, speak. First Citizen: hear me"
    out = {k: tmp_path / f"cut.{k}" for k in ("json", "html", "npz", "svg")}
    flag = {"json": "--json-file", "html": "--html", "npz": "--npz", "svg": "--svg"}
    proc = _inspect(
        char_checkpoint,
        "--prompt",
        prompt,
        "--queries",
        "10:20",
        *(x for k, path in out.items() for x in (flag[k], str(path))),
        env={"COLUMNS": "80"},
    )
    assert proc.returncode == 0, proc.stderr
    # The terminal's queries start at A too; its keys reach back to those they attend to.
    assert re.search(r"showing queries 10\.\.19, keys \d\.\.19 of 20", proc.stdout)
    short = tmp_path / "short.json"
    proc = _inspect(char_checkpoint, "--prompt", prompt[:20], "--json-file", str(short))
    assert proc.returncode == 0, proc.stderr
    b, c = json.loads(out["json"].read_text()), json.loads(short.read_text())
    assert b["tokens"] == c["tokens"] and len(b["tokens"]) == 20 and b["first_query"] == 10
    whole = torch.tensor(c["attention"])  # (layers, heads, 20, 20) of the cut prompt alone
    cut = torch.tensor(b["attention"])
    assert cut.shape == (2, 2, 10, 20)  # queries 10..19, every key they can see
    torch.testing.assert_close(cut, whole[..., 10:, :], atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.tensor(b["rollout"]), torch.tensor(c["rollout"])[10:])
    # Per-prompt scores describe queries 10..19 of the cut prompt, computed from its weights.
    for s in b["scores"]:
        a = whole[s["layer"], s["head"]].double()
        rows = torch.arange(10, 20)
        assert s["previous_token"] == pytest.approx(float(a[rows, rows - 1].mean()), abs=1e-5)
        assert s["sink"] == pytest.approx(float(a[rows, 0].mean()), abs=1e-5)
    # copying_direct too: --queries 0:20 equals the 20-token prompt on its own.
    zero = tmp_path / "zero.json"
    proc = _inspect(
        char_checkpoint, "--prompt", prompt, "--queries", "0:20", "--json-file", str(zero)
    )
    assert proc.returncode == 0, proc.stderr
    for sz, sc in zip(json.loads(zero.read_text())["scores"], c["scores"], strict=True):
        for key in ("copying_direct", "previous_token", "duplicate_token", "entropy_normalised"):
            assert sz[key] == pytest.approx(sc[key], abs=1e-4), key
    import numpy as np

    npz = np.load(out["npz"])
    assert npz["attention"].shape == (2, 2, 10, 20) and npz["q"].shape[2] == 10
    assert npz["k"].shape[2] == 20 and int(npz["first_query"]) == 10
    cells = out["svg"].read_text().count('fill="rgb(')  # one per drawn weight
    assert 0 < cells <= 4 * sum(i + 1 for i in range(10, 20))  # no row before query 10
    bad = _inspect(char_checkpoint, "--prompt", prompt, "--queries", "30:20")
    assert bad.returncode == 2 and "--queries" in bad.stderr


@pytest.mark.slow
def test_query_range_cuts_the_terminal_view_and_the_json(char_checkpoint):
    # --queries 10:20 with a window wider than the prompt: only the queries 10..19 are shown.
    prompt = "All: Speak, speak. First Citizen: hear me"
    args = ("--prompt", prompt, "--queries", "10:20", "--layer", "0", "--head", "0")
    view = _inspect(char_checkpoint, *args, "--window", "40", env={"COLUMNS": "100"})
    assert view.returncode == 0, view.stderr
    lines = view.stdout.splitlines()
    start = lines.index("L0H0") + 1
    heat = lines[start : lines.index("", start)]  # the heatmap's rows, up to the blank line
    # The key axis under the rows: the queries' own tokens, after the earlier keys they see.
    axis = heat[-1].split()
    assert axis[0].endswith(",␣speak.␣F") and len(axis[0]) > 10 and axis[1:] == ["←", "keys"]
    assert [row.split()[0] for row in heat[:-1]] == list(",␣speak.␣F")  # tokens 10..19
    rows = [int(m.group(1)) for m in re.finditer(r"^│(\d+):", view.stdout, re.M)]
    assert rows == list(range(10, 20))  # the strongest-keys table: one row per query in range
    doc = json.loads(_inspect(char_checkpoint, *args, "--json").stdout)
    assert doc["first_query"] == 10 and len(doc["tokens"]) == 20
    assert torch.tensor(doc["attention"]).shape == (2, 2, 10, 20)
    assert len(doc["rollout"]) == 10


@pytest.mark.slow
def test_json_flag_prints_one_document_on_stdout(char_checkpoint, tmp_path):
    base = ("--prompt", "All: Speak, speak.")
    proc = _inspect(char_checkpoint, *base, "--json", "--json-file", str(tmp_path / "a.json"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # the whole of stdout is the document
    assert doc == json.loads((tmp_path / "a.json").read_text()) and len(doc["tokens"]) == 18
    assert "wrote" in proc.stderr and "Head roles" not in proc.stdout
    ablated = run_in_process(
        "inspect", "ablate", "-c", str(char_checkpoint), *base, "--heads", "1.0", "--mode", "zero",
        "--json",
    )  # fmt: skip
    assert ablated.returncode == 0, ablated.stderr
    assert json.loads(ablated.stdout)["heads"] == ["1.0"]
    compared = run_in_process(
        "inspect", "compare", str(char_checkpoint), str(char_checkpoint), *base, "--json"
    )
    assert compared.returncode == 0, compared.stderr
    deltas = json.loads(compared.stdout)
    assert len(deltas) == 4
    assert all(d["js_divergence"] == pytest.approx(0, abs=1e-6) for d in deltas)
    # `--json -` no longer writes a file named "-": --json takes no value.
    dash = _inspect(char_checkpoint, *base, "--json", "-", cwd=tmp_path)
    assert dash.returncode == 2 and not (tmp_path / "-").exists()


@pytest.mark.parametrize("args", [["-p", "A"], ["-p", "All: speak", "--queries", "0:1"]])
@pytest.mark.slow
def test_a_one_token_prompt_is_shown_not_a_key_error(char_checkpoint, args):
    proc = _inspect(char_checkpoint, *args, env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    assert "Head roles" in proc.stdout and "chance" in proc.stdout


def test_direct_copying_sign_follows_the_ov_circuit():
    from tinygpt.analysis.probes import direct_copying_per_query

    model = random_model(n_layer=1, n_head=1)
    attn = model.blocks[0].attn
    d = model.config.n_embd
    ids = [3, 7, 3, 9, 7, 1, 3, 2]
    results = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            attn.c_attn.weight[2 * d :] = torch.eye(d)
            attn.c_proj.weight.copy_(sign * torch.eye(d))
        run = capture_attention(model, ids, [str(i) for i in ids])
        results.append(float(direct_copying_per_query(model, run)[0, 0, 1:].mean()))
    assert results[0] > 0 > results[1]


def test_one_table_names_every_score():
    from dataclasses import fields

    from tinygpt.analysis.scores import SCORES, HeadScores

    names = {f.name for f in fields(HeadScores)}
    assert {s.key for s in SCORES} <= names
    assert len({s.key for s in SCORES}) == len(SCORES)


def test_bpe_key_columns_are_numbered_with_a_legend_and_char_columns_read_as_text():
    from tinygpt.analysis.labels import visible
    from tinygpt.views.attention_map import key_axis

    char = key_axis(list("All: hi"), 0, 7).plain
    assert char.endswith("All:␣hi  ← keys") and "\n" not in char
    tokens = ["ROMEO", ":", "\n", "Is", " this", " the", " way", " to", " Mant", "ua", "?"] * 2
    text = key_axis(tokens, 5, 20, width=60).plain
    lines = text.split("\n")
    assert lines[0].split()[0] == "567890123456789"  # one digit a column, the position's last
    legend = " ".join(lines[1:])
    assert all(f"{i}:{visible(tokens[i])[:8]}" in legend for i in range(5, 20)), text
    assert all(len(line) <= 60 for line in lines[1:])


def test_the_page_names_score_columns_as_the_terminal_table_does():
    from tinygpt.analysis.scores import SCORES, TABLE_SCORES, all_head_scores
    from tinygpt.views.attention_html import render_html

    w = torch.softmax(
        torch.randn(1, 2, 4, 4).masked_fill(torch.ones(4, 4).triu(1).bool(), -1e9), -1
    )
    scores = [s.to_dict() for s in all_head_scores(w)]
    report = {
        "model": "m",
        "tokens": list("abcd"),
        "attention": w,
        "rollout": w[0, 0],
        "scores": scores,
    }
    html = render_html(report, "t")
    names = json.loads(html.split('id="data">')[1].split("</script>")[0])
    assert {s.key: s.column for s in TABLE_SCORES}.items() <= names["names"].items()
    assert names["names"]["previous_token"] == "prev" and len(names["names"]) == len(SCORES)
