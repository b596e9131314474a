"""``tinygpt explore``: the user's own model, live in a local page (tinygpt/explore/)."""

from __future__ import annotations

import contextlib
import socket
import webbrowser
from typing import TYPE_CHECKING, Annotated

import typer

from tinygpt.cli.app import command
from tinygpt.cli.common import DEVICE_DEFAULT, CheckpointOpt, DeviceOpt
from tinygpt.errors import Opt, UsageError
from tinygpt.io.console import printable

ANY_ADDRESS = ("0.0.0.0", "::")  # listening on every address of this machine

if TYPE_CHECKING:  # torch is imported when the command runs, not for --help
    import torch

    from tinygpt.checkpoint.store import Checkpoint


@command("explore")
def explore(
    checkpoint: CheckpointOpt = None,
    port: Annotated[int, typer.Option(help="Port to serve on; 0 picks a free one.")] = 0,
    host: Annotated[
        str,
        typer.Option(help="Address to listen on. Anything but 127.0.0.1 lets other machines in."),
    ] = "127.0.0.1",
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the address; don't open a browser.")
    ] = False,
    best: Annotated[bool, typer.Option("--best", help="Use the best-validation weights.")] = False,
    device: DeviceOpt = DEVICE_DEFAULT,
) -> None:
    """Explore a trained model in a local web page: write, click a token, see every head."""
    import torch
    import uvicorn

    from tinygpt.checkpoint.store import find_checkpoint
    from tinygpt.explore.server import LOCAL_HOSTS, create_app, new_token
    from tinygpt.explore.session import Explorer
    from tinygpt.model.device import resolve_device

    ck, where = find_checkpoint(checkpoint), resolve_device(device)
    _check_fits(ck, where)
    model = ck.load_model(where, attention="manual", best=best).eval()
    tokenizer = ck.tokenizer
    if model.wte.weight.device.type == "cpu":
        # One token or block at a time: a second torch thread costs more in hand-offs than it
        # computes (780 streamed tokens/s with one thread, 330 with two; docs/benchmarks.md).
        torch.set_num_threads(1)
    sock = _listen(host, port)
    token = new_token()
    app = create_app(Explorer(model, tokenizer, ck), token, _host_names(host))
    shown = "127.0.0.1" if host in ANY_ADDRESS else host
    shown = f"[{shown}]" if ":" in shown else shown  # an IPv6 address, as a URL writes it
    url = f"http://{shown}:{sock.getsockname()[1]}/?token={token}"
    if host not in LOCAL_HOSTS:
        typer.echo(f"warning: listening on {host}: other machines can reach this page", err=True)
    typer.echo(f"exploring {printable(str(ck.directory))} at {url}", err=True)
    typer.echo("Ctrl-C stops the server.", err=True)
    if not no_browser:
        with contextlib.suppress(Exception):  # no browser here: the address is printed
            webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    # uvicorn shuts down on Ctrl-C (SIGTERM, SIGHUP), then raises it again: the end asked for, 0.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    typer.echo("stopped", err=True)


def _check_fits(ck: Checkpoint, device: torch.device) -> None:
    """One line before anything is loaded, rather than a page whose first click runs out."""
    from tinygpt.checkpoint.manifest import HISTORY_FILE
    from tinygpt.explore.session import memory_needed
    from tinygpt.model.device import free_memory

    history = ck.manifest.get("sizes", {}).get(HISTORY_FILE, 0)
    need, free = memory_needed(ck.config.model, history), free_memory(device)
    if free is not None and need > free:
        raise UsageError(
            f"{printable(str(ck.directory))} needs about {need / 2**30:.1f} GiB to explore on "
            f"{device.type} and {free / 2**30:.1f} GiB is free; free some memory or pass ",
            Opt("device", "cpu") if device.type != "cpu" else Opt("checkpoint"),
            " (another model)" if device.type == "cpu" else "",
        )


def _host_names(host: str) -> tuple[str, ...]:
    """The names a request's Host header may give. Listening on every address, the server
    cannot know which name other machines reach it by: any, and the token alone guards it."""
    from tinygpt.explore.server import LOCAL_HOSTS

    if host in ANY_ADDRESS:
        return ("*",)
    if host in LOCAL_HOSTS:
        return LOCAL_HOSTS
    return (*LOCAL_HOSTS, f"[{host}]" if ":" in host else host)  # a Host header brackets IPv6


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0: a free port), or one line saying why not."""
    if not 0 <= port <= 65535:
        raise UsageError(Opt("port"), f" must be from 0 (a free one) to 65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port just freed is free
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(64)
    return sock
