"""Models of mrife: MRIFE, its segmentation branch alone, the DeepLabv3+ baseline and ICSSN.

Every model is a :class:`SegmentationModel` (``base.py``): logits in eval mode, the
configuration keys it reads and ``from_config``, its Grad-CAM layers, and the training
contract the loop calls (``training_losses``, ``after_step``, ``test_metrics``). Every
model builds its encoders from one :class:`EncoderSpec` (``encoder.py``). ``build_model``
is the registry: a name -> model class dict, fed by keywords or by a run's configuration.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from mrife.config import ModelConfig, RunConfig

from .base import SegmentationModel
from .decoder import Decoder
from .deeplabv3plus import DeepLabV3Plus
from .encoder import OUTPUT_STRIDES, Encoder, EncoderSpec
from .icssn import ICSSN
from .mrife import MRIFE, MRIFEOutput, SegBranch, build_segbranch

# name -> the model's class: build_model calls its from_config.
MODEL_BUILDERS: dict[str, type[SegmentationModel]] = {
    "mrife": MRIFE,
    "deeplabv3plus": DeepLabV3Plus,
    "segbranch": SegBranch,
    "icssn": ICSSN,
}
MODEL_NAMES = tuple(MODEL_BUILDERS)

# The sections that configure the model alone: a field of one that the chosen model does
# not read must hold its default, or the setting would change nothing.
MODEL_SECTIONS = ("model", "mask", "loss")


def keyword(config_key: str) -> str:
    """The ``build_model`` keyword of a configuration key: the field's name (``model.fusion``
    -> ``fusion``, ``loss.alpha`` -> ``alpha``, ``data.bands`` -> ``bands``), after ``mask_``
    in the mask section (``mask.ratio`` -> ``mask_ratio``: "ratio" alone would not say of what)."""
    section, field = config_key.split(".")
    return f"mask_{field}" if section == "mask" else field


def build_model(spec: str | ModelConfig | RunConfig, **overrides: Any) -> SegmentationModel:
    """Build a model by name ("mrife", "deeplabv3plus", "segbranch", "icssn") or from a configuration.

    By name, every setting is the model's default and the encoder's is
    :class:`EncoderSpec`'s (resnet18, no download). From a :class:`~mrife.config.RunConfig`
    the model reads the keys it lists in ``config_keys``; from a
    :class:`~mrife.config.ModelConfig`, the ``model`` section with every other at its
    default. A setting of the ``model``, ``mask`` or ``loss`` section that the chosen model
    does not read must hold its default: otherwise it would change nothing, and that is an
    error. ``overrides`` are the short names of the keys the model reads (:func:`keyword`:
    ``backbone``, ``mask_ratio``, ``alpha``, ...) and win over the configuration.

    Raises:
        KeyError: unknown name (the message lists the valid ones).
        TypeError: unknown keyword (the message lists the valid ones), or a registered
            model without ``from_config``.
        ValueError: a config field set away from its default that the model does not use.
    """
    cfg = _run_config(spec)
    key = cfg.model.name.lower()
    if key not in MODEL_BUILDERS:
        raise KeyError(f"unknown model {cfg.model.name!r}; valid names: {', '.join(MODEL_NAMES)}")
    model = MODEL_BUILDERS[key]
    if not callable(getattr(model, "from_config", None)):
        raise TypeError(f"model {key!r} ({model.__name__}) does not say how to build it from a configuration: "
                        "give it a classmethod from_config(cfg) and list the keys it reads in config_keys")
    valid = {keyword(k): k for k in model.config_keys}
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise TypeError(f"model {key!r} takes no keyword {unknown}; valid keywords: {', '.join(valid)}")
    if not isinstance(spec, str):
        _check_unread(cfg, model.config_keys, key)
    for name, value in overrides.items():
        _set(cfg, valid[name], value)
    return model.from_config(cfg)


def _run_config(spec: str | ModelConfig | RunConfig) -> RunConfig:
    """A copy of ``spec`` as a whole run's configuration, to read and override."""
    if isinstance(spec, str):
        cfg, encoder = RunConfig(model=ModelConfig(name=spec)), EncoderSpec()
        for field, config_key in EncoderSpec.config_keys.items():
            _set(cfg, config_key, getattr(encoder, field))  # the spec's defaults, not the paper's
        return cfg
    if isinstance(spec, RunConfig):
        return copy.deepcopy(spec)
    if isinstance(spec, ModelConfig):
        return RunConfig(model=copy.deepcopy(spec))
    raise TypeError(f"build_model takes a model name, a ModelConfig or a RunConfig, got {type(spec).__name__}")


def _check_unread(cfg: RunConfig, read: tuple[str, ...], name: str) -> None:
    """ValueError naming the first field of :data:`MODEL_SECTIONS` set away from its default
    that model ``name`` does not read."""
    for section in MODEL_SECTIONS:
        for field in dataclasses.fields(getattr(cfg, section)):
            config_key = f"{section}.{field.name}"
            value = getattr(getattr(cfg, section), field.name)
            if config_key != "model.name" and config_key not in read and value != field.default:
                raise ValueError(f"{config_key}={value!r} is not used by model {name!r} (it would change nothing); "
                                 f"leave it at {field.default!r} or choose a model that uses it")


def _set(cfg: RunConfig, config_key: str, value: Any) -> None:
    section, field = config_key.split(".")
    setattr(getattr(cfg, section), field, value)


__all__ = [
    "SegmentationModel",
    "Encoder",
    "EncoderSpec",
    "Decoder",
    "SegBranch",
    "DeepLabV3Plus",
    "MRIFE",
    "MRIFEOutput",
    "ICSSN",
    "build_model",
    "build_segbranch",
    "keyword",
    "MODEL_NAMES",
    "MODEL_BUILDERS",
    "OUTPUT_STRIDES",
]
