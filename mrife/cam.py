"""Grad-CAM heat maps of the models (paper Figs. 5, 7, 8), computed with pytorch-grad-cam.

Grad-CAM weighs each channel of a layer's output by the mean gradient of a score with
respect to it, sums the weighted channels, keeps the positive part and scales the map to
[0, 1] per image. Here the score is the landslide logit summed over a set of pixels (the
predicted landslide pixels by default, or the label's), so the map shows which parts of
a layer's feature map raise the model's belief that those pixels are landslide.

Each model names the layers to look at (``model.cam_layers()``, the contract of
:mod:`mrife.models.base`):

- ``mrife``: ``"fused"`` (the fusion output, what the decoder reads), ``"segmentation"``
  (the segmentation encoder's output, before fusion), ``"enhancement"`` (the teacher's
  output: the enhancement branch at test time);
- ``deeplabv3plus`` (smp's DeepLabV3Plus, ``m.net``): ``"aspp"`` (smp's ASPP stage,
  ``decoder.aspp``: the ASPP output at the output stride, the layer that matches the other
  models' encoder outputs) and ``"decoder"`` (``decoder.block2``, its stride-4 fusion
  block, just before the segmentation head);
- ``icssn`` and ``segbranch``: ``"encoder"`` (backbone + ASPP + SE output).

Example:
    >>> heat = cam(model, images, "enhancement", target_mask=masks)   # [B, H, W] in [0, 1]
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pandas as pd
import torch
from pytorch_grad_cam import GradCAM
from torch import Tensor, nn

from mrife.masking import BACKGROUND, CLASS_NAMES, EDGE, INTERIOR, classify_blocks

LANDSLIDE = 1  # class index of the landslide logit


def cam_layers(model: nn.Module) -> dict[str, nn.Module]:
    """``model.cam_layers()``: layer name -> module, the default first (the model contract,
    :mod:`mrife.models.base`).

    Raises:
        TypeError: the model names no layers (the message says what to pass instead).
    """
    if not callable(getattr(model, "cam_layers", None)):
        raise TypeError(f"{type(model).__name__} names no Grad-CAM layers (a mrife model's cam_layers()); "
                        "pass the target layer module itself as `layer`")
    return model.cam_layers()


def target_layer(model: nn.Module, layer: str | nn.Module | None = None) -> nn.Module:
    """The module to explain: a name of ``model.cam_layers()``, a module, or ``None`` (the default)."""
    if isinstance(layer, nn.Module):
        return layer
    named = cam_layers(model)
    if layer is None:
        return next(iter(named.values()))
    if layer not in named:
        raise KeyError(f"{type(model).__name__} has no Grad-CAM layer {layer!r}; valid: {', '.join(named)}")
    return named[layer]


class Logits(nn.Module):
    """``model`` with a forward that returns the logits tensor ``[B, K, H, W]`` alone.

    pytorch-grad-cam scores the forward's output directly; a model returning a named
    tuple with ``logits`` (MRIFE in training mode) or a tuple (logits first) is unwrapped.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        if isinstance(out, Tensor):
            return out
        if hasattr(out, "logits"):
            return out.logits
        return out[0]


class LandslideTarget:
    """Grad-CAM score of one image: the landslide logit summed over the pixels of ``mask``.

    ``mask`` is ``[H, W]`` in {0, 1}; the model output it scores is ``[K, H, W]``. An empty
    mask scores 0 (zero gradient: a blank heat map).
    """

    def __init__(self, mask: Tensor, category: int = LANDSLIDE):
        self.mask = mask.float()
        self.category = category

    def __call__(self, output: Tensor) -> Tensor:
        return (output[self.category] * self.mask.to(output.device)).sum()  # [H, W] -> scalar


@contextmanager
def gradients_enabled(model: nn.Module) -> Iterator[nn.Module]:
    """Let every parameter of ``model`` take a gradient inside the block, then restore.

    MRIFE's teacher has ``requires_grad=False`` (it follows the student by EMA), so its
    output carries no graph and pytorch-grad-cam could not hook its gradient. Inside the
    block every parameter requires a gradient and autograd is on; on exit each flag is
    set back and the gradients Grad-CAM accumulated are dropped (``.grad = None``).
    """
    frozen = [p for p in model.parameters() if not p.requires_grad]
    for p in frozen:
        p.requires_grad_(True)
    try:
        with torch.enable_grad():
            yield model
    finally:
        for p in frozen:
            p.requires_grad_(False)
        model.zero_grad(set_to_none=True)


def cam(model: nn.Module, images: Tensor, layer: str | nn.Module | None = None,
        target_mask: Tensor | None = None) -> Tensor:
    """Grad-CAM heat maps of ``layer`` of ``model`` for the landslide class.

    Args:
        model: a model of :mod:`mrife.models` (run in eval mode here; its mode is restored).
        images: normalized images ``[B, 3, H, W]``.
        layer: a name of ``model.cam_layers()``, a module of the model, or ``None``
            for the model's default layer (MRIFE "fused", DeepLabv3+ "aspp", ICSSN and the
            segmentation branch "encoder").
        target_mask: ``[B, H, W]`` in {0, 1}, the pixels whose landslide logit is scored
            (e.g. the labels); ``None`` scores the pixels the model predicts as landslide.

    Returns:
        float32 ``[B, H, W]`` in [0, 1] on the CPU, each image's map scaled to its own
        maximum (all zero where the score does not depend on the layer, e.g. an empty mask).
    """
    if images.ndim != 4:
        raise ValueError(f"cam expects images [B, 3, H, W], got shape {tuple(images.shape)}")
    module = target_layer(model, layer)
    was_training = model.training
    wrapped = Logits(model)
    try:
        wrapped.eval()
        if target_mask is None:
            with torch.no_grad():
                device = next(model.parameters()).device
                target_mask = wrapped(images.to(device)).argmax(1) == LANDSLIDE  # [B, H, W]
        if target_mask.shape != (images.shape[0], *images.shape[-2:]):
            raise ValueError(
                f"target_mask {tuple(target_mask.shape)} must be [B, H, W] = "
                f"{(images.shape[0], *images.shape[-2:])}, one mask per image"
            )
        targets = [LandslideTarget(m) for m in target_mask]
        with gradients_enabled(model):
            grad_cam = GradCAM(model=wrapped, target_layers=[module])
            try:
                heat = grad_cam(input_tensor=images, targets=targets)  # numpy [B, H, W]
            finally:
                grad_cam.activations_and_grads.release()  # remove the hooks, even on error
    finally:
        model.train(was_training)
    return torch.from_numpy(heat).float().clamp_(0, 1)


def heat_by_block_class(maps: dict[str, Tensor], masks: Tensor, block: int = 8) -> pd.DataFrame:
    """Mean heat on the pixels of background, edge and interior blocks (the mask module's
    classes, :func:`mrife.masking.classify_blocks`), for each map: "looks at the edges" as
    a number.

    Args:
        maps: name -> heat maps ``[N, H, W]`` of :func:`cam` on the tiles of ``masks``.
        masks: the tiles' labels ``[N, H, W]``.
        block: block size in pixels (the model's output stride).

    Returns:
        A DataFrame indexed by map name, columns ``background``, ``edge``, ``interior``
        (NaN where the tiles hold no block of a class).
    """
    pixel_class = classify_blocks(masks, block).repeat_interleave(block, 1).repeat_interleave(block, 2)  # [N, H, W]
    return pd.DataFrame({name: {CLASS_NAMES[k]: float(m[pixel_class == k].mean()) if (pixel_class == k).any()
                                else float("nan") for k in (BACKGROUND, EDGE, INTERIOR)}
                         for name, m in maps.items()}).T
