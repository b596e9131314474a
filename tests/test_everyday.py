"""Presets, config files, info, runs, plots, and train's default corpus."""


def test_readme_plots_into_the_run_the_main_command_makes():
    import re
    from pathlib import Path

    from tests.conftest import ROOT
    from tests.docs import documentation
    from tinygpt.data.datasets import default_corpus
    from tinygpt.training.run import default_out_dir

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    main_job = re.search(r"```bash\n(pip install -e \. && .*)\n```", readme)[1].split(" && ")
    train = next(c.split()[2:] for c in main_job if c.startswith("tinygpt train "))
    # Only options with their values: no FILE (the default corpus) and no --out.
    assert all(a.startswith("--") for a in train[::2]) and "--out" not in train, train
    run = default_out_dir(default_corpus())  # checkpoints/tinyshakespeare
    outs = re.findall(r"tinygpt plot [^\n`]*--out ([^\s`]+)", documentation())  # docs/ too
    assert outs and all(Path(out).parent == run for out in outs), outs
