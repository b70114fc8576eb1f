"""Models of mrife: MRIFE, its segmentation branch alone, the DeepLabv3+ baseline and ICSSN.

`build_model(name_or_config, **overrides)` is the registry: a name -> builder dict.
Defaults are the paper's design (fusion "add", EMA decay 0.996, block 8) on the
small CPU backbone resnet18; the paper profile passes backbone="resnet101".
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Mapping

from torch import nn

from .decoder import Decoder
from .deeplabv3plus import DeepLabV3Plus
from .encoder import Encoder
from .icssn import ICSSN
from .mrife import MRIFE, MRIFEOutput, SegBranch, build_segbranch

MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mrife": MRIFE,
    "deeplabv3plus": DeepLabV3Plus,
    "segbranch": build_segbranch,
    "icssn": ICSSN,
}
MODEL_NAMES = tuple(MODEL_BUILDERS)


def _keywords(builder: Callable[..., nn.Module]) -> tuple[str, ...]:
    return tuple(inspect.signature(builder).parameters)


def _config_fields(config: Any) -> dict[str, Any]:
    """A config's fields as a dict: a Mapping, a dataclass instance or a plain object."""
    if isinstance(config, Mapping):
        return dict(config)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    if hasattr(config, "__dict__"):
        return dict(vars(config))
    raise TypeError(f"build_model takes a model name or a config with a 'name' field, got {config!r}")


def build_model(name_or_config: Any, **overrides: Any) -> nn.Module:
    """Build a model by name ("mrife", "deeplabv3plus", "segbranch", "icssn") or from a config.

    A config (dict, dataclass or object) holds `name` and keyword fields. Since one
    config class may serve every model, a field that another model takes (e.g.
    `fusion` when building "deeplabv3plus") is left out; a field no model takes is
    an error. `overrides` must be keywords of the chosen builder (they win over
    the config's fields).

    Raises:
        KeyError: unknown name (the message lists the valid ones).
        TypeError: unknown keyword (the message lists the valid ones).
    """
    if isinstance(name_or_config, str):
        name, fields = name_or_config, {}
    else:
        fields = _config_fields(name_or_config)
        if "name" not in fields:
            raise TypeError(f"model config has no 'name' field (one of {MODEL_NAMES}): {name_or_config!r}")
        name = fields.pop("name")
    key = str(name).lower()
    if key not in MODEL_BUILDERS:
        raise KeyError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}")
    builder = MODEL_BUILDERS[key]
    valid = _keywords(builder)
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise TypeError(f"model {key!r} takes no keyword {unknown}; valid keywords: {', '.join(valid)}")
    any_model = {k for b in MODEL_BUILDERS.values() for k in _keywords(b)}
    stray = sorted(set(fields) - any_model)
    if stray:
        raise TypeError(f"model config fields {stray} belong to no model; valid fields: {', '.join(sorted(any_model))}")
    kwargs = {k: v for k, v in fields.items() if k in valid}
    return builder(**{**kwargs, **overrides})


__all__ = [
    "Encoder",
    "Decoder",
    "SegBranch",
    "DeepLabV3Plus",
    "MRIFE",
    "MRIFEOutput",
    "ICSSN",
    "build_model",
    "build_segbranch",
    "MODEL_NAMES",
    "MODEL_BUILDERS",
]
