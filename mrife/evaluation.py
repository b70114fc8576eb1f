"""A model scored on the tiles of a loader: its metrics pooled over every pixel
(:func:`evaluate`), one confusion matrix per scene (:func:`confusion_by_scene`), and what
training scores among several processes (:mod:`mrife.distributed`): :func:`validate` after
each epoch, :func:`scored_confusions` and :func:`ablation_metrics` on the test split.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from mrife.compute import Compute
from mrife.distributed import Ranks
from mrife.metrics import ConfusionMatrix, ScoreHistogram
from mrife.models import SegmentationModel
from mrife.progress import tqdm


@torch.no_grad()
def evaluate(model, loader: DataLoader, compute: Compute | None = None, progress: bool = False) -> dict[str, float]:
    """Metrics of ``model`` (eval mode) pooled over every pixel of ``loader``.

    ``compute`` gives the device and precision (default: fp32 on the model's device).
    """
    compute = compute or Compute(next(model.parameters()).device)
    model.eval()
    cm = ConfusionMatrix()
    for batch in tqdm(loader, desc="evaluate", leave=False, disable=not progress):
        images, masks = compute.inputs(batch)
        with compute.autocast():
            logits = model(images)
        cm.update(logits, masks)
    return cm.compute()


@torch.no_grad()
def confusion_by_scene(model, loader: DataLoader, compute: Compute | None = None,
                       scores: ScoreHistogram | None = None) -> dict[str, ConfusionMatrix]:
    """One confusion matrix per scene of ``loader`` (``model`` in eval mode).

    Pooling them gives :func:`evaluate`'s numbers; kept apart, they let
    :func:`mrife.metrics.scene_bootstrap` resample the scenes. ``fit`` writes them to a
    finished run's ``test_confusions.json``. ``scores``, when given, also receives every
    pixel's landslide probability (for the threshold-free average precision).
    """
    compute = compute or Compute(next(model.parameters()).device)
    model.eval()
    per_scene: dict[str, ConfusionMatrix] = {}
    for batch in loader:
        images, _ = compute.inputs(batch)
        with compute.autocast():
            logits = model(images)
        pred = logits.argmax(1).cpu()  # [B, H, W]
        if scores is not None:
            scores.update(logits, batch["mask"])
        for i, scene in enumerate(batch["scene"]):
            per_scene.setdefault(scene, ConfusionMatrix()).update(pred[i], batch["mask"][i])
    return per_scene


def scored_confusions(model, loader: DataLoader, compute: Compute, ranks: Ranks = Ranks()) -> dict[str, ConfusionMatrix]:
    """:func:`confusion_by_scene` over the tiles of every rank (each scores its share)."""
    return _gathered(ranks, confusion_by_scene(model, loader, compute))


def validate(model, loader: DataLoader, compute: Compute, ranks: Ranks = Ranks()) -> dict[str, float]:
    """The metrics of :func:`evaluate`, pooled over every rank's tiles, and ``AP``: the
    average precision of the landslide probability (threshold-free; NaN when the tiles
    hold no landslide pixel)."""
    scores = ScoreHistogram()
    per_scene = confusion_by_scene(model, loader, compute, scores)
    merged = ScoreHistogram()
    for part in ranks.gather_objects(scores):
        merged.merge(part)
    return ConfusionMatrix.pooled(_gathered(ranks, per_scene).values()).compute() | {"AP": merged.average_precision()}


def _gathered(ranks: Ranks, per_scene: dict[str, ConfusionMatrix]) -> dict[str, ConfusionMatrix]:
    """Every rank's per-scene matrices, a scene's parts added together."""
    merged: dict[str, ConfusionMatrix] = {}
    for part in ranks.gather_objects(per_scene):
        for scene, cm in part.items():
            merged[scene] = ConfusionMatrix.pooled([merged[scene], cm]) if scene in merged else cm
    return merged


def ablation_metrics(model: SegmentationModel, loader: DataLoader, compute: Compute,
                     ranks: Ranks = Ranks()) -> dict[str, float]:
    """``{"<ablation>_<metric>": value}``: the pooled pixel metrics of ``model`` inside
    each of its :meth:`~mrife.models.SegmentationModel.test_ablations` (MRIFE:
    ``enhancement_off_lIoU``, ...); empty for a model that names none."""
    out = {}
    for name, switched_off in model.test_ablations().items():
        with switched_off:
            metrics = ConfusionMatrix.pooled(scored_confusions(model, loader, compute, ranks).values()).compute()
        out |= {f"{name}_{metric}": value for metric, value in metrics.items()}
    return out
