"""What the attention heads of a model do: weights, head-role scores, rollout, explanations.

Weights come from the model's own forward pass on the explicit (``manual``) attention path, the
only one that materialises softmax(Q Kᵀ / √d_k + mask). Scores are computed per head from a
(T, T) weight matrix A, where A[i, j] is how much query position i attends to key position j:

* previous-token: mean over queries i >= 1 of A[i, i-1]
* self: mean over queries i >= 1 of A[i, i]
* sink: mean over queries i >= 1 of A[i, 0] (query 0 can only attend to itself, so it is left out)
* entropy: mean over queries i >= 1 of -sum_j A[i, j] ln A[i, j], in nats; normalised divides
  each row by ln(i + 1), its maximum (uniform attention over the i + 1 visible keys)
* induction (prefix matching, Olsson et al. 2022): on a sequence of random distinct tokens
  r_0..r_{n-1} repeated twice, the mean over positions i of the second copy of A[i, i - n + 1]:
  the weight on the token right after the earlier occurrence of the current token. A perfect
  induction head scores 1.

Roles (a head can have several): ``previous-token`` / ``self`` / ``sink`` when that score is at
least 0.5, ``induction`` when the induction score is at least 0.3, ``broad`` when the normalised
entropy is at least 0.8; otherwise ``mixed``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from tinygpt.evaluation import token_losses
from tinygpt.model import GPT, AttentionCapture

ROLE_THRESHOLD = 0.5
INDUCTION_THRESHOLD = 0.3
BROAD_ENTROPY = 0.8
CHANCE_MULTIPLE = 3.0  # a role also needs its score at least this many times its chance level
LOCAL_WINDOW = 3  # "local" share: the token itself and the two before it


@dataclass
class HeadScores:
    layer: int
    head: int
    previous_token: float
    self_attention: float
    sink: float
    entropy: float
    entropy_normalised: float
    local: float = float("nan")
    mean_distance: float = float("nan")
    duplicate_token: float | None = None
    induction: float | None = None
    copying: float | None = None
    copying_direct: float | None = None
    # Each score's value for a head that spreads its attention evenly over the visible tokens.
    chance: dict[str, float] = field(default_factory=dict)

    def _clears(self, name: str, threshold: float) -> bool:
        value = getattr(self, name)
        if value is None or not math.isfinite(value) or value < threshold:
            return False
        return value >= CHANCE_MULTIPLE * self.chance.get(name, 0.0)

    @property
    def roles(self) -> list[str]:
        """Labels for scores that clear both their threshold and CHANCE_MULTIPLE x chance."""
        roles = []
        if self._clears("previous_token", ROLE_THRESHOLD):
            roles.append("previous-token")
        if self._clears("induction", INDUCTION_THRESHOLD):
            roles.append("induction")
        if self._clears("duplicate_token", ROLE_THRESHOLD):
            roles.append("duplicate-token")
        if self._clears("sink", ROLE_THRESHOLD):
            roles.append("sink")
        if self._clears("self_attention", ROLE_THRESHOLD):
            roles.append("self")
        if self.entropy_normalised >= BROAD_ENTROPY and not roles:
            roles.append("broad")
        return roles or ["mixed"]

    def to_dict(self) -> dict:
        return {**asdict(self), "roles": self.roles}


@dataclass
class AttentionRun:
    """One prompt through the model: token strings and every layer's capture."""

    ids: list[int]
    tokens: list[str]
    captures: list[AttentionCapture]

    @property
    def weights(self) -> torch.Tensor:
        """(n_layer, n_head, T, T) attention weights."""
        return torch.stack([c.weights[0] for c in self.captures])


@torch.inference_mode()
def capture_attention(model: GPT, ids: list[int], token_strings: list[str]) -> AttentionRun:
    model.eval()
    device = model.wte.weight.device
    _, _, captures = model(torch.tensor([ids], device=device), capture=True)
    return AttentionRun(ids, token_strings, [_to_cpu_float(c) for c in captures])


def _to_cpu_float(c: AttentionCapture) -> AttentionCapture:
    return AttentionCapture(
        *(t.detach().float().cpu() for t in (c.q, c.k, c.v, c.weights, c.head_outputs))
    )


def recompute_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """softmax(Q Kᵀ / √d_k + causal mask) from scratch, for checking captured weights."""
    t, d = q.size(-2), q.size(-1)
    scores = torch.einsum("...id,...jd->...ij", q.double(), k.double()) / math.sqrt(d)
    future = torch.ones(t, k.size(-2), dtype=torch.bool).triu(1 + k.size(-2) - t)
    return torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)


def _targeted(a: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor) -> tuple[float, float]:
    """Mean over ``rows`` of the weight on ``targets`` keys, and the same for uniform attention."""
    t = a.size(0)
    positions = torch.arange(t, dtype=torch.float64)
    targets = targets & torch.ones(t, t, dtype=torch.bool).tril()
    hit = (a * targets).sum(-1)[rows]
    uniform = targets.sum(-1).double()[rows] / (positions[rows] + 1)
    return float(hit.mean()), float(uniform.mean())


def head_scores(
    a: torch.Tensor, layer: int = 0, head: int = 0, ids: list[int] | None = None
) -> HeadScores:
    """Scores of one head's (T, T) weights (see the module docstring for definitions)."""
    t = a.size(0)
    if t < 2:
        nan = float("nan")
        return HeadScores(layer, head, nan, nan, nan, nan, nan)
    a = a.double()
    rows = torch.arange(1, t)
    i, j = torch.arange(t)[:, None], torch.arange(t)[None, :]
    prev, prev_chance = _targeted(a, j == i - 1, rows)
    self_, self_chance = _targeted(a, j == i, rows)
    sink, sink_chance = _targeted(a, j == 0, rows)
    local, local_chance = _targeted(a, (i - j >= 0) & (i - j < LOCAL_WINDOW), rows)
    entropy = -(a[1:] * torch.log(a[1:].clamp_min(1e-30))).sum(-1)
    distance = (a * (i - j).clamp_min(0)).sum(-1)[rows]
    scores = HeadScores(
        layer=layer,
        head=head,
        previous_token=prev,
        self_attention=self_,
        sink=sink,
        entropy=float(entropy.mean()),
        entropy_normalised=float((entropy / torch.log(rows.double() + 1)).mean()),
        local=local,
        mean_distance=float(distance.mean()),
        chance={
            "previous_token": prev_chance,
            "self_attention": self_chance,
            "sink": sink_chance,
            "local": local_chance,
            "mean_distance": float((rows.double() / 2).mean()),
            "entropy_normalised": 1.0,
        },
    )
    if ids is not None:
        tok = torch.tensor(ids)
        same = (tok[:, None] == tok[None, :]) & (j < i)
        dup_rows = torch.nonzero(same.any(-1)).flatten()
        if len(dup_rows):
            scores.duplicate_token, scores.chance["duplicate_token"] = _targeted(a, same, dup_rows)
    return scores


def all_head_scores(weights: torch.Tensor, ids: list[int] | None = None) -> list[HeadScores]:
    """Scores for every head of (n_layer, n_head, T, T) weights, layer-major."""
    return [
        head_scores(weights[layer, head], layer, head, ids)
        for layer in range(weights.size(0))
        for head in range(weights.size(1))
    ]


def induction_scores_from_weights(weights: torch.Tensor, n: int) -> torch.Tensor:
    """Mean A[i, i - n + 1] over the second copy, for (..., 2n, 2n) weights."""
    i = torch.arange(n, 2 * n)
    return weights[..., i, i - n + 1].double().mean(-1)


def induction_sequence(vocab_size: int, n: int, seed: int = 0) -> list[int]:
    """n random tokens without repeats (so 'the earlier occurrence' is unique), twice."""
    g = torch.Generator().manual_seed(seed)
    first = torch.randperm(vocab_size, generator=g)[:n].tolist()
    return first + first


@torch.inference_mode()
def induction_probe(model: GPT, n: int | None = None, seed: int = 0) -> tuple[torch.Tensor, int]:
    """(n_layer, n_head) induction scores on random tokens repeated twice; also returns n."""
    cfg = model.config
    n = n or default_probe_length(model)
    ids = induction_sequence(cfg.vocab_size, n, seed)
    run = capture_attention(model, ids, [str(i) for i in ids])
    return induction_scores_from_weights(run.weights, n).float(), n


def default_probe_length(model: GPT) -> int:
    cfg = model.config
    return min(cfg.block_size // 2, cfg.vocab_size, 64)


@torch.inference_mode()
def induction_loss(model: GPT, n: int | None = None, seed: int = 0) -> float:
    """Mean loss on the second copy of repeated random tokens (predictable only by copying)."""
    n = n or default_probe_length(model)
    ids = torch.tensor(
        [induction_sequence(model.config.vocab_size, n, seed)], device=model.wte.weight.device
    )
    # position p predicts token p + 1; the second copy's tokens n + 1 .. 2n - 1 are predictable
    return float(token_losses(model, ids)[0, n:].mean())


@torch.inference_mode()
def in_context_score(model: GPT, windows: torch.Tensor) -> float:
    """Loss late in the context minus loss early in it (negative: later tokens gain from context).

    ``windows`` is (B, T + 1) real text; late = the last quarter of positions, early = the
    positions from T/16 to T/8 (Olsson et al. 2022 compare token 500 with token 50).
    """
    losses = token_losses(model, windows).mean(0)
    t = losses.numel()
    early = losses[max(1, t // 16) : max(2, t // 8)].mean()
    return float(losses[(3 * t) // 4 :].mean() - early)


SNAPSHOT_SCORES = (
    "previous_token",
    "self_attention",
    "sink",
    "duplicate_token",
    "entropy_normalised",
)


@torch.inference_mode()
def probe_snapshot(model: GPT, text_ids: list[int], windows: torch.Tensor) -> dict:
    """Head scores on a fixed probe, for a run's metrics at every evaluation (cheap)."""
    was_training = model.training
    model.eval()
    run = capture_attention(model, text_ids, [str(i) for i in text_ids])
    scores = all_head_scores(run.weights, text_ids)
    induction, n = induction_probe(model)
    heads = {}
    for s in scores:
        entry = {k: getattr(s, k) for k in SNAPSHOT_SCORES}
        entry["induction"] = float(induction[s.layer, s.head])
        heads[f"L{s.layer}H{s.head}"] = {k: v for k, v in entry.items() if v is not None}
    chance = {**scores[0].chance, "induction": induction_chance(n)}
    snapshot = {
        "heads": heads,
        "chance": {k: chance[k] for k in (*SNAPSHOT_SCORES, "induction") if k in chance},
        "induction_loss": induction_loss(model, n),
        "icl_score": in_context_score(model, windows),
    }
    model.train(was_training)
    return snapshot


ROLE_RULES = {  # snapshot score -> (role, threshold); each also needs CHANCE_MULTIPLE x chance
    "previous_token": ("previous-token", ROLE_THRESHOLD),
    "induction": ("induction", INDUCTION_THRESHOLD),
    "duplicate_token": ("duplicate-token", ROLE_THRESHOLD),
    "sink": ("sink", ROLE_THRESHOLD),
    "self_attention": ("self", ROLE_THRESHOLD),
}


def first_crossings(metrics: list[dict]) -> list[tuple[str, str, int, float]]:
    """(head, role, step, score) for the first evaluation at which each head earns each role."""
    seen: set[tuple[str, str]] = set()
    out = []
    for record in metrics:
        chance = record.get("chance", {})
        for head, scores in record.get("heads", {}).items():
            for key, (role, threshold) in ROLE_RULES.items():
                value = scores.get(key)
                if value is None or (head, role) in seen:
                    continue
                if value >= threshold and value >= CHANCE_MULTIPLE * chance.get(key, 0.0):
                    seen.add((head, role))
                    out.append((head, role, int(record["step"]), float(value)))
    return out


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (nats) between rows of two attention patterns, per row."""
    p, q = p.double(), q.double()
    m = (p + q) / 2

    def kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(
            a > 0, a * (a.clamp_min(1e-300).log() - b.clamp_min(1e-300).log()), torch.zeros_like(a)
        ).sum(-1)

    return (kl(p, m) + kl(q, m)) / 2


def induction_chance(n: int) -> float:
    """The induction score of uniform attention: mean 1/(i+1) over the second copy."""
    return float((1.0 / torch.arange(n + 1, 2 * n + 1, dtype=torch.float64)).mean())


@torch.no_grad()
def copying_scores(model: GPT) -> torch.Tensor:
    """(n_layer, n_head) weights-only copying scores of the OV circuits, in [0, 1].

    A head that copies raises the logit of the token it attends to: its full OV circuit
    M = W_E W_V W_O W_U (vocab x vocab, row-vector convention) has mostly positive eigenvalues.
    M's non-zero eigenvalues are those of the small d_head x d_head product W_O W_U W_E W_V, so
    that is what is computed. The score is the share of eigenvalue magnitude with a positive
    real part (Elhage et al. 2021; Olsson et al. 2022). It ignores LayerNorm and biases.
    """
    cfg = model.config
    d, dh = cfg.n_embd, cfg.head_dim
    w_e = model.wte.weight.double()  # (vocab, d)
    w_u = model.lm_head.weight.double()  # (vocab, d); tied to w_e
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
def direct_copying(model: GPT, run: AttentionRun) -> torch.Tensor:
    """(n_layer, n_head) direct-path copying on the prompt, in logits (Olsson et al. 2022).

    For each query, the head's update to the residual stream is read straight out through the
    unembedding (the final LayerNorm's gain applied as a linear scale; later layers ignored).
    The score is the weight-averaged rise of the logits of the tokens the head attends to,
    relative to the mean logit, averaged over queries: > 0 means the head promotes the tokens
    it looks at.
    """
    cfg = model.config
    dh = cfg.head_dim
    ids = torch.tensor(run.ids)
    w_u = model.lm_head.weight.detach().float().cpu() * model.ln_f.weight.detach().float().cpu()
    out = torch.zeros(cfg.n_layer, cfg.n_head)
    for layer, cap in enumerate(run.captures):
        w_o = model.blocks[layer].attn.c_proj.weight.detach().float().cpu()
        for h in range(cfg.n_head):
            update = cap.head_outputs[0, h] @ w_o[:, h * dh : (h + 1) * dh].T  # (T, d)
            logits = update @ w_u.T  # (T, vocab)
            logits = logits - logits.mean(-1, keepdim=True)
            on_keys = logits[:, ids]  # (T queries, T keys): logit of each key's token
            weights = cap.weights[0, h]
            out[layer, h] = (weights * on_keys).sum(-1)[1:].mean()
    return out


def rollout(weights: torch.Tensor) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020) through all layers of (L, H, T, T) weights.

    Each layer: average the heads, add the identity for the residual connection, renormalise
    rows; then multiply the layers together. Row i says how much token i's final representation
    draws on each input token.
    """
    t = weights.size(-1)
    eye = torch.eye(t, dtype=torch.float64)
    result = eye
    for layer in weights.double():
        a = layer.mean(0) + eye
        a = a / a.sum(-1, keepdim=True)
        result = a @ result
    return result.float()


@dataclass
class Explanation:
    """Attention for one query in one head, step by step, with the model's numbers."""

    layer: int
    head: int
    query: int
    head_dim: int
    q_norm: float
    raw_scores: list[float]  # q · k_j for visible keys j <= query
    scaled_scores: list[float]  # ÷ √d_k
    masked: int  # future keys set to -inf
    weights: list[float]  # softmax
    contributions: list[tuple[int, float, float]]  # (key, weight, ‖weight · v_j‖), largest first
    output_norm: float
    head_shares: list[float]  # ‖W_O[:, head slice] · o_head‖ for every head of the layer
    weights_match_model: bool


def explain(model: GPT, run: AttentionRun, layer: int, head: int, query: int) -> Explanation:
    cap = run.captures[layer]
    q = cap.q[0, head, query].double()
    k = cap.k[0, head, : query + 1].double()
    v = cap.v[0, head, : query + 1].double()
    d = q.numel()
    raw = k @ q
    scaled = raw / math.sqrt(d)
    weights = torch.softmax(scaled, dim=0)
    contrib = weights[:, None] * v
    order = torch.argsort(contrib.norm(dim=-1), descending=True)
    proj = model.blocks[layer].attn.c_proj.weight.detach().double().cpu()
    outputs = cap.head_outputs[0, :, query].double()  # (n_head, head_dim)
    shares = [
        float((proj[:, h * d : (h + 1) * d] @ outputs[h]).norm()) for h in range(outputs.size(0))
    ]
    model_weights = cap.weights[0, head, query, : query + 1].double()
    return Explanation(
        layer=layer,
        head=head,
        query=query,
        head_dim=d,
        q_norm=float(q.norm()),
        raw_scores=raw.tolist(),
        scaled_scores=scaled.tolist(),
        masked=len(run.ids) - query - 1,
        weights=weights.tolist(),
        contributions=[(int(j), float(weights[j]), float(contrib[j].norm())) for j in order],
        output_norm=float(contrib.sum(0).norm()),
        head_shares=shares,
        weights_match_model=bool(torch.allclose(weights, model_weights, atol=1e-5)),
    )


def resolve_query(query: str | None, tokens: list[str]) -> int:
    """A position (negative counts from the end) or a token's text (its last occurrence)."""
    from tinygpt.errors import UsageError

    t = len(tokens)
    if query is None:
        return t - 1
    try:
        pos = int(query)
    except ValueError:
        matches = [i for i, tok in enumerate(tokens) if tok == query or tok.strip() == query]
        if not matches:
            raise UsageError(
                f"--query {query!r} is neither a position nor a token of the prompt"
            ) from None
        return matches[-1]
    if not -t <= pos < t:
        raise UsageError(f"--query {pos} is outside the prompt's {t} tokens")
    return pos % t
