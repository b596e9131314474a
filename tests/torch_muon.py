"""torch's own Muon with tinygpt's update as its step: what test_recipe and test_gpu compare
tinygpt's optimizer against (kept out of conftest, which pytest-xdist's controller loads
without needing torch)."""

from __future__ import annotations

from typing import Any

import torch

from tinygpt.training.muon import update as muon_update


class Muon(torch.optim.Muon):
    """torch's Muon with tinygpt's update as its step, to compare the two (tinygpt's one
    optimizer calls the update directly)."""

    def __init__(
        self,
        params: Any,
        *,
        batched: bool,
        ns_dtype: torch.dtype,
        normuon_beta2: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, **kwargs)
        self.batched = batched
        self.ns_dtype = ns_dtype
        for group in self.param_groups:  # tinygpt's one group entry beyond torch's
            group["normuon_beta2"] = normuon_beta2

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                muon_update(group, params, self.state, self.batched, self.ns_dtype)
        return loss
