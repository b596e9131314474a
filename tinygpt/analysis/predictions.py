"""What the model predicted at each position of a prompt, and how surprised it was."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from tinygpt.model import GPT


@dataclass
class Prediction:
    """At ``position``: the model's ``top`` next tokens (id, probability), and the token that did
    come next with its probability and loss (None at the prompt's last position)."""

    position: int
    top: list[tuple[int, float]]
    next_id: int | None = None
    next_prob: float | None = None
    loss: float | None = None  # -ln next_prob, in nats

    def to_dict(self) -> dict:
        return {**asdict(self), "top": [{"id": i, "prob": p} for i, p in self.top]}


@torch.inference_mode()
def log_probs(model: GPT, ids: list[int]) -> torch.Tensor:
    """(T, vocab) log-probabilities of the next token at each position of ``ids`` (float32)."""
    model.eval()
    idx = torch.tensor([ids], device=model.wte.weight.device)
    logits, _ = model(idx)
    return F.log_softmax(logits[0].float(), dim=-1).cpu()


def predictions(model: GPT, ids: list[int], k: int = 5) -> list[Prediction]:
    """Per position the top ``k`` next tokens, and the actual next token's probability and loss."""
    logp = log_probs(model, ids)
    top = logp.topk(min(k, logp.size(-1)), dim=-1)
    out = []
    for t in range(len(ids)):
        pairs = [
            (int(i), float(v.exp())) for v, i in zip(top.values[t], top.indices[t], strict=True)
        ]
        p = Prediction(t, pairs)
        if t + 1 < len(ids):
            p.next_id = ids[t + 1]
            p.loss = float(-logp[t, p.next_id])
            p.next_prob = float(logp[t, p.next_id].exp())
        out.append(p)
    return out
