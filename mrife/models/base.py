"""The contract every model of mrife implements: how it is built, what Grad-CAM reads,
and how it trains.

How a model is built and explained (every model of the registry,
:data:`mrife.models.MODEL_BUILDERS`, defines these; the base class does not, so a model
without them fails where they are needed, with a message that says so):

- ``config_keys``: the configuration keys it reads (``"model.fusion"``, ``"mask.ratio"``,
  ...; its encoder's, :attr:`EncoderSpec.config_keys <mrife.models.encoder.EncoderSpec>`,
  among them). :func:`mrife.models.build_model` takes their short names as keywords and
  rejects a setting of the ``model``, ``mask`` or ``loss`` section the model does not read;
- ``from_config(cfg)`` (a classmethod): the model of a :class:`~mrife.config.RunConfig`,
  read from its ``config_keys`` alone; what :func:`~mrife.models.build_model` calls;
- ``cam_layers()``: layer name -> the module whose output ``[B, C, h, w]`` Grad-CAM explains
  (:func:`mrife.cam.cam`), the default layer first; a model defined outside the registry
  needs only this one to get Grad-CAM and the figure data.

The training loop (:func:`mrife.train.fit`) knows a model through these methods and
nothing else:

- ``training_losses(images, masks, step, generator)``: one forward pass in training
  mode and every loss term, ``{"loss": ..., "ce": ..., ...}`` (``loss`` is what is
  backpropagated; each term is logged per epoch);
- ``after_step()``: called after each optimizer step (MRIFE: the teacher's EMA update);
- ``test_metrics(loader)``: metrics beyond the pixel metrics, added to the test results
  (ICSSN: its object-level classification);
- ``test_ablations()``: parts of the model to switch off for one more test pass each,
  scored like the whole model (MRIFE: its enhancement branch);
- ``trainable_parameters()``: what the optimizer updates;
- ``batch_split``: how the batch's loss can be shared out among processes.

A model whose only loss is cross-entropy (the segmentation branch, DeepLabv3+) needs
none of them: the defaults below are its whole training behaviour. A model that draws
random numbers during training (the mask module) takes them from ``generator``, which
the loop seeds per epoch, so a resumed run repeats an uninterrupted one's draws.
"""

from __future__ import annotations

import contextlib
from typing import Iterable

import torch
from torch import Tensor, nn

from mrife.losses import joint_loss


class SegmentationModel(nn.Module):
    """Images ``[B, bands, H, W]`` -> logits ``[B, 2, H, W]`` in eval mode, plus the contract above."""

    #: How a batch's loss splits over processes (:mod:`mrife.distributed`): ``"images"``
    #: (terms over single images: any share of the batch), ``"pairs"`` (over the image
    #: pairs (0, 1), (2, 3), ...: shares of an even size), or ``None`` (terms that compare
    #: every image of the batch with every other: one process only).
    batch_split: str | None = "images"
    #: The configuration keys the model reads (``"model.dropout"``, ...), its encoder's among them.
    config_keys: tuple[str, ...] = ()

    def training_losses(self, images: Tensor, masks: Tensor, step: int,
                        generator: torch.Generator) -> dict[str, Tensor]:
        """Every loss term of one training batch.

        Args:
            images: ``[B, 3, H, W]`` normalized images.
            masks: int64 ``[B, H, W]`` labels in {0, 1}.
            step: global optimizer step (0-based) of this batch.
            generator: CPU generator for the step's random draws.

        Returns:
            Scalars ``{"loss", "ce", ...}``; the default is cross-entropy alone, reported
            with MRIFE's auxiliary terms at 0 so that every model's history has them.
        """
        return joint_loss(self(images), masks)

    def after_step(self) -> None:
        """Called after each optimizer step; nothing by default."""

    def test_metrics(self, loader: Iterable[dict]) -> dict[str, float]:
        """Metrics beyond the pixel metrics on the test ``loader``; none by default."""
        return {}

    def test_ablations(self) -> dict[str, contextlib.AbstractContextManager]:
        """Name -> a context in which the model computes without one of its parts; the loop
        scores the best checkpoint on the test split inside each, beside the whole model,
        and writes its pixel metrics as ``<name>_<metric>``. None by default."""
        return {}

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters the optimizer updates: those that take a gradient."""
        return [p for p in self.parameters() if p.requires_grad]
