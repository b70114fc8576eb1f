"""What a model is made of, for reading it against the paper's figures: its parameters
part by part, and the shape each chosen module returns on one forward pass."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn


def parameter_count(module: nn.Module, trainable_only: bool = False) -> int:
    """How many parameters ``module`` holds (only those with ``requires_grad`` when
    ``trainable_only``: MRIFE's teacher is not trained by the optimizer)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def parameter_table(parts: dict[str, nn.Module]) -> pd.DataFrame:
    """:func:`parameter_count` of each named part: columns ``parameters`` and ``trained by
    SGD`` (those with ``requires_grad``), indexed by name."""
    return pd.DataFrame({name: {"parameters": parameter_count(m), "trained by SGD": parameter_count(m, True)}
                         for name, m in parts.items()}).T


@torch.no_grad()
def trace_shapes(model: nn.Module, watched: dict[str, str], *inputs: torch.Tensor) -> tuple[pd.DataFrame, object]:
    """Run ``model(*inputs)`` once and record what each watched module received and returned.

    Args:
        watched: qualified module name (as ``model.named_modules()`` gives it) -> what the
            paper calls it.
        inputs: the forward's arguments; the first is the image ``[B, C, H, W]``.

    Returns:
        The table, one row per call of a watched module in call order (``module``,
        ``input`` and ``output`` shapes, ``stride``: the image's width over the output's,
        "" when the output is wider; ``paper``), and what the forward returned.

    Raises:
        KeyError: a watched name is not a module of ``model`` (the message lists a few).
    """
    modules = dict(model.named_modules())
    unknown = [name for name in watched if name not in modules]
    if unknown:
        raise KeyError(f"no module {unknown} in {type(model).__name__}; e.g. {list(modules)[1:8]}")
    width = inputs[0].shape[-1]
    rows = []

    def record(name):
        def hook(module, args, output):
            rows.append({"module": name, "input": " + ".join(str(tuple(a.shape)) for a in args if torch.is_tensor(a)),
                         "output": str(tuple(output.shape)), "stride": width // output.shape[-1] or "",
                         "paper": watched[name]})
        return hook

    handles = [modules[name].register_forward_hook(record(name)) for name in watched]
    try:
        output = model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return pd.DataFrame(rows), output
