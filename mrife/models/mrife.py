"""MRIFE: segmentation branch + teacher-student enhancement branch + fusion + decoder (paper Sec. III).

- Segmentation branch (III-B): `seg_encoder` on the original image.
- Feature enhancement branch (III-C): `student` on the masked image, `teacher` on
  the original image; the teacher is the EMA of the student (Eq. 1, decay 0.996),
  buffers (BN running statistics) included, and never receives gradients.
- Fusion module and decoder (III-D): point-wise addition of the enhancement
  features to the segmentation features (concatenation + 1x1 conv is the
  alternative of Fig. 8), then the transposed-conv decoder.

During training the decoder sees the student's features of the masked image by
default, so cross-entropy also trains the student (NOTES.md: "which features are
fused during training"); at test time it sees the teacher's features of the
original image, as the paper says. Those two are differently distributed (the
teacher in eval mode normalizes with EMA'd batch-norm buffers), so the candidates for
a consistent path are configuration values, to be decided on the validation split:
`fuse_train="teacher"` (the decoder sees the teacher's features in training too),
`teacher_bn="batch"` (the teacher normalizes with batch statistics in training and
keeps running statistics of its own features for the test, its buffers left out of
the EMA, as DINO's teacher does) and `ema_decay` (the EMA horizon, 1 / (1 - decay)
steps). `feature_rms` measures how far apart the two paths are.

The teacher is a timm `ModelEmaV3` registered as the submodule `teacher_ema`
(so `state_dict()` and `.to()` carry it); `model.teacher` is its encoder. Its
parameters have `requires_grad=False` but still appear in `model.parameters()`:
build optimizers from `model.trainable_parameters()`.

MRIFE owns its mask module (`model.masker`, built from its output stride and a
:class:`~mrife.config.MaskConfig`) and its joint loss (Eq. 8, a
:class:`~mrife.config.LossConfig`): `training_losses` masks the batch, runs the three
encoders and returns every term, and `after_step` moves the teacher (the contract of
`base.py`). Its three encoders are built from one :class:`~mrife.models.encoder.EncoderSpec`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from typing import NamedTuple

import torch
import torch.nn.functional as F
from timm.utils import ModelEmaV3
from torch import Tensor, nn

from mrife.config import LossConfig, MaskConfig, RunConfig
from mrife.losses import SFCE_REDUCTIONS, LossWeights, joint_loss
from mrife.masking import BlockMasker

from .base import SegmentationModel
from .decoder import Decoder
from .encoder import Encoder, EncoderSpec, check_input

FUSIONS = ("add", "concat")
TEACHER_BN = ("ema", "batch")
GRADIENT_SHARE_EVERY = 10  # steps between two measurements of MRIFE.gradient_shares
FUSE_TRAIN = ("student", "teacher")


class MRIFEOutput(NamedTuple):
    """What MRIFE returns in training mode (the losses need all three)."""

    logits: torch.Tensor  # [B, num_classes, H, W]
    student: torch.Tensor  # [B, C, h, w]: student(masked), h = H / output_stride
    teacher: torch.Tensor  # [B, C, h, w]: teacher(x), computed without gradient


class Fusion(nn.Module):
    """Fuse segmentation and enhancement features [B, C, h, w] x 2 -> [B, C, h, w].

    "add": point-wise addition (the paper's); "concat": concatenation then a 1x1
    conv back to C channels (the rejected alternative of Fig. 8).
    """

    def __init__(self, mode: str = "add", channels: int = 256):
        super().__init__()
        if mode not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {mode!r}")
        self.mode = mode
        self.conv = nn.Conv2d(2 * channels, channels, 1) if mode == "concat" else None

    def forward(self, seg: torch.Tensor, enhanced: torch.Tensor) -> torch.Tensor:
        if self.conv is None:
            return seg + enhanced
        return self.conv(torch.cat([seg, enhanced], dim=1))  # [B, 2C, h, w] -> [B, C, h, w]

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class SegBranch(SegmentationModel):
    """The segmentation branch alone ("B (seg branch)"): image [B, 3, H, W] -> logits [B, K, H, W]."""

    config_keys = (*EncoderSpec.config_keys.values(), "model.dropout")

    def __init__(self, encoder: Encoder, decoder: Decoder):
        super().__init__()
        if encoder.output_stride != decoder.output_stride:
            raise ValueError(
                f"encoder output stride {encoder.output_stride} != decoder output stride {decoder.output_stride}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.output_stride = encoder.output_stride

    @classmethod
    def from_config(cls, cfg: RunConfig) -> SegBranch:
        return build_segbranch(EncoderSpec.from_config(cfg), cfg.model.dropout)

    def cam_layers(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))  # [B, 3, H, W] -> [B, C, h, w] -> [B, K, H, W]


def build_segbranch(encoder: EncoderSpec = EncoderSpec(), dropout: float = 0.1, num_classes: int = 2) -> SegBranch:
    """The segmentation branch with MRIFE's encoder and decoder (the ablation's "B").

    `dropout` is the decoder's; `num_classes` its output classes (2: background, landslide).
    """
    features = encoder.build()
    return SegBranch(features, Decoder(features.out_channels, num_classes, encoder.output_stride, dropout))


class MRIFE(SegmentationModel):
    """The full model. Eval: x -> logits; train: (x, masked) -> `MRIFEOutput`.

    Args:
        encoder: the settings of all three encoders; its output stride is by default the
            masked block size in pixels too (one feature point per block).
        fusion: "add" (paper) or "concat".
        fuse_train: features fused with the segmentation features during training,
            "student" (student(masked), the project's default) or "teacher" (teacher(x)).
        ema_decay: lambda of Eq. (1), theta_t <- lambda theta_t + (1 - lambda) theta_s.
        teacher_bn: the teacher's batch norm: "ema" (eval mode; its running statistics
            are the EMA of the student's) or "batch" (batch statistics in training, its
            own running statistics, updated by its forward passes, at test time).
        dropout: decoder dropout.
        num_classes: output classes (2: background, landslide).
        mask: the mask module: ``strategy`` (which blocks are masked as class 1,
            ``mrife.masking.STRATEGIES``), ``ratio`` (share of the class-1 blocks masked per
            image) and ``block`` (masked block size in pixels, a multiple of the output
            stride; None: equal to it). A block of k x k feature points is one row of MFM
            and SFCE: the student and teacher maps are average-pooled k x k for the two
            losses (Table V at a fixed output stride); the decoder still sees the full maps.
        loss: Eq. (8): ``alpha``, ``beta``, ``gamma`` weigh L_Reconst, L_Cons and L_CE;
            ``temperature`` is tau of the SFCE contrast, Eq. (5); ``sfce_reduction`` "sum"
            (the paper's Eq. 4) or "mean" over the SFCE anchors.
    """

    batch_split = "pairs"  # SFCE contrasts the images of a pair

    config_keys = (*EncoderSpec.config_keys.values(), "model.fusion", "model.fuse_train", "model.ema_decay",
                   "model.teacher_bn", "model.dropout", "mask.strategy", "mask.ratio", "mask.block",
                   "loss.alpha", "loss.beta", "loss.gamma", "loss.temperature", "loss.sfce_reduction")

    def __init__(
        self,
        encoder: EncoderSpec = EncoderSpec(),
        fusion: str = "add",
        fuse_train: str = "student",
        ema_decay: float = 0.996,
        teacher_bn: str = "ema",
        dropout: float = 0.1,
        num_classes: int = 2,
        mask: MaskConfig | None = None,
        loss: LossConfig | None = None,
    ):
        super().__init__()
        mask = MaskConfig() if mask is None else mask
        loss = LossConfig() if loss is None else loss
        if loss.sfce_reduction not in SFCE_REDUCTIONS:
            raise ValueError(f"sfce_reduction must be one of {SFCE_REDUCTIONS}, got {loss.sfce_reduction!r}")
        if teacher_bn not in TEACHER_BN:
            raise ValueError(f"teacher_bn must be one of {TEACHER_BN}, got {teacher_bn!r}")
        if fuse_train not in FUSE_TRAIN:
            raise ValueError(f"fuse_train must be one of {FUSE_TRAIN}, got {fuse_train!r}")
        if not 0.0 <= ema_decay <= 1.0:
            raise ValueError(f"ema_decay must be in [0, 1], got {ema_decay!r}")
        self.output_stride = encoder.output_stride
        self.fuse_train, self.teacher_bn = fuse_train, teacher_bn
        block = self.output_stride if mask.block is None else mask.block
        if block % self.output_stride:
            raise ValueError(f"mask.block {block} must be a multiple of the output stride {self.output_stride} "
                             "(a block is a whole number of feature points)")
        self.masker = BlockMasker(block, mask.strategy, mask.ratio)
        self.weights = LossWeights(loss.alpha, loss.beta, loss.gamma)
        self.temperature, self.sfce_reduction = loss.temperature, loss.sfce_reduction
        self.seg_encoder = encoder.build()
        # Same architecture, separate parameters. When the download already failed
        # for seg_encoder, do not wait for it to fail again (timm retries for ~50 s).
        pretrained = encoder.pretrained and self.seg_encoder.pretrained_loaded
        self.student = dataclasses.replace(encoder, pretrained=pretrained).build()
        # ModelEmaV3 deep-copies the student (teacher starts equal to it, as in DINO),
        # and its update lerps every floating state_dict entry: weights and BN buffers.
        self.teacher_ema = ModelEmaV3(self.student, decay=ema_decay)
        self.teacher_ema.requires_grad_(False)
        self.fuse = Fusion(fusion, encoder.channels)
        self.decoder = Decoder(encoder.channels, num_classes, self.output_stride, dropout)
        self._enhancement = True  # False inside enhancement_off()

    @classmethod
    def from_config(cls, cfg: RunConfig) -> MRIFE:
        m = cfg.model
        return cls(EncoderSpec.from_config(cfg), m.fusion, m.fuse_train, m.ema_decay, m.teacher_bn, m.dropout,
                   mask=cfg.mask, loss=cfg.loss)

    def cam_layers(self) -> dict[str, nn.Module]:
        """``fused`` (what the decoder reads), ``segmentation`` (the segmentation encoder's
        output, before fusion), ``enhancement`` (the teacher's: the branch at test time)."""
        return {"fused": self.fuse, "segmentation": self.seg_encoder, "enhancement": self.teacher}

    @contextlib.contextmanager
    def enhancement_off(self):
        """The enhancement branch switched off in eval: logits = decoder(fuse(seg(x), 0)),
        the teacher's features replaced by zeros (with fusion by addition the decoder then
        reads the segmentation features alone). What the branch adds at test is the whole
        model's metrics minus these."""
        self._enhancement = False
        try:
            yield self
        finally:
            self._enhancement = True

    def test_ablations(self) -> dict[str, contextlib.AbstractContextManager]:
        """``{"enhancement_off": ...}``: the test split is scored again without the branch."""
        return {"enhancement_off": self.enhancement_off()}

    @property
    def teacher(self) -> Encoder:
        """The teacher encoder (EMA of the student; lives in `teacher_ema.module`)."""
        return self.teacher_ema.module

    def train(self, mode: bool = True) -> "MRIFE":
        """Set train/eval mode. The teacher stays in eval mode (no dropout), except its batch
        norms in training with ``teacher_bn="batch"``."""
        super().train(mode)
        self.teacher_ema.eval()
        if mode and self.teacher_bn == "batch":
            for m in self.teacher_ema.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.train()
        return self

    @torch.no_grad()
    def feature_rms(self, images: Tensor, masks: Tensor) -> dict[str, dict[str, float]]:
        """Root mean square of what the fusion reads and what the decoder reads, in
        training and at test, on one batch.

        ``{"seg" | "enhanced" | "fused": {"train": ..., "eval": ...}}``: the segmentation
        features, the enhancement features (the student's or the teacher's in training,
        by ``fuse_train``; the teacher's at test) and the fused features the decoder
        reads, from a training forward (the batch masked by the mask module) and an eval
        forward. Batch norm normalizes with batch statistics in the one and running
        statistics in the other, in every encoder; ``enhanced`` against ``seg`` tells
        how much more the enhancement path changes between the two. Runs on a copy, so
        this model's statistics and mode are left alone.
        """
        probe = copy.deepcopy(self)
        seen = {}

        def record(module, args, out):
            seen.update(seg=args[0], enhanced=args[1], fused=out)

        probe.fuse.register_forward_hook(record)
        masked = probe.masker(images, masks, torch.Generator().manual_seed(0))
        rms = {}
        for mode in ("train", "eval"):
            probe.train(mode == "train")(images, masked.images)
            for name, value in seen.items():
                rms.setdefault(name, {})[mode] = float(value.float().pow(2).mean().sqrt())
        return rms

    @torch.no_grad()
    def after_step(self) -> None:
        """EMA step of Eq. (1), theta_t <- d theta_t + (1 - d) theta_s, on weights and buffers
        (on weights alone with ``teacher_bn="batch"``: the teacher's statistics are its own;
        timm's ``exclude_buffers`` would copy the student's instead)."""
        if self.teacher_bn == "ema":
            self.teacher_ema.update(self.student)
            return
        for t, s in zip(self.teacher.parameters(), self.student.parameters()):
            t.lerp_(s, 1.0 - self.teacher_ema.decay)

    def training_losses(self, images: Tensor, masks: Tensor, step: int,
                        generator: torch.Generator) -> dict[str, Tensor]:
        """Mask the batch, run the three encoders, and return Eq. (8) term by term.

        Args:
            images: ``[B, 3, H, W]`` normalized images; masks: int64 ``[B, H, W]`` in {0, 1}.
            step: global optimizer step (MRIFE's losses do not depend on it).
            generator: draws the masked blocks.

        Returns:
            ``{"loss", "ce", "reconst", "cons"}`` scalars.
        """
        masked = self.masker(images, masks, generator)
        out = self(images, masked.images)
        pool = self.masker.block // self.output_stride  # feature points per block side
        student, teacher = (F.avg_pool2d(out.student, pool), F.avg_pool2d(out.teacher, pool)) if pool > 1 else \
            (out.student, out.teacher)  # [B, C, h, w] -> [B, C, h / pool, w / pool]: one row a block
        terms = joint_loss(out.logits, masks, student, teacher, masked.idx_pos,
                           masked.idx_neg, self.weights, self.temperature, self.sfce_reduction)
        if step % GRADIENT_SHARE_EVERY == 0:
            terms |= self.gradient_shares(terms)
        return terms

    def gradient_shares(self, terms: dict[str, Tensor]) -> dict[str, Tensor]:
        """Which term drives the student: ``{"share_reconst", "share_cons", "share_ce"}``.

        The norm of the gradient that each weighted term of Eq. (8) sends to the student's
        parameters, divided by the sum of the three norms (0 for a term with no gradient
        there, e.g. cross-entropy when the decoder fuses the teacher's features). Costs
        three extra backward passes through the student, so it is measured every
        ``GRADIENT_SHARE_EVERY`` steps only.
        """
        params = [p for p in self.student.parameters() if p.requires_grad]
        w = self.weights
        weighted = {"reconst": w.alpha * terms["reconst"], "cons": w.beta * terms["cons"], "ce": w.gamma * terms["ce"]}
        norms = {}
        for name, value in weighted.items():
            grads = (torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
                     if value.requires_grad else [])
            norms[name] = float(torch.sqrt(sum((g.detach().float().pow(2).sum() for g in grads if g is not None),
                                               torch.zeros(()))))
        total = sum(norms.values())
        return {f"share_{k}": torch.tensor(v / total if total > 0 else 0.0) for k, v in norms.items()}

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Segmentation and teacher features of the original image, each [B, C, H/os, W/os]."""
        check_input(x, self.output_stride, type(self).__name__, self.seg_encoder.bands)
        return self.seg_encoder(x), self.teacher(x)

    def forward(self, x: torch.Tensor, masked: torch.Tensor | None = None) -> torch.Tensor | MRIFEOutput:
        """Eval: logits [B, K, H, W] = decoder(fuse(seg(x), teacher(x))); `masked` is not used.

        Train: `masked` (the masked images, same shape as x) is required; returns
        MRIFEOutput(logits, student(masked), teacher(x)).
        """
        check_input(x, self.output_stride, type(self).__name__, self.seg_encoder.bands)
        if not self.training:
            if not self._enhancement:
                seg = self.seg_encoder(x)  # [B, C, h, w]
                return self.decoder(self.fuse(seg, torch.zeros_like(seg)))
            return self.decoder(self.fuse(*self.features(x)))
        if masked is None:
            raise ValueError("MRIFE in training mode needs the masked images: model(x, masked)")
        if masked.shape != x.shape:
            raise ValueError(f"masked images {tuple(masked.shape)} must have the shape of x {tuple(x.shape)}")
        seg = self.seg_encoder(x)  # [B, C, h, w]
        student = self.student(masked)  # [B, C, h, w]
        with torch.no_grad():
            teacher = self.teacher(x)  # [B, C, h, w], target of the MFM and SFCE losses
        enhanced = student if self.fuse_train == "student" else teacher
        return MRIFEOutput(self.decoder(self.fuse(seg, enhanced)), student, teacher)
