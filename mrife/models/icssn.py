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

- Backbone: ResNet101 in ICSSN. Chosen: the run's ``model.backbone``, as for every model.
- Image label: "landslide / non-landslide". Chosen: 1 when the mask holds any landslide pixel.
- Classification head: not described. Chosen: global average pooling of the shared
  features ``[B, C, h, w] -> [B, C]``, dropout, one linear layer -> 2 logits.
- Siamese views: augmentations not described. Chosen: two random views of each image,
  made on the normalized batch tensor: horizontal / vertical flips (p = 1/2 each),
  k quarter turns (k uniform in 0..3, square inputs only), contrast x U(0.8, 1.2) per
  image and a shift U(-0.2, 0.2) per channel (normalized units, ~ +-0.045 in [0, 1]
  pixel units). Drawn from a ``torch.Generator`` seeded by the optimizer step, so a
  run is deterministic and a resumed run repeats the same views.
- Object-level contrast: pairs and head not described. Chosen: a projection head
  (Linear C-C, ReLU, Linear C-128, SimCLR's) on the pooled features and
  :func:`mrife.losses.object_contrast` (an image's two views are anchor and positive,
  both views of every image of the other class in the batch are negatives).
- Classification cross-entropy: on both views.
- Sub-object contrast: which points, how many, which features. Chosen: the points of
  the shared feature map (one point per ``output_stride`` x ``output_stride`` block, as
  in MRIFE), through a projection head (1x1 conv C-C, ReLU, 1x1 conv C-128), as in the
  pixel contrast of Wang et al., ICCV 2021 (arXiv 2101.11939). Class 1 = the blocks
  MRIFE's mask module would mask (``mask_strategy``, ``mask_ratio``), class 0 = as many
  background blocks per image; the masked images themselves are not used (ICSSN does
  not mask). Loss: :func:`mrife.losses.sub_object_contrast`.
- Temperature: not given. Chosen: 0.07 for both contrasts (SupCon's, as for MRIFE).
- Loss weights: not given. Chosen: 1 for the object contrast, 0.1 for the sub-object
  contrast (the weight PaddleSeg's configuration of Wang et al.'s pixel contrast gives
  it beside cross-entropy). Classification phase: ``cls + obj_con_weight * obj_con``;
  segmentation phase: ``ce + sub_con_weight * sub_con``.
- Iteration: phase lengths not given. Chosen: by global optimizer step, cycles of
  ``cls_steps`` classification steps then ``seg_steps`` segmentation steps (defaults
  5 and 15: every profile, even the ~14-step smoke run, visits both phases, and the
  segmentation network, whose output is tested, gets three quarters of the steps).
  The book's ``icssn`` experiment runs 2 and 18, chosen on the validation split over 3
  seeds against these first values (``mrife.experiments.CHOICES["icssn"]``).
  One optimizer and LR schedule for both phases; a phase leaves the other network's
  head untouched.
- Test time: segmentation logits ``decoder(encoder(x))``; the classification result
  does not gate the segmentation.
- Reported terms: ``loss``, ``ce``, ``cls``, ``obj_con``, ``sub_con``; the terms of the
  inactive phase are 0, so an epoch's mean of a term is its phase's share of steps
  times its mean within the phase.

How these choices were arrived at (the runs, their commands and their numbers) is told
in the book's chapter 6, not here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mrife.config import MaskConfig, RunConfig
from mrife.labels import IGNORE, LANDSLIDE
from mrife.losses import object_contrast, sub_object_contrast
from mrife.masking import BlockMasker
from mrife.metrics import ConfusionMatrix

from .base import SegmentationModel
from .decoder import Decoder
from .encoder import EncoderSpec

LOSS_TERMS = ("loss", "ce", "cls", "obj_con", "sub_con")
PROJECTION_DIM = 128
JITTER = 0.2  # contrast factor 1 +- JITTER, channel shift +- JITTER (normalized units)


def image_labels(masks: Tensor) -> Tensor:
    """Object labels: masks ``[B, H, W]`` in {0, 1, IGNORE} -> int64 ``[B]``, 1 = any landslide pixel."""
    return (masks.flatten(1) == LANDSLIDE).any(1).long()  # [B, H, W] -> [B, H*W] -> [B]


def random_view(images: Tensor, generator: torch.Generator, jitter: float = JITTER) -> Tensor:
    """One random view of each image: flips, quarter turns (square inputs), colour jitter.

    Args:
        images: ``[B, C, H, W]`` normalized images, any number of bands C.
        generator: CPU generator of every draw (so the view is reproducible).
        jitter: contrast factor in ``1 +- jitter`` per image, shift in ``+- jitter`` per
            channel, in normalized units.

    Returns:
        ``[B, C, H, W]`` (same shape: turns only when H == W).
    """
    B, C, H, W = images.shape
    hflip = torch.rand(B, generator=generator) < 0.5
    vflip = torch.rand(B, generator=generator) < 0.5
    turns = torch.randint(0, 4 if H == W else 1, (B,), generator=generator)
    contrast = 1 + jitter * (2 * torch.rand(B, 1, 1, 1, generator=generator) - 1)
    shift = jitter * (2 * torch.rand(B, C, 1, 1, generator=generator) - 1)  # per band
    views = []
    for b in range(B):
        x = images[b].flip(-1) if hflip[b] else images[b]
        x = x.flip(-2) if vflip[b] else x
        views.append(torch.rot90(x, int(turns[b]), dims=(-2, -1)))
    return torch.stack(views) * contrast.to(images) + shift.to(images)


class ObjectHead(nn.Module):
    """Pooled classification and projection heads: ``[B, C, h, w]`` -> (logits ``[B, 2]``, z ``[B, D]``)."""

    def __init__(self, channels: int = 256, num_classes: int = 2, dim: int = PROJECTION_DIM, dropout: float = 0.1):
        super().__init__()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))
        self.projector = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(inplace=True), nn.Linear(channels, dim))

    def forward(self, feat: Tensor) -> tuple[Tensor, Tensor]:
        pooled = feat.mean((2, 3))  # [B, C, h, w] -> [B, C]
        return self.classifier(pooled), self.projector(pooled)


class ICSSN(SegmentationModel):
    """ICSSN, RE-IMPLEMENTED from its published description (Lu et al., IEEE TGRS 2023, arXiv
    2302.12420), not the authors' code; the module docstring lists what was left open and chosen.

    Eval (and train) ``forward``: images ``[B, 3, H, W]`` -> segmentation logits ``[B, 2, H, W]``.
    ``classify``: images -> object logits ``[B, 2]`` (landslide = class 1).
    ``training_losses(images, masks, step, generator)``: the terms of the phase of ``step``.
    ``test_metrics(loader)``: object-level accuracy and F1 of ``classify``.

    Args:
        encoder: the shared encoder's settings (ICSSN's backbone: "resnet101"); its output
            stride is the block of the sub-object points.
        dropout: decoder and classifier dropout.
        cls_steps: classification steps at the start of each cycle (0: segmentation only).
        seg_steps: segmentation steps that follow them (at least 1).
        temperature: tau of both contrasts.
        obj_con_weight: weight of the object-level contrast in the classification phase.
        sub_con_weight: weight of the sub-object-level contrast in the segmentation phase.
        num_classes: segmentation classes (2: background, landslide).
        mask: ``strategy`` and ``ratio`` say which boundary blocks are the sub-object
            points, as for MRIFE's mask module (``mrife.masking.BlockMasker``); a point is
            one feature point, so ``block`` stays None.
    """

    batch_split = None  # the object contrast compares every image of the batch
    config_keys = (*EncoderSpec.config_keys.values(), "model.dropout", "model.cls_steps", "model.seg_steps",
                   "loss.temperature", "model.obj_con_weight", "model.sub_con_weight", "mask.strategy", "mask.ratio")

    def __init__(
        self,
        encoder: EncoderSpec = EncoderSpec(),
        dropout: float = 0.1,
        cls_steps: int = 5,
        seg_steps: int = 15,
        temperature: float = 0.07,
        obj_con_weight: float = 1.0,
        sub_con_weight: float = 0.1,
        num_classes: int = 2,
        mask: MaskConfig | None = None,
    ):
        super().__init__()
        mask = MaskConfig() if mask is None else mask
        if int(cls_steps) != cls_steps or cls_steps < 0:
            raise ValueError(f"cls_steps must be an integer >= 0, got {cls_steps!r}")
        if int(seg_steps) != seg_steps or seg_steps < 1:
            raise ValueError(f"seg_steps must be an integer >= 1 (the segmentation network is the output), "
                             f"got {seg_steps!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if mask.block not in (None, encoder.output_stride):
            raise ValueError(f"mask.block {mask.block} is not ICSSN's: its sub-object points are single feature "
                             f"points, blocks of the output stride {encoder.output_stride} (leave mask.block None)")
        self.output_stride = encoder.output_stride
        self.masker = BlockMasker(self.output_stride, mask.strategy, mask.ratio)
        self.cls_steps, self.seg_steps = int(cls_steps), int(seg_steps)
        self.temperature = temperature
        self.obj_con_weight, self.sub_con_weight = obj_con_weight, sub_con_weight
        self.encoder = encoder.build()
        self.decoder = Decoder(self.encoder.out_channels, num_classes, self.output_stride, dropout)
        self.object_head = ObjectHead(self.encoder.out_channels, 2, PROJECTION_DIM, dropout)
        # Sub-object projection head: [B, C, h, w] -> [B, PROJECTION_DIM, h, w].
        channels = self.encoder.out_channels
        self.point_head = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True),
                                        nn.Conv2d(channels, PROJECTION_DIM, 1))

    @classmethod
    def from_config(cls, cfg: RunConfig) -> ICSSN:
        m = cfg.model
        return cls(EncoderSpec.from_config(cfg), m.dropout, m.cls_steps, m.seg_steps, cfg.loss.temperature,
                   m.obj_con_weight, m.sub_con_weight, mask=cfg.mask)

    def cam_layers(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder}

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

    def segmentation_losses(self, images: Tensor, masks: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """Segmentation step: ``{"ce", "sub_con"}``; `generator` draws the boundary and background points."""
        feat = self.encoder(images)  # [B, C, h, w]
        points = self.masker(images, masks, generator)  # only its index lists are used
        return {
            "ce": F.cross_entropy(self.decoder(feat), masks, ignore_index=IGNORE),
            "sub_con": sub_object_contrast(self.point_head(feat), points.idx_pos, points.idx_neg,
                                           self.temperature),
        }

    def training_losses(self, images: Tensor, masks: Tensor, step: int,
                        generator: torch.Generator) -> dict[str, Tensor]:
        """Every term of the phase of `step` (global optimizer step); the other phase's terms are 0.

        Args:
            images: ``[B, 3, H, W]`` normalized images.
            masks: int64 ``[B, H, W]`` in {0, 1}.
            step: global optimizer step, selects the phase and seeds the siamese views.
            generator: draws the sub-object points (segmentation phase).

        Returns:
            ``{"loss", "ce", "cls", "obj_con", "sub_con"}`` scalars; ``loss`` is to backpropagate.
        """
        zero = images.new_zeros(())
        if self.phase(step) == "cls":
            terms = self.classification_losses(images, masks, step)
            loss = terms["cls"] + self.obj_con_weight * terms["obj_con"]
        else:
            terms = self.segmentation_losses(images, masks, generator)
            loss = terms["ce"] + self.sub_con_weight * terms["sub_con"]
        return {name: zero for name in LOSS_TERMS} | terms | {"loss": loss}

    @torch.no_grad()
    def test_metrics(self, loader) -> dict[str, float]:
        """Object-level accuracy and F1 (landslide = positive) of :meth:`classify` over `loader`.

        `loader` yields dicts with "image" ``[B, 3, H, W]`` and "mask" ``[B, H, W]``; an image
        is a landslide image when its mask holds any landslide pixel. The train/eval mode
        is restored.
        """
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        counts = ConfusionMatrix()  # over images, not pixels
        for batch in loader:
            counts.update(self.classify(batch["image"].to(device)).argmax(1).cpu(), image_labels(batch["mask"]))
        self.train(was_training)
        if sum(counts.counts) == 0:
            raise ValueError("ICSSN.test_metrics: the loader yielded no image")
        metrics = counts.compute()
        return {"cls_accuracy": metrics["PA"], "cls_F1": metrics["F1"]}
