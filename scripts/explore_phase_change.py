"""The induction run's phase change on ``tinygpt explore``'s step slider, measured in the page.

    python scripts/explore_phase_change.py [-c CHECKPOINT] [--text LINE] [--shots DIR]

Serves the checkpoint (default: the newest), types a line that repeats a random string (the
induction corpus's kind), clicks the first token of the repeat whose earlier copy it can
complete, and drags the slider through every step the run kept. For each step it prints, from
the page itself, the layer-1 head that puts the most weight on the token after the earlier
copy (the induction target), that weight, and the probability of the right next character.
``--shots DIR`` saves every head's row at the kept steps just before and just after a layer-1
head first puts half its weight on the target (the README's pictures).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import Page, sync_playwright

from tinygpt.checkpoint.store import load
from tinygpt.explore.server import create_app, new_token
from tinygpt.explore.session import Explorer

TEXT = "qpvissbxfudoczwzcosovozpplpkoheqpvissbxfudoczwz"  # from `tinygpt data repeats`


def serve(explorer: Explorer) -> str:
    token, sock = new_token(), socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    config = uvicorn.Config(create_app(explorer, token), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{sock.getsockname()[1]}/?token={token}"


def repeat_query(text: str) -> tuple[int, int]:
    """(query, induction target): a character in the second copy, 4 into it, and the position
    right after its match in the first copy (char tokens: one position a character)."""
    for start in range(1, len(text)):
        first = text.find(text[start : start + 4])
        if first < start - 3:  # an earlier copy of the next 4 characters
            return start + 3, first + 4
    raise SystemExit("the text repeats nothing: give a line with a repeated string")


def at_step(page: Page, index: int, step: int, target: int) -> tuple[str, float, float]:
    page.fill("#step", str(index))
    page.wait_for_selector(f"body[data-shown-step='{step}']")
    best = ("", -1.0)
    for panel in page.query_selector_all("#heads .head[data-head^='L1']"):
        cells = panel.query_selector_all(".cell")
        weight = float(cells[target].get_attribute("data-weight") or "nan")
        best = max(best, (panel.get_attribute("data-head") or "", weight), key=lambda b: b[1])
    prob = float(page.get_attribute("#loss", "data-next-prob") or "nan")
    return best[0], best[1], prob


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--checkpoint", default=None)
    parser.add_argument("--text", default=TEXT)
    parser.add_argument("--shots", type=Path, default=None)
    args = parser.parse_args()
    model, tokenizer, ck = load(args.checkpoint, "cpu", attention="manual")
    explorer = Explorer(model, tokenizer, ck)
    steps = explorer.info()["steps"]
    query, target = repeat_query(args.text)
    print(f"{ck.directory}: {len(steps)} kept steps; query {query}, induction target {target}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(serve(explorer))
        page.wait_for_selector("body[data-ready='1']")
        page.fill("#prompt", args.text)
        page.click("#read")
        page.click(f"#text .tok[data-index='{query}']")
        page.wait_for_selector("body[data-shown-step]")
        print("step  head  weight on the target  p(right next char)")
        rows = []
        for index, step in enumerate(steps):
            head, weight, prob = at_step(page, index, step, target)
            rows.append((step, weight))
            print(f"{step:>5}  {head}  {weight:>20.3f}  {prob:>18.3f}")
        if args.shots:
            args.shots.mkdir(parents=True, exist_ok=True)
            # The last kept step before a layer-1 head puts half its weight on the target,
            # and the first after.
            after = next((i for i, (_, w) in enumerate(rows) if w > 0.5), len(rows) - 1)
            for name, index in (("before", max(0, after - 1)), ("after", after)):
                at_step(page, index, steps[index], target)
                path = args.shots / f"explore-step-{name}.png"
                page.locator("#heads").screenshot(path=str(path))
                print(f"wrote {path} (step {steps[index]})")
        browser.close()


if __name__ == "__main__":
    main()
