import json
import math
import re

import pytest
import torch

from tests.conftest import TINY as TINY_OPTIONS
from tests.conftest import run_cli
from tinygpt.attention.scores import (
    all_head_scores,
    capture_attention,
    copying_scores,
    explain,
    head_scores,
    induction_chance,
    induction_scores_from_weights,
    recompute_weights,
    resolve_query,
    rollout,
)
from tinygpt.attention.html import render_html
from tinygpt.config import ModelConfig
from tinygpt.errors import UsageError
from tinygpt.model import GPT

T = 16


def random_model(seed=0, n_layer=2, n_head=2):
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=30, block_size=T, n_layer=n_layer, n_head=n_head, n_embd=32)
    return GPT(cfg).eval()


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
    cfg = ModelConfig(vocab_size=5, block_size=T, n_layer=1, n_head=1, n_embd=32)
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
    for cap in run.captures:
        torch.testing.assert_close(cap.weights.double(), recompute_weights(cap.q, cap.k))
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
    assert resolve_query(None, tokens) == 3
    assert resolve_query("-2", tokens) == 2
    assert resolve_query("cat", tokens) == 3
    with pytest.raises(UsageError):
        resolve_query("dog", tokens)
    with pytest.raises(UsageError):
        resolve_query("9", tokens)


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
    page = render_html(report, title=payload)
    assert "<script>alert" not in page and "<img" not in page and "<b>m" not in page
    assert page.count("<script") == 2  # the data block and the page's own script
    assert "http://" not in page and "https://" not in page  # nothing fetched from a network
    data = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    assert json.loads(data.group(1))["tokens"][0] == payload


@pytest.fixture(scope="module")
def char_checkpoint(tmp_path_factory):
    import tinygpt
    from tests.conftest import SMALL_TEXT, TINY

    root = tmp_path_factory.mktemp("attn")
    (root / "t.txt").write_text(SMALL_TEXT + "<script>&")
    options = {**TINY, "block_size": 64}
    return tinygpt.train(root / "t.txt", out_dir=root / "ck", **options).out_dir


def test_cli_json_file(char_checkpoint, tmp_path):
    out = tmp_path / "a.json"
    proc = run_cli(
        "inspect-attention",
        "-c",
        str(char_checkpoint),
        "--prompt",
        "All: Speak, speak.",
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    att = torch.tensor(doc["attention"])
    assert att.shape == (2, 2, 18, 18) and len(doc["tokens"]) == 18
    torch.testing.assert_close(att.sum(-1), torch.ones(2, 2, 18), rtol=0, atol=1e-5)
    assert torch.all(att.triu(1) == 0)
    assert {"previous_token", "sink", "induction", "entropy", "roles"} <= set(doc["scores"][0])


def test_cli_renders_at_80_columns_without_colour(char_checkpoint, tmp_path):
    prompt = "First Citizen:\nBefore we proceed any further, hear me speak."
    proc = run_cli(
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
    assert "L1 H1" in proc.stdout and "Head roles" in proc.stdout
    assert "showing tokens" in proc.stdout  # 47 tokens, windowed to 24
    assert "causal mask" in proc.stdout and "equal the model's own softmax" in proc.stdout
    assert "<script" in (tmp_path / "a.html").read_text()


def test_cli_induction_probe_needs_no_prompt(char_checkpoint):
    proc = run_cli(
        "inspect-attention",
        "-c",
        str(char_checkpoint),
        "--induction",
        "--layer",
        "0",
        env={"COLUMNS": "80"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "random tokens repeated twice" in proc.stdout


def test_cli_layer_focus_labels_the_right_layer(char_checkpoint):
    proc = run_cli(
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
    assert "L1 H0" in proc.stdout and "L0 H0" not in proc.stdout


def test_cli_bad_layer_is_a_usage_error(char_checkpoint):
    proc = run_cli(
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
    from tinygpt.attention.ablation import MODES, ablated, loss_on, reference_statistics
    from tinygpt.checkpoint import open_checkpoint

    path = tmp_path / "fox.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 40)
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
    text = tok.encode("the quick brown fox jumps over the lazy dog. " * 2)
    ids = torch.tensor([text[:17]])
    # Reference text: other windows of the same text (for "pattern", a sequence is its own
    # position-wise mean, so it cannot serve as its own reference).
    stats = reference_statistics(model, torch.tensor([text[s : s + 17] for s in range(3, 40, 4)]))
    base = loss_on(model, ids)
    for mode in MODES:
        with ablated(model, [(0, 0)], mode, stats):
            assert loss_on(model, ids) - base > 0.5, mode
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


def test_identical_checkpoints_have_zero_divergence(char_checkpoint):
    from tinygpt.api import compare_attention

    deltas = compare_attention(char_checkpoint, char_checkpoint, "All: Speak, speak.")
    assert all(d["js_divergence"] == 0 and d["previous_token"] == 0 for d in deltas)
    from tinygpt.attention.scores import js_divergence

    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    q = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    assert js_divergence(p, q).tolist() == pytest.approx([math.log(2), 0.0])


def test_trajectory_flags_first_crossings():
    from tinygpt.attention.scores import first_crossings

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


def test_training_records_head_snapshots_and_cli_shows_the_trajectory(char_checkpoint):
    from tinygpt.checkpoint import read_metrics

    record = read_metrics(char_checkpoint)[-1]
    assert set(record["heads"]) == {"L0H0", "L0H1", "L1H0", "L1H1"}
    assert {"induction_loss", "icl_score", "chance"} <= set(record)
    proc = run_cli(
        "inspect-attention",
        "--trajectory",
        str(char_checkpoint),
        env={"COLUMNS": "80", "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Trajectory" in proc.stdout and "ind.loss" in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80


def test_cli_ablation_and_compare(char_checkpoint, tmp_path):
    proc = run_cli(
        "inspect-attention",
        "-c",
        str(char_checkpoint),
        "--prompt",
        "All: Speak, speak.",
        "--ablate",
        "1.0",
        "--ablation",
        "pattern",
        "--json",
        str(tmp_path / "ab.json"),
        env={"COLUMNS": "80"},
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "ab.json").read_text())
    assert result["mode"] == "pattern" and "probe" in result and "prompt" in result
    bad = run_cli(
        "inspect-attention", "-c", str(char_checkpoint), "--prompt", "All", "--ablate", "9.9"
    )
    assert bad.returncode == 2 and "--ablate 9.9" in bad.stderr
    cmp_ = run_cli(
        "inspect-attention",
        "--compare",
        str(char_checkpoint),
        str(char_checkpoint),
        "--prompt",
        "All: speak",
        env={"COLUMNS": "80"},
    )
    assert cmp_.returncode == 0 and "JS div" in cmp_.stdout


def test_html_stores_the_causal_half_compactly():
    import base64

    from tinygpt.attention.html import _pack

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


def test_figures_png_and_svg(char_checkpoint, tmp_path):
    import xml.etree.ElementTree as ET

    from tests.test_everyday import _check_png

    for focus in ([], ["--layer", "1"], ["--layer", "1", "--head", "0"]):
        png, svg = tmp_path / "f.png", tmp_path / "f.svg"
        proc = run_cli(
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
        panels = [t for t in texts if t and t.startswith("L") and " H" in t]
        assert len(panels) == {0: 4, 2: 2, 4: 1}[len(focus)]


def test_query_range_cuts_the_prompt_exactly(char_checkpoint, tmp_path):
    prompt = "All: Speak, speak. First Citizen: hear me"
    full, cut = tmp_path / "full.json", tmp_path / "cut.json"
    assert (
        run_cli(
            "inspect-attention", "-c", str(char_checkpoint), "--prompt", prompt, "--json", str(full)
        ).returncode
        == 0
    )
    proc = run_cli(
        "inspect-attention",
        "-c",
        str(char_checkpoint),
        "--prompt",
        prompt,
        "--queries",
        "10:20",
        "--json",
        str(cut),
        "--html",
        str(tmp_path / "c.html"),
    )
    assert proc.returncode == 0, proc.stderr
    a, b = json.loads(full.read_text()), json.loads(cut.read_text())
    assert len(b["tokens"]) == 20
    torch.testing.assert_close(
        torch.tensor(b["attention"]), torch.tensor(a["attention"])[..., :20, :20]
    )
    bad = run_cli(
        "inspect-attention", "-c", str(char_checkpoint), "--prompt", prompt, "--queries", "30:20"
    )
    assert bad.returncode == 2 and "--queries" in bad.stderr


def test_direct_copying_sign_follows_the_ov_circuit():
    from tinygpt.attention.scores import direct_copying

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
        results.append(float(direct_copying(model, run)[0, 0]))
    assert results[0] > 0 > results[1]
