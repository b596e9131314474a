"""Model-level probes of what heads do: induction, in-context learning, repeat loss, copying.

* induction (prefix matching, Olsson et al. 2022): on n random distinct tokens repeated twice,
  the mean over the second copy of A[i, i - n + 1], the weight on the token after the earlier
  occurrence (a perfect head scores 1). Never line breaks: many corpora start an unrelated
  record on each line, and a model that learned not to copy across one is right.
* repeat loss: the loss right after a run of REPEAT_MATCH tokens seen earlier in the window,
  where copying what followed it can help.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tinygpt.analysis.capture import AttentionRun, capture_attention
from tinygpt.analysis.evaluation import token_losses
from tinygpt.data.tokenizer import Tokenizer
from tinygpt.errors import UsageError
from tinygpt.model import GPT

# Fewer probe tokens (block size 1 or 2, a one-character vocabulary) leave nothing to predict.
MIN_PROBE_LENGTH = 2

REPEAT_MATCH = 3  # tokens that must repeat before a prediction counts as a repeat's
# Vocabularies up to this size are searched for every token holding a line break; larger (BPE)
# ones avoid just the encoding of "\n" (a random probe rarely draws the rest).
_SCAN_VOCAB = 1 << 12


def line_break_ids(tokenizer: Tokenizer, vocab_size: int) -> tuple[int, ...]:
    """Ids of the tokens that hold a line break, which the induction probe never draws."""
    if vocab_size <= _SCAN_VOCAB:
        strings = tokenizer.token_strings(list(range(vocab_size)))
        return tuple(i for i, s in enumerate(strings) if "\n" in s or "\r" in s)
    return tuple(tokenizer.encode("\n"))


def _longest_probe(model: GPT, avoid: Sequence[int]) -> int:
    cfg = model.config
    return min(cfg.block_size // 2, cfg.vocab_size - len(set(avoid)), 64)


def probe_fits(model: GPT, avoid: Sequence[int] = ()) -> bool:
    return _longest_probe(model, avoid) >= MIN_PROBE_LENGTH


def default_probe_length(model: GPT, avoid: Sequence[int] = ()) -> int:
    """Tokens in each copy of the induction probe; a one-line error where none fits."""
    n = _longest_probe(model, avoid)
    if n < MIN_PROBE_LENGTH:
        cfg = model.config
        raise UsageError(
            f"the induction probe needs a block of {2 * MIN_PROBE_LENGTH} tokens or more and "
            f"{MIN_PROBE_LENGTH} that are not line breaks; this model has a block of "
            f"{cfg.block_size} and {cfg.vocab_size - len(set(avoid))}"
        )
    return n


def induction_sequence(
    vocab_size: int, n: int, seed: int = 0, avoid: Sequence[int] = ()
) -> list[int]:
    """n random tokens without repeats (so 'the earlier occurrence' is unique), none of them in
    ``avoid``, twice."""
    g = torch.Generator().manual_seed(seed)
    skip = set(avoid)
    first = [i for i in torch.randperm(vocab_size, generator=g).tolist() if i not in skip][:n]
    return first + first


def induction_scores_from_weights(weights: torch.Tensor, n: int) -> torch.Tensor:
    """Mean A[i, i - n + 1] over the second copy, for (..., 2n, 2n) weights."""
    i = torch.arange(n, 2 * n)
    return weights[..., i, i - n + 1].double().mean(-1)


def induction_chance(n: int) -> float:
    """The induction score of uniform attention: mean 1/(i+1) over the second copy."""
    return float((1.0 / torch.arange(n + 1, 2 * n + 1, dtype=torch.float64)).mean())


@dataclass
class InductionProbe:
    """(n_layer, n_head) induction scores on ``length`` random tokens repeated twice."""

    scores: torch.Tensor
    length: int

    @property
    def chance(self) -> float:
        return induction_chance(self.length)

    def to_dict(self) -> dict:
        return {
            "repeated_length": self.length,
            "scores": self.scores.tolist(),
            "chance": self.chance,
            # tools averaging over both copies report about half this for a perfect head
            "convention": "mean over second-copy queries; perfect head = 1",
        }


@torch.inference_mode()
def induction_probe(model: GPT, n: int | None = None, avoid: Sequence[int] = ()) -> InductionProbe:
    """Induction scores of every head on random tokens (none in ``avoid``) repeated twice."""
    n = n or default_probe_length(model, avoid)
    ids = induction_sequence(model.config.vocab_size, n, avoid=avoid)
    run = capture_attention(model, ids, [str(i) for i in ids])
    return InductionProbe(induction_scores_from_weights(run.weights, n).float(), n)


@torch.inference_mode()
def induction_loss(model: GPT, n: int | None = None, avoid: Sequence[int] = ()) -> float:
    """Mean loss on the second copy of repeated random tokens (predictable only by copying)."""
    n = n or default_probe_length(model, avoid)
    ids = induction_sequence(model.config.vocab_size, n, avoid=avoid)
    ids = torch.tensor([ids], device=model.wte.weight.device)
    # position p predicts token p + 1; the second copy's tokens n + 1 .. 2n - 1 are predictable
    return float(token_losses(model, ids)[0, n:].mean())


def repeat_positions(x: torch.Tensor, match: int = REPEAT_MATCH) -> torch.Tensor:
    """(B, T) bool: position i ends a run of ``match`` tokens that occurs earlier in its row
    (ending at some j < i), so the token after the earlier run is a guess at token i + 1."""
    b, t = x.shape
    found = torch.zeros(b, t, dtype=torch.bool, device=x.device)
    if t <= match:
        return found
    runs = x.unfold(1, match, 1)  # (B, T - match + 1, match): the run ending at match - 1 + k
    same = (runs[:, :, None, :] == runs[:, None, :, :]).all(-1)  # (B, K, K)
    earlier = torch.ones(same.size(1), same.size(1), dtype=torch.bool, device=x.device).tril(-1)
    found[:, match - 1 :] = (same & earlier).any(-1)
    return found


@torch.inference_mode()
def repeat_loss(model: GPT, windows: torch.Tensor) -> float | None:
    """Mean loss of the predictions right after a repeated run (see the module docstring) over
    ``windows`` (B, T + 1) of text; None when the windows hold no repeated run."""
    where = repeat_positions(windows[:, :-1])
    if not bool(where.any()):
        return None
    return float(token_losses(model, windows)[where].mean())


@torch.inference_mode()
def in_context_score(model: GPT, windows: torch.Tensor) -> float:
    """Loss in the last quarter of ``windows`` (B, T + 1) minus loss from T/16 to T/8 (Olsson
    et al. 2022 compare token 500 with 50); negative: later tokens gain from context."""
    losses = token_losses(model, windows).mean(0)
    t = losses.numel()
    early = losses[max(1, t // 16) : max(2, t // 8)].mean()
    return float(losses[(3 * t) // 4 :].mean() - early)


@torch.no_grad()
def copying_scores(model: GPT) -> torch.Tensor:
    """(n_layer, n_head) weights-only copying scores of the OV circuits, in [0, 1]: the share of
    eigenvalue magnitude with a positive real part (Elhage et al. 2021), as a copying head's
    OV circuit M = W_E W_V W_O W_U raises the logit of what it attends to. M's non-zero
    eigenvalues are those of the small product W_O W_U W_E W_V. Norms and biases are ignored."""
    cfg = model.config
    d, dh = cfg.n_embd, cfg.head_dim
    w_e = model.wte.weight.double()  # (vocab, d)
    w_u = model.lm_head.weight.double()  # (vocab, d): w_e itself when tied (gpt2 recipe)
    embed_unembed = w_e.T @ w_u  # (d, d): W_E then W_U in the cyclic product
    out = torch.zeros(cfg.n_layer, cfg.n_head)
    for layer, block in enumerate(model.blocks):
        w_v = block.attn.c_attn.weight.double()[2 * d :]  # (d, d): rows are value outputs
        w_o = block.attn.c_proj.weight.double()  # (d, d)
        for h in range(cfg.n_head):
            v_h = w_v[h * dh : (h + 1) * dh]  # x -> v: v = v_h @ x
            o_h = w_o[:, h * dh : (h + 1) * dh]  # v -> residual: o_h @ v
            # M[t, s] = w_u[t] . o_h v_h w_e[s]: logit of t when the head attends to s.
            small = v_h @ embed_unembed @ o_h  # (dh, dh), same non-zero spectrum as M
            eig = torch.linalg.eigvals(small)
            mag = eig.abs()
            out[layer, h] = float(mag[eig.real > 0].sum() / mag.sum().clamp_min(1e-30))
    return out


@torch.no_grad()
def direct_copying_per_query(model: GPT, run: AttentionRun) -> torch.Tensor:
    """(n_layer, n_head, T) direct-path copying of each query (Olsson et al. 2022): the head's
    update read straight through the unembedding (the final norm's gain as a scale; later
    layers ignored), and the weight-averaged rise, over the mean logit, of the logits of the
    tokens it attends to. > 0: the head promotes what it looks at."""
    cfg = model.config
    dh = cfg.head_dim
    ids = torch.tensor(run.ids)
    w_u = model.lm_head.weight.detach().float().cpu()
    if getattr(model.ln_f, "weight", None) is not None:  # RMSNorm (modern) has no gain
        w_u = w_u * model.ln_f.weight.detach().float().cpu()
    out = torch.zeros(cfg.n_layer, cfg.n_head, len(run.ids))
    for layer, cap in enumerate(run.captures):
        w_o = model.blocks[layer].attn.c_proj.weight.detach().float().cpu()
        for h in range(cfg.n_head):
            update = cap.head_outputs[0, h] @ w_o[:, h * dh : (h + 1) * dh].T  # (T, d)
            logits = update @ w_u.T  # (T, vocab)
            logits = logits - logits.mean(-1, keepdim=True)
            on_keys = logits[:, ids]  # (T queries, T keys): logit of each key's token
            out[layer, h] = (cap.weights[0, h] * on_keys).sum(-1)
    return out
