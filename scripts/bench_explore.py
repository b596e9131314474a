"""How fast ``tinygpt explore`` answers, measured in Chromium (Playwright) against a real
server, side by side with ``tinygpt generate`` in the same run:

    python scripts/bench_explore.py [-c CHECKPOINT] [--clicks 15] [--tokens 200] [--screenshot F]

- click latency: from a click on a token to the page showing every head, the predictions, the
  lens and the attribution (the page times it, fetch and drawing included); median over
  ``--clicks`` clicks on different tokens of a written text;
- streaming: tokens/s the page shows while writing ``--tokens`` tokens, against
  ``generate_text``'s tokens/s for the same model, prompt and options (median of ``--rounds``
  each, taking turns);
- a text as long as the block (the longest context the page ever analyses): one click there.

Without ``-c``, the newest checkpoint under checkpoints/. ``--screenshot`` saves the page after
a click (the README's picture). Chromium: Debian's ``chromium`` (Playwright cannot download its
own browsers here).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import threading
import time
from pathlib import Path

import torch
import uvicorn
from benchutil import machine
from playwright.sync_api import sync_playwright

from tinygpt.checkpoint.store import load
from tinygpt.config.sample import SampleConfig
from tinygpt.explore.server import create_app, new_token
from tinygpt.explore.session import Explorer
from tinygpt.sampling import generate_text


def serve(explorer: Explorer) -> tuple[str, uvicorn.Server]:
    token = new_token()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(
        uvicorn.Config(create_app(explorer, token), log_level="warning", lifespan="off")
    )
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{sock.getsockname()[1]}/?token={token}", server


def write_in_page(page, prompt: str, tokens: int, seed: int) -> float:
    """Tokens/s the page received from its first written token to its last (its own clock),
    as generate's figure counts its sampling loop."""
    page.fill("#prompt", prompt)
    page.fill("#seed", str(seed))
    page.fill("#max_new_tokens", str(tokens))
    page.fill("#temperature", "0.8")
    page.click("#go")
    page.wait_for_selector(f"body[data-written='{tokens}']", timeout=600_000)
    return float(page.get_attribute("body", "data-rate") or "nan")


def click_ms(page, index: int) -> float:
    # The page's CSP forbids eval (Playwright's too): its timings are read from attributes.
    before = page.get_attribute("body", "data-click-ms")
    page.click(f"#text .tok[data-index='{index}']")
    page.wait_for_selector(f"#text .tok.selected[data-index='{index}']")
    deadline = time.monotonic() + 60
    while page.get_attribute("body", "data-click-ms") == before and time.monotonic() < deadline:
        time.sleep(0.005)
    page.wait_for_selector("#heads .head")
    return float(page.get_attribute("body", "data-click-ms") or "nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--checkpoint", default=None)
    parser.add_argument("--clicks", type=int, default=15)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5, help="streaming: each side this often")
    parser.add_argument("--prompt", default="ROMEO:")
    parser.add_argument("--screenshot", type=Path, default=None)
    args = parser.parse_args()

    model, tokenizer, ck = load(args.checkpoint, "cpu", attention="manual")
    generate_threads = torch.get_num_threads()  # what `tinygpt generate` runs with here
    explorer = Explorer(model, tokenizer, ck)
    m = model.config
    print(
        f"{machine()}; {ck.directory} ({m.n_layer}x{m.n_embd}, "
        f"{m.n_head} heads, block {m.block_size})"
    )
    url, server = serve(explorer)
    cfg = SampleConfig(max_new_tokens=args.tokens, temperature=0.8, seed=1)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        page_tps, cli_tps = [], []
        for seed in range(1, args.rounds + 1):  # taking turns: the page, then generate_text
            torch.set_num_threads(1)  # as `tinygpt explore` serves on a CPU
            page_tps.append(write_in_page(page, args.prompt, args.tokens, seed))
            torch.set_num_threads(generate_threads)
            cli_tps.append(generate_text(model, tokenizer, args.prompt, cfg).tokens_per_sec)
        torch.set_num_threads(1)
        page_rate, cli_rate = statistics.median(page_tps), statistics.median(cli_tps)
        print(
            f"streaming: page {page_rate:.1f} tokens/s (1 thread, as explore serves), generate "
            f"{cli_rate:.1f} tokens/s ({generate_threads} threads, as generate runs here); "
            f"page/generate {page_rate / cli_rate:.2f}, medians of {args.rounds}, "
            f"{args.tokens} tokens each"
        )
        count = len(page.query_selector_all("#text .tok"))
        picks = [round(i * (count - 1) / max(1, args.clicks - 1)) for i in range(args.clicks)]
        times = [click_ms(page, i) for i in picks]
        print(
            f"click latency: median {statistics.median(times):.0f} ms, max {max(times):.0f} ms "
            f"over {len(times)} clicks on a {count}-token text"
        )
        write_in_page(page, args.prompt, 1024, 1)  # a 1,024-token text: the longest asked for
        last = len(page.query_selector_all("#text .tok")) - 1
        print(f"a {last + 1}-token text, click on its last token: {click_ms(page, last):.0f} ms")
        if args.screenshot:
            write_in_page(page, args.prompt, 60, 1)
            click_ms(page, 40)
            page.locator("header").scroll_into_view_if_needed()
            page.screenshot(path=str(args.screenshot), full_page=False)
            print(f"wrote {args.screenshot}")
        browser.close()
    server.should_exit = True


if __name__ == "__main__":
    main()
