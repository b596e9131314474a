"""How the command line names an option in a message: as the flag of the command that raised it
(``Opt("out_dir", "x")`` reads ``--out x`` under ``train``); a name the command
has no parameter for reads as the flag another command gives it (``n_embd`` -> ``--n-embd``),
and a field that only a config file sets as that file's field (``the config file's beta2``).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from tinygpt.config.model import ModelConfig
from tinygpt.config.train import TrainConfig
from tinygpt.errors import ANY, Opt, Spell

# The placeholder of an option shown without its value (``--out DIR``).
_METAVARS = {"out_dir": "DIR"}
# Fields no command has a flag for (a flag is generated from a documented field's help);
# data and out_dir are train's FILE and --out, declared by hand.
_CONFIG_ONLY = {
    f.name for cls in (TrainConfig, ModelConfig) for f in fields(cls) if "help" not in f.metadata
} - {"data", "out_dir"}


def command_spelling(command: Any) -> Spell:
    """The spelling of options as the flags of ``command`` (a Typer/click command, or None)."""
    options = [p for p in getattr(command, "params", ()) if p.param_type_name == "option"]
    params = {p.name: p for p in options}
    arguments = {p.name: p for p in getattr(command, "params", ()) if p not in options}

    def spell(opt: Opt) -> str:
        param = params.get(opt.name)
        if param is None and opt.name in arguments:  # a positional: its name in the usage line
            return arguments[opt.name].metavar or opt.name.upper()
        if param is None and opt.name in _CONFIG_ONLY:
            shown = opt.value is not None and opt.value is not ANY
            return "the config file's " + (f"{opt.name} = {opt.value!r}" if shown else opt.name)
        flag = param.opts[0] if param else "--" + opt.name.replace("_", "-")
        if isinstance(opt.value, bool):  # a switch: --resume, --bias / --no-bias
            if opt.value or param is None or not param.secondary_opts:
                return flag if opt.value else f"--no-{flag[2:]}"
            return param.secondary_opts[0]
        if opt.value is None:
            return flag
        if opt.value is ANY:
            return f"{flag} {_METAVARS.get(opt.name, 'VALUE')}"
        return f"{flag} {opt.value}"

    return spell
