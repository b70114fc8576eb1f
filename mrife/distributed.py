"""Training in several processes with torchrun: data parallelism that computes what one
process would.

``torchrun --nproc_per_node N -m mrife train ...`` starts N processes (ranks); each
reads its rank from the environment torchrun sets, and :func:`join` joins them into a
process group (NCCL on GPUs, gloo on CPUs). A run then trains on the config's batch
as one process would:

- each global batch is the one a single process draws (same shuffling, same
  augmentation), cut into N contiguous shares, one per rank (:class:`RankBatches`);
  ``train.batch_size`` stays the global batch and must divide by N;
- MRIFE's mask module draws the blocks of the whole global batch on every rank from
  the block classes gathered across ranks, and each rank keeps its share, so the draws
  are a single process's;
- every loss term adds over images or pairs, except cross-entropy, which is divided by
  the labelled pixels of the global batch: each rank's terms are its part of the global
  loss, the gradient is scaled by N against DistributedDataParallel's average, and the
  logged terms are summed across ranks;
- dropout draws the mask of the global batch on every rank and keeps its share
  (:class:`GlobalBatchDropout`);
- batch norm is computed over the global batch (``train.sync_bn``, on by default):
  torch's ``SyncBatchNorm`` on GPUs, :class:`CPUSyncBatchNorm` on CPUs, where torch's
  does not run;
- validation and test tiles are shared out and the confusion matrices summed.

So N processes give one process's history to floating-point rounding (the sums are
taken in another order), which ``tests/test_distributed.py`` checks. Rank 0 alone
writes the run directory; every rank reads ``last.pt`` to resume, so the run directory
must be on a file system every rank sees (on several nodes, a shared one).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import Sampler

_active: Ranks | None = None  # the ranks sharing the training step under way (see sharing)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the processes of a run: one process by default."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def main(self) -> bool:
        """Whether this process writes the run directory and prints."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def sum(self, values: Tensor) -> Tensor:
        """``values`` summed over the ranks (a copy; no gradient)."""
        values = values.detach().clone()
        if self.world > 1:
            dist.all_reduce(values)
        return values

    def gather(self, tensor: Tensor) -> Tensor:
        """Every rank's ``tensor [n, ...]`` (the same shape on each) joined in rank order: ``[world * n, ...]``."""
        if self.world == 1:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.world)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    def own(self, idx: Tensor, per_rank: int) -> Tensor:
        """Of flat indices into the gathered ``[world * per_rank]``, those of this rank,
        as indices into its own ``[per_rank]``."""
        start = self.rank * per_rank
        return idx[(idx >= start) & (idx < start + per_rank)] - start

    def gather_objects(self, obj) -> list:
        """Every rank's picklable ``obj``, in rank order (only ranks of one run exchange them)."""
        if self.world == 1:
            return [obj]
        objects = [None] * self.world
        dist.all_gather_object(objects, obj)
        return objects


def join(device: torch.device) -> Ranks:
    """The ranks of this process as torchrun set them (``WORLD_SIZE``, ``RANK``,
    ``LOCAL_RANK``), joining their process group on first use: NCCL for a CUDA device,
    gloo otherwise. Without torchrun, one process."""
    if not distributed():
        return Ranks()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_backend())


def distributed() -> bool:
    """Whether this process is one of several that torchrun started for one run
    (``WORLD_SIZE`` above 1, known before the process group is joined)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def main_process() -> bool:
    """Whether this process is rank 0, the one that writes and reports: under torchrun
    read from ``RANK`` (known before the process group is joined), otherwise true."""
    return int(os.environ.get("RANK", "0")) == 0


@contextlib.contextmanager
def sharing(ranks: Ranks):
    """Within the block, :func:`batch_share` returns ``ranks``: the losses and the mask
    module then compute their rank's part of the global batch (several ranks only)."""
    global _active
    _active = ranks if ranks.world > 1 else None
    try:
        yield
    finally:
        _active = None


def batch_share() -> Ranks | None:
    """The ranks that share the training step under way, or None (one process, or
    outside a training step: evaluation never exchanges anything)."""
    return _active


class RankBatches(Sampler[list[int]]):
    """This rank's share of each batch of ``batches`` (a ``BatchSampler`` of the global
    batch, ``drop_last=True``): contiguous, rank 0's first, so that the shares joined in
    rank order are the batch one process draws."""

    def __init__(self, batches, ranks: Ranks):
        if batches.batch_size % ranks.world:
            raise ValueError(f"train.batch_size={batches.batch_size} (the global batch) must divide by the "
                             f"{ranks.world} processes")
        self.batches, self.ranks = batches, ranks
        self.share = batches.batch_size // ranks.world

    def __iter__(self):
        first = self.ranks.rank * self.share
        for batch in self.batches:
            yield batch[first:first + self.share]

    def __len__(self) -> int:
        return len(self.batches)


class _AllReduce(torch.autograd.Function):
    """A sum over the ranks whose gradient is the sum of the ranks' gradients: every rank
    uses the sum, so each input's gradient gathers what every rank's loss sends it."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """2-d batch norm whose training statistics are those of the global batch, for
    processes on CPUs (gloo): torch's ``SyncBatchNorm`` runs on GPUs only.

    The per-channel sums are added across ranks with a differentiable all-reduce, so the
    backward pass is the global batch's too. In eval mode, or outside a shared training
    step (:func:`sharing`), it is ``BatchNorm2d``.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 4:
            raise ValueError(f"expected a 4-d input [B, C, H, W], got {input.dim()}-d")

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or batch_share() is None:
            return super().forward(x)
        self._check_input_dim(x)
        x = x.float()  # in fp32 under autocast too, as torch's batch norm is
        dims = (0, 2, 3)
        # the per-channel sums and the pixel count in one exchange: [C + 1]
        sums = _AllReduce.apply(torch.cat([x.sum(dims), x.new_full((1,), x.numel() / x.shape[1])]))
        count = sums[-1:]
        mean = sums[:-1] / count  # [C]
        var = _AllReduce.apply((x - mean[:, None, None]).pow(2).sum(dims)) / count  # biased, as BN normalizes
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean, momentum)
                self.running_var.lerp_(var * count / (count - 1), momentum)  # unbiased, as BN keeps it
        y = (x - mean[:, None, None]) * torch.rsqrt(var + self.eps)[:, None, None]
        return y * self.weight[:, None, None] + self.bias[:, None, None] if self.affine else y


class GlobalBatchDropout(nn.Dropout):
    """Dropout whose mask is the one a single process would draw: within a training step
    shared by several ranks (:func:`sharing`), every rank draws the mask of the whole
    global batch from the same random state and keeps its share. Elsewhere it is
    ``nn.Dropout``."""

    def forward(self, x: Tensor) -> Tensor:
        share = batch_share()
        if share is None or not self.training or self.p == 0:
            return super().forward(x)
        n = x.shape[0]
        noise = torch.empty((n * share.world, *x.shape[1:]), dtype=x.dtype, device=x.device).bernoulli_(1 - self.p)
        noise = noise[share.rank * n:(share.rank + 1) * n].div_(1 - self.p)  # as torch scales the kept units
        return x * noise


def global_batch_dropout(model: nn.Module) -> nn.Module:
    """``model`` with every ``nn.Dropout`` replaced, in place, by :class:`GlobalBatchDropout`;
    ValueError for any other kind of dropout, whose masks would differ from one process's."""
    for name, child in model.named_children():
        if type(child) is nn.Dropout:
            setattr(model, name, GlobalBatchDropout(child.p, child.inplace))
        elif isinstance(child, nn.modules.dropout._DropoutNd):
            raise ValueError(f"{name}: {type(child).__name__} is not shared among processes (only nn.Dropout is)")
        else:
            global_batch_dropout(child)
    return model


def sync_batch_norm(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with every batch norm computed over the global batch: torch's
    ``SyncBatchNorm`` on a GPU, :class:`CPUSyncBatchNorm` on the CPU (the same weight
    and statistics tensors, in place)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if isinstance(child, nn.BatchNorm2d):
            synced = CPUSyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                      child.track_running_stats)
            for tensor, value in [*child.named_parameters(recurse=False), *child.named_buffers(recurse=False)]:
                setattr(synced, tensor, value)  # the same tensors: an optimizer built before still updates them
            synced.train(child.training)
            setattr(model, name, synced)
        else:
            sync_batch_norm(child, device)
    return model
