"""ICSSN, the comparator in the middle row of Table III: a RE-IMPLEMENTATION from its published description.

Lu et al., "An iterative classification and semantic segmentation network for old
landslide detection using high-resolution remote sensing images", IEEE TGRS 2023
(arXiv 2302.12420). This is NOT the authors' code (none is public): it is built from
what the ICSSN abstract states (``NOTES.md``, section ICSSN). One feature extractor
(the same backbone + ASPP + SE `Encoder` as MRIFE) is shared by

- an object classification network: landslide / non-landslide per image, trained as a
  siamese network (two augmented views through the one extractor) with object-level
  contrastive learning between images plus classification cross-entropy;
- a semantic segmentation network (the same transposed-convolution `Decoder`) with
  sub-object-level contrastive learning on feature points at landslide boundaries
  plus segmentation cross-entropy;

and the two are trained iteratively (alternating phases), both updating the extractor.
The test-time prediction is the segmentation network's output.

What the description leaves open, and what this re-implementation chose:

- Backbone: ResNet101 in ICSSN. Chosen: the run's ``model.backbone`` (resnet101 in the
  paper profile, resnet18 in the cpu profile, resnet10t in the smoke profile, as for
  every model).
- Image label: "landslide / non-landslide". Chosen: 1 when the mask holds any landslide pixel.
- Classification head: not described. Chosen: global average pooling of the shared
  features ``[B, C, h, w] -> [B, C]`` (C = ``model.channels``, 256), dropout, one
  linear layer -> 2 logits.
- Siamese views: augmentations not described. Chosen: two random views of each image,
  made on the normalized batch tensor: horizontal / vertical flips (p = 1/2 each),
  k quarter turns (k uniform in 0..3, square inputs only), contrast x U(0.8, 1.2) per
  image and a shift U(-0.2, 0.2) per channel (normalized units, ~ +-0.045 in [0, 1]
  pixel units). Drawn from a ``torch.Generator`` seeded by the optimizer step, so a
  run is deterministic and a resumed run repeats the same views.
- Object-level contrast: pairs and head not described. Chosen: a projection head
  (Linear C-C, ReLU, Linear C-128, SimCLR's) on the pooled features. For each
  image, its two views are the anchors and positives and both views of every image of
  the other class in the batch are the negatives (other images of the same class are
  neither); ``supervised_contrastive(views [2, 128], other class [2 B', 128]) / 2``,
  averaged over the images that have an other-class image in the batch; 0 when the
  batch holds one class only.
- Classification cross-entropy: on both views.
- Sub-object contrast: which points, how many, which features. Chosen: the points of
  the shared feature map (output stride = ``block``: one point per 8 x 8 block, as in
  MRIFE), through a projection head (1x1 conv C-C, ReLU, 1x1 conv C-128), as in the
  pixel contrast of Wang et al., ICCV 2021 (arXiv 2101.11939). Without the head, on the
  shared features at weight 1, the term kept the segmentation from learning (see
  "Diagnostic runs" below). Class 1 = the blocks the mask module's sampler picks
  (``BlockMasker``: under the default ``mask.strategy=edge+back`` the edge blocks of
  ``classify_blocks``, a share ``mask.ratio`` of them per image), class 0 = as many
  background blocks per image; the rows of all images form one contrast set (within
  and across images). The masked images themselves are not used (ICSSN does not mask).
  Loss: ``mrife.kernels.masked_supcon`` (equal to ``mrife.losses.supervised_contrastive``
  on those rows; the Triton kernel on CUDA) divided by the number of anchors, so that
  its scale does not grow with the number of edge points; 0 with fewer than 2 edge
  points or no background point.
- Temperature: not given. Chosen: 0.07 for both contrasts (SupCon's, as for MRIFE).
- Loss weights: not given. Chosen: 1 for the object contrast, 0.1 for the sub-object
  contrast (the weight PaddleSeg's configuration of Wang et al.'s pixel contrast gives
  it beside cross-entropy). Classification phase: ``cls + obj_con_weight * obj_con``;
  segmentation phase: ``ce + sub_con_weight * sub_con``.
- Iteration: phase lengths not given. Chosen: by global optimizer step, cycles of
  ``cls_steps`` classification steps then ``seg_steps`` segmentation steps (defaults
  5 and 15: every profile, even the ~14-step smoke run, visits both phases, and the
  segmentation network, whose output is tested, gets three quarters of the steps).
  One optimizer and LR schedule for both phases (the run's SGD; its momentum carries
  across a phase boundary). A phase leaves the other network's head untouched.
- Test time: segmentation logits ``decoder(encoder(x))``; the classification result
  does not gate the segmentation.
- Reported terms: ``loss``, ``ce``, ``cls``, ``obj_con``, ``sub_con``; the terms of the
  inactive phase are 0, so an epoch's mean of a term is its phase's share of steps
  times its mean within the phase.

Diagnostic runs (profile ``cpu``, seed 0, 2026-11-24; test lIoU of the best-validation
epoch; ``mrife train --profile cpu --set model.name=icssn --set ...``), beside the
segmentation branch alone (the same encoder and decoder, ``segbranch``: 0.359):

- no head, sub-object weight 1, with the classification phase (the first default): 0.010;
- the same without the classification phase (``model.cls_steps=0``): 0.044;
- no sub-object term (``model.sub_con_weight=0``), with the classification phase: 0.163;
- the projection head at weight 0.1, with the classification phase (the defaults): 0.176;
- the defaults without the object contrast (``model.obj_con_weight=0``): 0.129.

So the sub-object term no longer holds the segmentation back, while the alternation
with the classification phase still costs it much of the branch's lIoU at this profile;
dropping the object contrast does not win it back (one seed each, on 7 test scenes).
With the defaults, the validation lIoU peaks after the first epoch and falls back, and
the classifier does no better than calling every tile "landslide". Longer runs, or
other phase lengths (``model.cls_steps``, ``model.seg_steps``), are the next thing to try.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mrife.kernels import masked_supcon
from mrife.losses import supervised_contrastive
from mrife.masking import BlockMasker

from .decoder import Decoder
from .encoder import Encoder

LOSS_TERMS = ("loss", "ce", "cls", "obj_con", "sub_con")
BLOCKS = (8, 16)
PROJECTION_DIM = 128
JITTER = 0.2  # contrast factor 1 +- JITTER, channel shift +- JITTER (normalized units)


def image_labels(masks: Tensor) -> Tensor:
    """Object labels: masks ``[B, H, W]`` in {0, 1} -> int64 ``[B]``, 1 = any landslide pixel."""
    return (masks.flatten(1) > 0).any(1).long()  # [B, H, W] -> [B, H*W] -> [B]


def random_view(images: Tensor, generator: torch.Generator, jitter: float = JITTER) -> Tensor:
    """One random view of each image: flips, quarter turns (square inputs), colour jitter.

    Args:
        images: ``[B, 3, H, W]`` normalized images.
        generator: CPU generator of every draw (so the view is reproducible).
        jitter: contrast factor in ``1 +- jitter`` per image, shift in ``+- jitter`` per
            channel, in normalized units.

    Returns:
        ``[B, 3, H, W]`` (same shape: turns only when H == W).
    """
    B, _, H, W = images.shape
    hflip = torch.rand(B, generator=generator) < 0.5
    vflip = torch.rand(B, generator=generator) < 0.5
    turns = torch.randint(0, 4 if H == W else 1, (B,), generator=generator)
    contrast = 1 + jitter * (2 * torch.rand(B, 1, 1, 1, generator=generator) - 1)
    shift = jitter * (2 * torch.rand(B, 3, 1, 1, generator=generator) - 1)
    views = []
    for b in range(B):
        x = images[b].flip(-1) if hflip[b] else images[b]
        x = x.flip(-2) if vflip[b] else x
        views.append(torch.rot90(x, int(turns[b]), dims=(-2, -1)))
    return torch.stack(views) * contrast.to(images) + shift.to(images)


def object_contrast(z1: Tensor, z2: Tensor, labels: Tensor, temperature: float = 0.07) -> Tensor:
    """Object-level contrast between images (siamese views).

    For image i, the anchors and positives are its two views ``z1[i], z2[i]``; the
    negatives are both views of every image whose label differs. The term is
    ``supervised_contrastive / 2`` (the mean over the two anchors), averaged over the
    images that have a negative.

    Args:
        z1, z2: ``[B, D]`` projections of the first and second views.
        labels: int64 ``[B]`` image labels.
        temperature: tau.

    Returns:
        A scalar; 0 with a zero gradient when every image has one label.
    """
    terms = []
    for i in range(len(labels)):
        other = labels != labels[i]
        if not other.any():
            continue
        pos = torch.stack([z1[i], z2[i]])  # [2, D]
        neg = torch.cat([z1[other], z2[other]])  # [2 B', D]
        terms.append(supervised_contrastive(pos, neg, temperature) / 2)
    if not terms:
        return (z1.sum() + z2.sum()) * 0.0
    return torch.stack(terms).mean()


def sub_object_contrast(feat: Tensor, idx_pos: Tensor, idx_neg: Tensor, temperature: float = 0.07) -> Tensor:
    """Sub-object-level contrast: boundary feature points against background points.

    All rows of the batch form one contrast set (within and across images): class 1 at
    ``idx_pos``, class 0 at ``idx_neg``. The value is ``supervised_contrastive`` on
    those rows (computed by ``masked_supcon``: the Triton kernel on CUDA), divided by
    the number of anchors.

    Args:
        feat: ``[B, D, h, w]`` point features (ICSSN passes its point head's projection of
            the shared map); every row gets a gradient.
        idx_pos, idx_neg: int64 flat positions into ``B*h*w`` (``b*h*w + row*w + col``).
        temperature: tau.

    Returns:
        A scalar; 0 with a zero gradient with fewer than 2 class-1 points or no class-0 point.
    """
    idx = torch.cat([idx_pos, idx_neg])
    lab = torch.cat([torch.ones_like(idx_pos), torch.zeros_like(idx_neg)])
    none = idx[:0]  # no teacher rows: masked_supcon's second map only holds constants
    loss = masked_supcon(feat, idx, lab, feat.detach(), none, none, temperature=temperature)
    return loss / max(idx_pos.numel(), 1)


class ObjectHead(nn.Module):
    """Pooled classification and projection heads: ``[B, C, h, w]`` -> (logits ``[B, 2]``, z ``[B, D]``)."""

    def __init__(self, channels: int = 256, num_classes: int = 2, dim: int = PROJECTION_DIM, dropout: float = 0.1):
        super().__init__()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))
        self.projector = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(inplace=True), nn.Linear(channels, dim))

    def forward(self, feat: Tensor) -> tuple[Tensor, Tensor]:
        pooled = feat.mean((2, 3))  # [B, C, h, w] -> [B, C]
        return self.classifier(pooled), self.projector(pooled)


class ICSSN(nn.Module):
    """ICSSN, RE-IMPLEMENTED from its published description (Lu et al., IEEE TGRS 2023, arXiv
    2302.12420), not the authors' code; the module docstring lists what was left open and chosen.

    Eval (and train) ``forward``: images ``[B, 3, H, W]`` -> segmentation logits ``[B, 2, H, W]``.
    ``classify``: images -> object logits ``[B, 2]`` (landslide = class 1).
    ``training_losses(images, masks, masker, step)``: the terms of the phase of ``step``.

    Args:
        backbone: timm ResNet name (ICSSN: "resnet101").
        pretrained: ImageNet weights via timm (random init with a warning when offline).
        weights_path: local backbone state dict (wins over `pretrained`).
        block: the encoder's output stride (8 or 16) = the block of the sub-object points.
        dropout: decoder and classifier dropout.
        cls_steps: classification steps at the start of each cycle (0: segmentation only).
        seg_steps: segmentation steps that follow them (at least 1).
        temperature: tau of both contrasts.
        obj_con_weight: weight of the object-level contrast in the classification phase.
        sub_con_weight: weight of the sub-object-level contrast in the segmentation phase.
        num_classes: segmentation classes (2: background, landslide).
        channels: the shared encoder's feature width (ASPP output).
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        pretrained: bool = False,
        weights_path: str | Path | None = None,
        block: int = 8,
        dropout: float = 0.1,
        cls_steps: int = 5,
        seg_steps: int = 15,
        temperature: float = 0.07,
        obj_con_weight: float = 1.0,
        sub_con_weight: float = 0.1,
        num_classes: int = 2,
        channels: int = 256,
    ):
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS} (it is the encoder's output stride), got {block!r}")
        if int(cls_steps) != cls_steps or cls_steps < 0:
            raise ValueError(f"cls_steps must be an integer >= 0, got {cls_steps!r}")
        if int(seg_steps) != seg_steps or seg_steps < 1:
            raise ValueError(f"seg_steps must be an integer >= 1 (the segmentation network is the output), "
                             f"got {seg_steps!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.block = block
        self.cls_steps, self.seg_steps = int(cls_steps), int(seg_steps)
        self.temperature = temperature
        self.obj_con_weight, self.sub_con_weight = obj_con_weight, sub_con_weight
        self.encoder = Encoder(backbone, block, pretrained, weights_path, channels)
        self.decoder = Decoder(self.encoder.out_channels, num_classes, block, dropout)
        self.object_head = ObjectHead(self.encoder.out_channels, 2, PROJECTION_DIM, dropout)
        # Sub-object projection head: [B, C, h, w] -> [B, PROJECTION_DIM, h, w].
        self.point_head = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True),
                                        nn.Conv2d(channels, PROJECTION_DIM, 1))

    def phase(self, step: int) -> str:
        """"cls" for the first `cls_steps` steps of each cycle, then "seg" for `seg_steps`."""
        return "cls" if step % (self.cls_steps + self.seg_steps) < self.cls_steps else "seg"

    def forward(self, x: Tensor) -> Tensor:
        """Segmentation logits: ``[B, 3, H, W] -> [B, C, h, w] -> [B, K, H, W]``."""
        return self.decoder(self.encoder(x))

    def classify(self, x: Tensor) -> Tensor:
        """Object logits ``[B, 2]`` (class 1: the image holds a landslide)."""
        return self.object_head(self.encoder(x))[0]

    def classification_losses(self, images: Tensor, masks: Tensor, step: int) -> dict[str, Tensor]:
        """Siamese step: ``{"cls", "obj_con"}`` on two random views (seeded by `step`) of each image."""
        generator = torch.Generator().manual_seed(int(step))
        views = torch.cat([random_view(images, generator), random_view(images, generator)])  # [2B, 3, H, W]
        logits, z = self.object_head(self.encoder(views))  # [2B, 2], [2B, D]
        labels = image_labels(masks)  # [B]
        z1, z2 = z.chunk(2)  # [2B, D] -> 2 x [B, D]
        return {
            "cls": F.cross_entropy(logits, labels.repeat(2)),
            "obj_con": object_contrast(z1, z2, labels, self.temperature),
        }

    def segmentation_losses(self, images: Tensor, masks: Tensor, masker: BlockMasker) -> dict[str, Tensor]:
        """Segmentation step: ``{"ce", "sub_con"}``; `masker` picks the boundary and background points."""
        if masker.block != self.block:
            raise ValueError(f"the masker's block {masker.block} must equal ICSSN's block {self.block} "
                             f"(one feature point per block); set mask and model to one block size")
        feat = self.encoder(images)  # [B, C, h, w]
        points = masker(images, masks)  # only its index lists are used
        return {
            "ce": F.cross_entropy(self.decoder(feat), masks),
            "sub_con": sub_object_contrast(self.point_head(feat), points.idx_pos, points.idx_neg,
                                           self.temperature),
        }

    def training_losses(
        self, images: Tensor, masks: Tensor, masker: BlockMasker | None = None, step: int = 0
    ) -> dict[str, Tensor]:
        """Every term of the phase of `step` (global optimizer step); the other phase's terms are 0.

        Args:
            images: ``[B, 3, H, W]`` normalized images.
            masks: int64 ``[B, H, W]`` in {0, 1}.
            masker: picks the sub-object points; default ``BlockMasker(block, seed=step)``.
            step: global optimizer step, selects the phase and seeds the siamese views.

        Returns:
            ``{"loss", "ce", "cls", "obj_con", "sub_con"}`` scalars; ``loss`` is to backpropagate.
        """
        zero = images.new_zeros(())
        if self.phase(step) == "cls":
            terms = self.classification_losses(images, masks, step)
            loss = terms["cls"] + self.obj_con_weight * terms["obj_con"]
        else:
            masker = BlockMasker(self.block, seed=int(step)) if masker is None else masker
            terms = self.segmentation_losses(images, masks, masker)
            loss = terms["ce"] + self.sub_con_weight * terms["sub_con"]
        return {name: zero for name in LOSS_TERMS} | terms | {"loss": loss}


@torch.no_grad()
def object_metrics(model: ICSSN, loader) -> dict[str, float]:
    """Object-level accuracy and F1 (landslide = positive) of ``model.classify`` over `loader`.

    `loader` yields dicts with "image" ``[B, 3, H, W]`` and "mask" ``[B, H, W]``; an image
    is a landslide image when its mask holds any landslide pixel. F1 is 0 when there is no
    positive image and no positive prediction. The model's train/eval mode is restored.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    tp = fp = fn = tn = 0
    for batch in loader:
        pred = model.classify(batch["image"].to(device)).argmax(1).cpu()  # [B]
        label = image_labels(batch["mask"]).cpu()  # [B]
        tp += int(((pred == 1) & (label == 1)).sum())
        fp += int(((pred == 1) & (label == 0)).sum())
        fn += int(((pred == 0) & (label == 1)).sum())
        tn += int(((pred == 0) & (label == 0)).sum())
    model.train(was_training)
    total = tp + fp + fn + tn
    if total == 0:
        raise ValueError("object_metrics: the loader yielded no image")
    return {"cls_accuracy": (tp + tn) / total, "cls_F1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0}
