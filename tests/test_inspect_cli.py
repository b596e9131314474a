"""`tinygpt inspect attention|compare|ablate|trajectory`: each way of looking at attention a
command with only its own options, `inspect-attention` the same command as `inspect attention`;
heads named as the tables print them, the keys a window of queries keeps, and report files that
never overwrite a checkpoint's own."""

import json
from pathlib import Path

import pytest

from tests.conftest import TINY, one_line_error, rehash, run_in_process, run_main, snapshot


@pytest.fixture(scope="module")
def run_dir(trained_tiny):
    return trained_tiny  # only read


def same_output(old: list[str], new: list[str]) -> str:
    """Run ``inspect-attention OLD`` and ``inspect NEW``: both succeed with the same stdout."""
    code_old, out_old, err_old = run_main("inspect-attention", *old)
    code_new, out_new, err_new = run_main("inspect", *new)
    assert code_old == 0, err_old
    assert code_new == 0, err_new
    assert out_new == out_old
    return out_new


def test_inspect_help_lists_the_subcommands():
    proc = run_in_process("inspect", "--help")
    assert proc.returncode == 0, proc.stderr
    for name in ("attention", "compare", "ablate", "trajectory"):
        assert f"│ {name} " in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    "options",
    [
        ["-p", "All: Speak, speak.", "--layer", "1", "--head", "0", "--explain", "--rollout"],
        ["-p", "All: Speak, speak.", "--head", "L0H1", "--query", "-2", "--window", "6"],
        ["--induction", "--layer", "0"],
    ],
)
def test_attention_is_the_view_of_inspect_attention(run_dir, options):
    args = ["-c", str(run_dir), *options]
    view = same_output(args, ["attention", *args])
    assert "L" in view and "Head roles" in view
    document = json.loads(same_output([*args, "--json"], ["attention", *args, "--json"]))
    assert document["tokens"] and document["attention"]


def test_attention_writes_the_same_files(run_dir, tmp_path):
    def files(where, *command):
        where.mkdir()
        outputs = ["--json-file", "a.json", "--html", "a.html", "--png", "a.png", "--svg", "a.svg"]
        args = [*command, "-c", str(run_dir), "-p", "All: speak", "--layer", "0", *outputs]
        code, _, err = run_main(*args, cwd=where)
        assert code == 0, err
        return {p.name: p.read_bytes() for p in where.iterdir()}

    old = files(tmp_path / "old", "inspect-attention")
    new = files(tmp_path / "new", "inspect", "attention")
    assert sorted(new) == ["a.html", "a.json", "a.png", "a.svg"] and new == old


def inspect(*args: str) -> str:
    """``tinygpt inspect ARGS``'s stdout; it must succeed."""
    code, out, err = run_main("inspect", *args)
    assert code == 0, err
    return out


@pytest.mark.parametrize(
    "mode",
    [["--compare", ".", "."], ["--ablate", "L1H0"], ["--trajectory", "."], ["--ablation", "x"]],
)
def test_inspect_attention_is_one_spelling_of_the_view_and_has_no_modes(mode):
    code, _, err = run_main("inspect-attention", *mode)
    assert code == 2 and "No such option" in err, err


def test_compare_of_a_checkpoint_with_itself(run_dir):
    pair = [str(run_dir), str(run_dir)]
    assert "JS div" in inspect("compare", *pair, "-p", "All")
    text = inspect("compare", *pair, "--json")

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    # No prompt: the repeated-random-tokens probe; a one-token prompt once gave NaN scores.
    deltas = json.loads(text, parse_constant=refuse)
    assert len(deltas) == TINY["n_layer"] * TINY["n_head"]
    assert all(d["js_divergence"] == pytest.approx(0, abs=1e-6) for d in deltas)
    assert all(v == pytest.approx(0, abs=1e-6) for d in deltas for k, v in d.items() if k != "head")


def test_ablate_zero_and_mean(run_dir, tmp_path):
    common = ["-c", str(run_dir), "-p", "All: Speak, speak."]
    new = ["ablate", *common, "--heads", "L1H0", "--heads", "0.1", "--mode", "zero"]
    assert "Ablating L1H0" in inspect(*new)
    result = json.loads(inspect(*new, "--json"))
    assert result["mode"] == "zero" and result["heads"] == ["L1H0", "0.1"]
    # the default mode, and the JSON file
    code, _, err = run_main("inspect", "ablate", *common, "--heads", "1.1", "--json-file", "x.json",
                            cwd=tmp_path)  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "x.json").read_text())["mode"] == "mean"


def test_trajectory_as_text_json_and_png(run_dir, tmp_path):
    assert "Trajectory" in inspect("trajectory", str(run_dir))
    records = json.loads(inspect("trajectory", str(run_dir), "--json"))
    assert records and "heads" in records[-1]
    inspect("trajectory", str(run_dir), "--png", str(tmp_path / "t.png"))
    assert (tmp_path / "t.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # the library's Opt("heads", ...) and Opt("mode") read as this command's own flags
        (["ablate", "--heads", "9.9"], "error: --heads 9.9: the model has layers 0..1"),
        (["ablate", "--heads", "L1H0", "--mode", "off"], "error: --mode must be one of"),
        (["ablate", "--heads", "x"], "error: --heads takes a head as the tables name it"),
        (["attention", "-p", "All", "--queries", "5:3"], "error: --queries 5:3: need 0 <= A"),
        (["attention", "-p", "All", "--induction"], "error: --induction looks at its own"),
        (["attention", "-p", "All", "--head", "3"], "error: --head 3 needs --layer"),
        # the label names the layer: the message names the flag the user gave (was --layer)
        (["attention", "-p", "All", "--head", "L9H9"], "error: --head L9H9 names no head of"),
        (["attention", "-p", "All", "--head", "L1H7"], "error: --head L1H7 names no head of"),
        (["attention", "-p", "All", "--head", "L1H1", "--layer", "0"], "error: --head L1H1 is in"),
        (["attention", "-p", "All", "--head", "x1"], "error: --head takes a label such as L1H2"),
        (["attention", "-p", "All", "--head", "²", "--layer", "0"], "error: --head takes a"),
        (["attention", "-p", "All", "--window", "1"], "error: --window must be at least 2"),
    ],
)
def test_errors_name_the_subcommands_flags(run_dir, args, message):
    code, _, err = run_main("inspect", args[0], "-c", str(run_dir), *args[1:])
    assert code == 2 and one_line_error(code, err).startswith(message), err


@pytest.mark.parametrize(
    "args",
    [
        ["attention", "--ablation", "zero"],
        ["attention", "--trajectory", "."],
        ["attention", "--heads", "L1H0"],
        ["ablate", "--heads", "L1H0", "--layer", "0"],
        ["ablate", "--heads", "L1H0", "--best"],
        ["compare", ".", ".", "--window", "5"],
        ["compare", ".", ".", "--checkpoint", "."],
        ["trajectory", ".", "--best"],
        ["trajectory", ".", "--prompt", "All"],
    ],
)
def test_an_option_of_another_mode_is_no_option_of_the_subcommand(args):
    code, _, err = run_main("inspect", *args)
    assert code == 2 and "No such option" in err, err


def test_each_subcommand_shares_inspect_attention_options():
    """The options the subcommands share with inspect attention are declared once: same flags,
    same help; ablate's --heads and --mode are its own."""
    import typer.main

    from tinygpt.cli import app

    root = typer.main.get_command(app)
    front = {p.name: p for p in root.commands["inspect"].commands["attention"].params}
    # ablate's --heads and --mode; trajectory's and the interpret commands' --png say what they
    # draw; options inspect attention lacks (--top, --target, ...) are the subcommand's own
    own = {"ablate": {"heads", "mode"}, "trajectory": {"png_file"}}
    own |= {name: {"png_file"} for name in ("predictions", "attribution", "patch")}
    for name, sub in root.commands["inspect"].commands.items():
        for p in sub.params:
            skip = {"help", *own.get(name, ())}
            if p.param_type_name != "option" or p.name in skip or p.name not in front:
                continue
            assert p.opts == front[p.name].opts and p.help == front[p.name].help, (name, p.name)


def test_a_head_named_by_its_role_is_the_strongest_on_the_probe(run_dir):
    from tinygpt.analysis.probes import induction_probe, line_break_ids
    from tinygpt.checkpoint.store import load

    model, tokenizer, _ = load(run_dir, "cpu", attention="manual")
    scores = induction_probe(model, avoid=line_break_ids(tokenizer, model.config.vocab_size))
    flat = int(scores.scores.argmax())
    label = f"L{flat // model.config.n_head}H{flat % model.config.n_head}"
    in_layer_0 = f"L0H{int(scores.scores[0].argmax())}"
    code, out, err = run_main(
        "inspect", "attention", "-c", str(run_dir), "-p", "All: Speak, speak.",
        "--head", "induction", "--explain",
    )  # fmt: skip
    assert code == 0 and f"--head induction: {label}, the strongest" in err, err
    same = run_main(
        "inspect", "attention", "-c", str(run_dir), "-p", "All: Speak, speak.",
        "--head", label, "--explain",
    )  # fmt: skip
    assert same[1] == out  # the same view as naming the head
    code, _, err = run_main(
        "inspect", "attention", "-c", str(run_dir), "-p", "hi", "--head", "induction",
        "--layer", "0",
    )  # fmt: skip
    assert code == 0 and f"--head induction: {in_layer_0}," in err, err
    by_role = run_main("inspect", "ablate", "-c", str(run_dir), "--heads", "induction", "--json")
    by_label = run_main("inspect", "ablate", "-c", str(run_dir), "--heads", label, "--json")
    assert by_role[0] == 0 and json.loads(by_role[1]) == json.loads(by_label[1])
    code, _, err = run_main("inspect", "attention", "-c", str(run_dir), "-p", "hi", "--head", "x")
    assert "a role (induction, previous-token" in one_line_error(code, err)


def test_every_role_names_the_head_with_its_top_score_on_the_probe(run_dir):
    # The other roles are scored on the probe's attention, not the induction probe's table.
    code, out, err = run_main("inspect", "attention", "-c", str(run_dir), "--induction", "--json")
    assert code == 0, err
    scores = json.loads(out)["scores"]
    for role in ("previous-token", "duplicate-token", "sink", "self"):
        key = role.replace("-", "_").replace("self", "self_attention")
        top = max(scores, key=lambda s: s[key])
        label = f"L{top['layer']}H{top['head']}"
        code, _, err = run_main(
            "inspect", "attention", "-c", str(run_dir), "-p", "hi", "--head", role
        )
        assert code == 0 and f"--head {role}: {label}, the strongest" in err, (role, err)
        assert f"({top[key]:.2f})" in err, (role, err)


def test_a_target_outside_the_vocabulary_and_zero_rows_are_one_line(run_dir):
    code, _, err = run_main(
        "inspect", "attribution", "-c", str(run_dir), "-p", "All:", "--target", "É"
    )
    line = one_line_error(code, err)
    assert "'É' is not in the model's vocabulary" in line, line
    for rows in ("0", "-1"):
        code, _, err = run_main(
            "inspect", "attribution", "-c", str(run_dir), "-p", "All:", "--rows", rows
        )
        assert code == 2 and "--rows" in err, err


def test_ablate_takes_the_printed_label(two_runs: Path) -> None:
    base = ["inspect", "ablate", "-c", "checkpoints/new", "--prompt", "All: speak", "--json"]
    results = []
    for spec in ("1.0", "L1H0", "l1h0"):
        code, out, err = run_main(*base, "--heads", spec, "--mode", "zero", cwd=two_runs)
        assert code == 0, err
        results.append(json.loads(out))
    for result in results[1:]:  # the same measurement, whatever the spelling
        assert {**result, "heads": None} == {**results[0], "heads": None}
    code, _, err = run_main(*base, "--heads", "L1", cwd=two_runs)
    assert "such as L1H0" in one_line_error(code, err, (2,))


def test_head_takes_the_printed_label_and_a_number_needs_a_layer(two_runs: Path) -> None:
    base = ["inspect-attention", "-c", "checkpoints/new", "--prompt", "All: speak"]
    code, _, err = run_main(*base, "--head", "1", cwd=two_runs)
    assert (
        one_line_error(code, err, (2,))
        == "error: --head 1 needs --layer (or name the head as L1H1)"
    )
    code, by_label, err = run_main(*base, "--head", "L1H1", "--explain", cwd=two_runs)
    assert code == 0, err
    code, by_numbers, err = run_main(
        *base, "--layer", "1", "--head", "1", "--explain", cwd=two_runs
    )
    assert code == 0, err
    assert by_label == by_numbers and "Layer 1, head 1" in by_label
    code, _, err = run_main(*base, "--head", "L1H1", "--layer", "0", cwd=two_runs)
    assert "in layer 1, not --layer 0" in one_line_error(code, err, (2,))
    from tinygpt.analysis import commands
    from tinygpt.errors import UsageError

    # a Python caller is told its own argument names, the CLI its flags (above)
    with pytest.raises(UsageError, match=r"^head=1 needs layer \(") as caught:
        commands.attention_report(two_runs / "checkpoints" / "new", "All", head=1, device="cpu")
    assert caught.value.options == ("head", "layer")


def test_the_window_reaches_back_to_the_keys_the_queries_attend_to() -> None:
    import torch

    from tinygpt.views.attention_map import first_key, heatmap

    # The README's induction head: queries 21..44 of the second copy look at keys 0..19.
    t = 45
    a = torch.zeros(t, t)
    for i in range(t):
        a[i, i - 21 if i >= 21 else i] = 1.0
    assert first_key(a, 21, t, budget=70) == 0
    assert first_key(a, 21, t, budget=30) == t - 30  # no wider than the line allows
    assert first_key(a, 40, t, budget=70) == 19  # only as far back as needed
    drawn = heatmap(a, [chr(97 + i % 26) for i in range(t)], 21, t, "L1H2", keys_from=0).plain
    rows = drawn.splitlines()[1:]
    assert len(rows) == t - 21 and all("█" in row for row in rows)  # no empty map


@pytest.mark.parametrize("focus", [[], ["--layer", "1", "--head", "0"]])
def test_queries_keep_the_earlier_keys(two_runs: Path, focus: list[str]) -> None:
    args = ["inspect-attention", "-c", "checkpoints/new", "--prompt", "All: speak, all"]
    code, out, err = run_main(*args, "--queries", "5:10", *focus, cwd=two_runs)
    assert code == 0, err
    # A barely trained model spreads its weight over every earlier key: all of them are drawn.
    assert "All:␣speak  ← keys" in out and "queries 5..9, keys 0..9" in out


@pytest.mark.parametrize(
    "flag,name",
    [
        ("--json-file", "config.json"),
        ("--npz", "model.safetensors"),
        ("--html", "manifest.json"),
        ("--svg", "metrics.jsonl"),
        ("--png", "best.safetensors"),
    ],
)
def test_report_writers_never_overwrite_a_checkpoint_file(ck, tmp_path, flag, name):
    before = snapshot(ck)
    args = ("inspect-attention", "-c", "ck", "-p", "First", "--device", "cpu")
    code, _, err = run_main(*args, flag, f"ck/{name}", cwd=tmp_path)
    assert "part of the checkpoint" in one_line_error(code, err, (2,))
    assert snapshot(ck) == before
    code, _, err = run_main(*args, flag, f"ck/report-{name}", cwd=tmp_path)
    assert code == 0, err  # any other name in the folder is fine


@pytest.mark.parametrize(
    "args",
    [
        ("inspect-attention", "-c", "ck", "-p", "First", "--json-file"),
        ("plot", "-c", "ck", "--out"),
        ("eval", "small.txt", "-c", "ck", "--token-losses"),
    ],
)
def test_a_link_to_a_checkpoint_file_is_no_way_around_the_refusal(ck, tmp_path, args):
    # a report is written through a link to its target: a link named out.svg that led to
    # model.safetensors replaced the weights with the plot
    before = snapshot(ck)
    for name in ("model.safetensors", "state.pt", "manifest.json"):
        link = tmp_path / f"to-{name}.svg"
        link.symlink_to(ck / name)
        code, _, err = run_main(*args, link.name, cwd=tmp_path)
        line = one_line_error(code, err, (2,))
        assert f"(a link to {ck.resolve() / name}) is part of the checkpoint" in line
        assert snapshot(ck) == before


def _strict_json(text: str) -> object:
    """Parsed as JSON.parse would: NaN and Infinity are no JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    "args",
    [
        ("inspect", "attention", "-c", "{ck}", "-p", "a", "--json"),  # one token: nothing scored
        ("inspect", "attention", "-c", "{ck}", "-p", "All", "--queries", "0:1", "--json"),
        ("inspect", "compare", "{ck}", "{ck}", "-p", "a", "--json"),
    ],
)
def test_json_documents_are_json_even_where_nothing_was_scored(run_dir, args):
    # NaN scores were printed as NaN, which JSON.parse rejects; the --html page said null
    code, out, err = run_main(*(a.format(ck=run_dir) for a in args))
    assert code == 0, err
    _strict_json(out)


def test_ablate_never_writes_over_the_training_text_it_reads(ck, tmp_path):
    # --json-file naming the run's training text replaced it with the JSON (exit 0)
    config = json.loads((ck / "config.json").read_text())
    config["train"]["data"] = str(tmp_path / "small.txt")
    rehash(ck, "config.json", json.dumps(config).encode())
    before = (tmp_path / "small.txt").read_bytes()
    args = ("inspect", "ablate", "-c", "ck", "--heads", "L0H0", "--mode", "zero", "--json-file")
    code, _, err = run_main(*args, "small.txt", cwd=tmp_path)
    assert "is the file being read" in one_line_error(code, err, (2,))
    assert (tmp_path / "small.txt").read_bytes() == before


def test_compare_shows_a_folder_name_as_text_not_as_escapes_for_the_terminal(ck, tmp_path):
    import shutil

    odd = tmp_path / "evil\x1b]0;PWN\x07\x1b[31m"
    shutil.copytree(ck, odd)
    code, out, err = run_main("inspect", "compare", "ck", odd.name, "-p", "All", cwd=tmp_path)
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out and "evil\\x1b]0;PWN" in out


def test_compare_of_two_block_sizes_names_the_token_counts(run_dir, tiny_run):
    # the probe's length follows the block size: it said the tokenizers differed
    other = tiny_run("wider", block_size=2 * TINY["block_size"], max_steps=2).out_dir
    code, _, err = run_main("inspect", "compare", str(run_dir), str(other))
    line = one_line_error(code, err, (2,))
    assert "comparing needs the same tokens in both" in line and "block sizes" in line, line


def test_trajectory_names_its_argument_not_a_checkpoint_flag_it_lacks(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "t.txt").write_text("x")
    for where, says in (("empty", "point RUN at a directory"), ("t.txt", "RUN takes a checkpoint")):
        code, _, err = run_main("inspect", "trajectory", where, cwd=tmp_path)
        line = one_line_error(code, err)
        assert says in line and "--checkpoint" not in line, line


def test_ablate_refuses_a_one_token_prompt_and_says_when_it_cuts_one(run_dir):
    base = ("inspect", "ablate", "-c", str(run_dir), "--heads", "L0H0", "--mode", "zero")
    code, _, err = run_main(*base, "-p", "A")  # its row was left out without a word
    assert one_line_error(code, err) == "error: --prompt is one token; a loss needs two or more"
    code, _, err = run_main(*base, "-p", "All: speak. " * 20)  # cut silently to the block
    assert code == 0, err
    assert "note: the prompt has 240 tokens; only its last" in err


def test_explain_json_holds_the_steps_the_view_prints(run_dir):
    # the explanation was left out of --json (and --json-file)
    args = ("inspect", "attention", "-c", str(run_dir), "-p", "All: speak", "--head", "L1H0")
    code, out, err = run_main(*args, "--explain", "--json")
    assert code == 0, err
    doc = json.loads(out)
    step = doc["explanation"]
    assert (step["layer"], step["head"], step["query"]) == (1, 0, len(doc["tokens"]) - 1)
    row = doc["attention"][1][0][step["query"] - doc["first_query"]][: step["query"] + 1]
    assert step["weights"] == pytest.approx(row, abs=1e-6)
    code, out, _ = run_main(*args, "--json")
    assert "explanation" not in json.loads(out)
    code, _, err = run_main(*args[:-2], "--explain")  # no head: the first, said
    assert code == 0 and "note: explaining L0H0: name a head for another" in err, err
