"""``tinygpt doctor``: what tinygpt will use on this machine, and proof the device is right."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from tinygpt.cli.app import command
from tinygpt.cli.common import DEVICE_DEFAULT, DeviceOpt, JsonOpt
from tinygpt.config.train import TrainConfig
from tinygpt.errors import TinyGPTError
from tinygpt.io.console import stdout_console


@command("doctor")
def doctor(
    device: DeviceOpt = DEVICE_DEFAULT,
    dtype: Annotated[
        str, typer.Option(help="Precision to prove: auto, float32, bfloat16, float16.")
    ] = TrainConfig.dtype,
    json_out: JsonOpt = False,
) -> None:
    """What tinygpt will use here (device and why, precision, compile, caches), and proof that
    the device computes what the CPU computes, with tokens/s for training and sampling."""
    import torch
    from rich.table import Table

    from tinygpt.doctor.machine import facts
    from tinygpt.doctor.proof import prove, speed
    from tinygpt.model.device import resolve_device, resolve_dtype

    where = resolve_device(device)
    precision = resolve_dtype(dtype, where)
    found = facts(where, dtype)
    checks = prove(where, precision)
    rates = speed(where, precision)
    wrong = [c for c in checks if not c.ok]
    if json_out:
        typer.echo(json.dumps({
            "facts": [vars(f) for f in found],
            "checks": [{**vars(c), "ok": c.ok} for c in checks],
            "tokens_per_sec": rates,
            "ok": not wrong,
        }))  # fmt: skip
    else:
        console = stdout_console()
        table = Table(title="What tinygpt will use here", show_header=False)
        for f in found:
            table.add_row(f.name, f.value, f.note)
        console.print(table)
        title = f"{where.type} ({str(precision)[6:]}) against the CPU (float32)"
        proof = Table("computed", "largest difference", "tolerance", "", title=title)
        for c in checks:
            proof.add_row(
                c.name, f"{c.difference:.3g}", f"{c.tolerance:.3g}", "ok" if c.ok else "WRONG"
            )
        console.print(proof)
        console.print(
            f"speed on {where.type}: {rates['train']:,.0f} training tokens/s, "
            f"{rates['sample']:,.0f} sampled tokens/s (the default 4x128 model)"
        )
    if wrong:
        fix = "--device cpu"
        if precision != torch.float32 and all(c.ok for c in prove(where, torch.float32)):
            fix = "--dtype float32"
        first = wrong[0]
        raise TinyGPTError(
            f"{where.type} computes different numbers from the CPU ({first.name}: "
            f"{first.difference:.3g}, tolerance {first.tolerance:.3g}); pass {fix}"
        )
