"""Models of mrife: MRIFE, its segmentation branch alone, the DeepLabv3+ baseline and ICSSN.

Every model is a :class:`SegmentationModel` (``base.py``): logits in eval mode, and the
training contract the loop calls (``training_losses``, ``after_step``, ``test_metrics``).
``build_model`` is the registry: a name -> builder dict, fed by keywords or by a run's
configuration.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

from mrife.config import ModelConfig, RunConfig

from .base import SegmentationModel
from .decoder import Decoder
from .deeplabv3plus import DeepLabV3Plus
from .encoder import OUTPUT_STRIDES, Encoder
from .icssn import ICSSN
from .mrife import MRIFE, MRIFEOutput, SegBranch, build_segbranch

MODEL_BUILDERS: dict[str, Callable[..., SegmentationModel]] = {
    "mrife": MRIFE,
    "deeplabv3plus": DeepLabV3Plus,
    "segbranch": build_segbranch,
    "icssn": ICSSN,
}
MODEL_NAMES = tuple(MODEL_BUILDERS)

# Builder keyword -> the RunConfig key outside the `model` section that feeds it (the
# models that mask own their mask module and weigh their own loss terms; every model
# takes as many input channels as the data has bands).
OTHER_SECTIONS = {
    "bands": "data.bands",
    "mask_strategy": "mask.strategy", "mask_ratio": "mask.ratio", "mask_block": "mask.block",
    "alpha": "loss.alpha", "beta": "loss.beta", "gamma": "loss.gamma", "temperature": "loss.temperature",
    "sfce_reduction": "loss.sfce_reduction",
}


def build_model(spec: str | ModelConfig | RunConfig, **overrides: Any) -> SegmentationModel:
    """Build a model by name ("mrife", "deeplabv3plus", "segbranch", "icssn") or from a configuration.

    From a :class:`~mrife.config.RunConfig`, the builder gets the fields of its ``model``
    section and the ``mask`` and ``loss`` fields it takes (``OTHER_SECTIONS``); from a
    :class:`~mrife.config.ModelConfig`, the ``model`` fields alone. A field the chosen
    model does not take must hold its default: otherwise the setting would do nothing,
    and that is an error. ``overrides`` are builder keywords and win over the config.

    Raises:
        KeyError: unknown name (the message lists the valid ones).
        TypeError: unknown keyword (the message lists the valid ones).
        ValueError: a config field set away from its default that the model does not use.
    """
    name, fields = (spec, {}) if isinstance(spec, str) else (_name(spec), config_keywords(spec))
    key = str(name).lower()
    if key not in MODEL_BUILDERS:
        raise KeyError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}")
    builder = MODEL_BUILDERS[key]
    valid = tuple(inspect.signature(builder).parameters)
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise TypeError(f"model {key!r} takes no keyword {unknown}; valid keywords: {', '.join(valid)}")
    unused = {k: v for k, v in fields.items() if k not in valid}
    for keyword, (value, default, config_key) in unused.items():
        if value != default:
            raise ValueError(f"{config_key}={value!r} is not used by model {key!r} (it would change nothing); "
                             f"leave it at {default!r} or choose a model that uses it")
    kwargs = {k: value for k, (value, _, _) in fields.items() if k in valid}
    return builder(**{**kwargs, **overrides})


def config_keywords(cfg: ModelConfig | RunConfig) -> dict[str, tuple[Any, Any, str]]:
    """Builder keyword -> ``(value, default, config key)`` for every field a configuration sets."""
    model = cfg.model if isinstance(cfg, RunConfig) else cfg
    out = {f.name: (getattr(model, f.name), f.default, f"model.{f.name}")
           for f in dataclasses.fields(model) if f.name != "name"}
    if isinstance(cfg, RunConfig):
        for keyword, config_key in OTHER_SECTIONS.items():
            section, field = config_key.split(".")
            default = {f.name: f.default for f in dataclasses.fields(getattr(cfg, section))}[field]
            out[keyword] = (getattr(getattr(cfg, section), field), default, config_key)
    return out


def _name(cfg: ModelConfig | RunConfig) -> str:
    if isinstance(cfg, RunConfig):
        return cfg.model.name
    if isinstance(cfg, ModelConfig):
        return cfg.name
    raise TypeError(f"build_model takes a model name, a ModelConfig or a RunConfig, got {type(cfg).__name__}")


__all__ = [
    "SegmentationModel",
    "Encoder",
    "Decoder",
    "SegBranch",
    "DeepLabV3Plus",
    "MRIFE",
    "MRIFEOutput",
    "ICSSN",
    "build_model",
    "build_segbranch",
    "config_keywords",
    "MODEL_NAMES",
    "MODEL_BUILDERS",
    "OUTPUT_STRIDES",
]
