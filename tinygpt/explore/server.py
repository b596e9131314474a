"""The local web server of ``tinygpt explore``: a Starlette app served by uvicorn, no
hand-written HTTP. Sampled tokens stream as server-sent events: one direction is all streaming
needs, EventSource reconnects by itself, and a plain GET stays under the same token check
(a WebSocket would be a second protocol).

Safe by default, as Jupyter is: bound to 127.0.0.1; a random token in the address, required on
every request (the page puts it in each address it asks for: no cookie, which a browser would
send to every port of 127.0.0.1, another local server's included); the Host header must name
this machine (no DNS rebinding); no request can name a file; a CSP that runs only the page's
own script and loads nothing from elsewhere; model and prompt text is set as text, never HTML;
a request body is JSON of at most ``MAX_BODY`` bytes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tinygpt.api import sample_config
from tinygpt.errors import TinyGPTError, python_spelling
from tinygpt.explore.session import Explorer

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSETS = {"explore.js": "text/javascript", "explore.css": "text/css"}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
# The sampling controls a page may send, each as the type SampleConfig takes.
SAMPLE_FIELDS = {"temperature": float, "top_k": int, "top_p": float, "seed": int}
MAX_NEW_TOKENS = 1024
MAX_BODY = 2**20  # 65,536 token ids, the longest text a page sends, take under half of it
TURN_S = 0.01  # a stream's turn on the event loop: the tokens it samples make one message
WAIT_S = 0.005  # how long a stream waits for the model while an answer has it


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Guard:
    """Every request carries the run's token in its address and every response the CSP;
    anything else is refused before it reaches a route."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request, app = Request(scope), self.app
        given = request.query_params.get("token", "")
        if not secrets.compare_digest(given.encode(), self.token.encode()):
            app = PlainTextResponse(
                "this page needs the address tinygpt explore printed (with its token)", 403
            )
        await _with_csp(app)(scope, receive, send)


def _with_csp(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped


def create_app(explorer: Explorer, token: str, hosts: tuple[str, ...] = LOCAL_HOSTS) -> Starlette:
    """The page and its API over ``explorer``; ``hosts``: the names the Host header may give."""
    routes = [
        Route("/", page),
        Route("/static/{name}", asset),
        Route("/api/info", info),
        Route("/api/generate", generate),
        Route("/api/analyse", analyse, methods=["POST"]),
        Route("/api/tokens", tokens, methods=["POST"]),
        Route("/api/explain", explain, methods=["POST"]),
        Route("/api/patch", patch, methods=["POST"]),
    ]
    guards = [
        Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts)),
        Middleware(Guard, token=token),
    ]
    app = Starlette(routes=routes, middleware=guards)
    app.state.explorer, app.state.token = explorer, token
    app.state.lock = threading.Lock()  # one model: a request's hooks never meet another's
    return app


def page(request: Request) -> Response:
    html = resources.files("tinygpt.explore.page").joinpath("index.html").read_text()
    # The page's own files are asked for with the token too (it is URL-safe: no escaping).
    return Response(html.replace("{token}", request.app.state.token), media_type="text/html")


def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:  # a fixed list: no request names a file
        return PlainTextResponse("not found", 404)
    text = resources.files("tinygpt.explore.page").joinpath(name).read_text()
    return Response(text, media_type=ASSETS[name])


def info(request: Request) -> Response:
    return JSONResponse(request.app.state.explorer.info())


def generate(request: Request) -> Response:
    """The stream of a sample; its options and prompt are checked first, so a bad one is a
    400 with a sentence rather than a stream that breaks."""
    params, state = request.query_params, request.app.state
    try:
        options: dict[str, Any] = {
            k: cast(params[k]) for k, cast in SAMPLE_FIELDS.items() if params.get(k)
        }
        options["max_new_tokens"] = min(int(params.get("max_new_tokens") or 200), MAX_NEW_TOKENS)
        options["stop"] = [s for s in params.getlist("stop") if s]
        cfg = sample_config(options)
        with state.lock:
            state.explorer.tokens(params.get("prompt", ""))
    except (TinyGPTError, ValueError, TypeError) as exc:
        return _refused(exc)
    events = _events(state.explorer, params.get("prompt", ""), cfg, state.lock)
    return StreamingResponse(events, media_type="text/event-stream")


def _posted(work: Callable[[Explorer, dict[str, Any]], dict[str, Any]]) -> Callable:
    """A POST route answering ``work(explorer, body)`` as JSON; the body's fields are read
    inside ``work``, on the worker thread, so a field of the wrong type is a 400, not a 500."""

    async def route(request: Request) -> Response:
        state = request.app.state
        try:
            body = await _json(request)
        except TooLarge:
            return JSONResponse({"error": f"a request body is at most {MAX_BODY} bytes"}, 413)

        def locked() -> Response:  # on a worker thread: the server keeps serving
            try:
                with state.lock:
                    return JSONResponse(work(state.explorer, body))
            except (TinyGPTError, ValueError, TypeError) as exc:
                return _refused(exc)

        return await run_in_threadpool(locked)

    return route


def _token_ids(explorer: Explorer, body: dict[str, Any]) -> dict[str, Any]:
    ids = explorer.tokens(str(body.get("text", "")))
    return {"ids": ids, "tokens": explorer.token_texts(ids)}


def _at_step(work: Callable[[Explorer, dict[str, Any]], dict[str, Any]]) -> Callable:
    """``work`` answered with the weights of the body's ``step`` (the slider; none: as saved)."""

    def answer(explorer: Explorer, body: dict[str, Any]) -> dict[str, Any]:
        step = body.get("step")
        with explorer.at_step(None if step is None else _whole(body, "step")):
            return work(explorer, body)

    return answer


analyse = _posted(
    _at_step(
        lambda ex, b: ex.analyse(
            _ids(b), _whole(b, "position"), _labels(b), str(b.get("mode") or "zero")
        )
    )
)
tokens = _posted(_token_ids)
explain = _posted(
    _at_step(lambda ex, b: ex.explanation(_ids(b), _whole(b, "position"), str(b.get("head", ""))))
)
patch = _posted(
    _at_step(lambda ex, b: ex.patch(_ids(b), _whole(b, "position"), str(b.get("corrupted", ""))))
)


async def _events(
    explorer: Explorer, prompt: str, cfg: Any, lock: threading.Lock
) -> AsyncIterator[str]:
    """Server-sent events: each turn's sampled tokens (a JSON object a line), then ``event: done``.
    The sampler runs on the loop's own thread, ``TURN_S`` at a time (on a worker thread it fought
    the loop for the GIL at every torch call); between turns the loop serves other requests, a
    click's answer among them. A page that goes away ends the sample."""
    stream = explorer.stream(prompt, cfg)
    done = False
    try:
        while not done:
            if not lock.acquire(blocking=False):
                await asyncio.sleep(WAIT_S)
                continue
            items: list[dict[str, Any]] = []
            try:
                end = time.perf_counter() + TURN_S
                while not done and time.perf_counter() < end:
                    item = next(stream, None)
                    done = item is None
                    if item is not None:
                        items.append(item)
            except Exception as exc:  # said in the page; the server's console stays clean
                text = f"sampling stopped: {type(exc).__name__}: {exc}"
                items.append({"kind": "error", "text": text})
                done = True
            finally:
                lock.release()
            if items:
                yield "data: " + "\ndata: ".join(json.dumps(i) for i in items) + "\n\n"
            await asyncio.sleep(0)  # the loop's other work: sending, requests, a disconnect
        yield "event: done\ndata: {}\n\n"
    finally:
        stream.close()


class TooLarge(Exception):
    """A request body over ``MAX_BODY`` bytes (read no further)."""


async def _json(request: Request) -> dict[str, Any]:
    """The body's JSON object ({} for anything else: its fields are then missing, a 400)."""
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise TooLarge
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: arrays nested a thousand deep
        body = None
    return body if isinstance(body, dict) else {}


def _whole(body: dict[str, Any], field: str) -> int:
    value = body.get(field, 0)
    if type(value) is not int:  # not 1.5, true, "2" or 1e400 (inf)
        raise ValueError(f"{field} must be a whole number")
    return value


def _labels(body: dict[str, Any]) -> list[str]:
    off = body.get("off", [])
    if not isinstance(off, list) or not all(isinstance(label, str) for label in off):
        raise ValueError("off must be a list of head labels such as L0H1")
    return off


def _ids(body: dict[str, Any]) -> list[int]:
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(type(i) is int for i in ids):
        raise ValueError("ids must be a list of token ids")
    return ids


def _refused(exc: Exception) -> Response:
    text = exc.render(python_spelling) if isinstance(exc, TinyGPTError) else str(exc)
    return JSONResponse({"error": text}, status_code=400)
