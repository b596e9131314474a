"""An interactive session: a prompt line in, a sample streamed out, the model loaded once. Not a
chat: a base model continues the text it is given."""

from __future__ import annotations

from collections.abc import Callable

from tinygpt.config.sample import SampleConfig
from tinygpt.data.tokenizer import Tokenizer
from tinygpt.errors import Interrupted, TinyGPTError
from tinygpt.model import GPT
from tinygpt.sampling.generate import generate_text


def interactive(
    model: GPT,
    tokenizer: Tokenizer,
    cfg: SampleConfig,
    read_line: Callable[[], str],
    write: Callable[[str], None],
    warn: Callable[[TinyGPTError], None] | None = None,
) -> int:
    """Answer prompts from ``read_line`` until end of input (EOFError); returns the samples
    written. Ctrl-C stops a sample; a prompt the model can't take is told to ``warn`` (else
    written) and the session goes on; SIGTERM or SIGHUP ends it as it ends any command."""
    turns = 0
    while True:
        try:
            prompt = read_line()
        except EOFError:
            write("\n")
            return turns
        except Interrupted:
            raise
        except KeyboardInterrupt:  # Ctrl-C at the prompt: a fresh prompt, as shells do
            write("\n")
            continue
        try:
            generate_text(model, tokenizer, prompt, cfg, on_text=write)
        except Interrupted:
            raise
        except KeyboardInterrupt:
            write(" [stopped]")
        except TinyGPTError as exc:
            (warn or (lambda e: write(f"error: {e}")))(exc)
            continue
        write("\n")
        turns += 1
