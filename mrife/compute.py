"""Where and how a run computes: device, CPU threads, numeric precision, memory format.

``train.precision`` is ``"fp32"``; ``"bf16"`` (autocast to bfloat16, on a CPU or a GPU;
fast on CPUs with AVX512-BF16 or AMX and on GPUs from Ampere on, emulated and slow
elsewhere); ``"fp16"`` (autocast to float16 with a gradient scaler, CUDA only); or
``"auto"``: bf16 where the device computes it natively, fp32 otherwise. Autocast keeps
the reductions of the losses (cross-entropy, softmax, the contrasts) in fp32.

``train.threads`` (0: every core this process may use) is applied with
``torch.set_num_threads``: two processes that each use every core slow each other down
many times over (OpenMP oversubscription), so parallel jobs must share the cores out.
``train.channels_last`` stores images and convolution weights channels-last, which
oneDNN and cuDNN run faster on many machines.

``train.deterministic`` asks torch for deterministic algorithms and turns cuDNN's
autotuning off; without it (the default) cuDNN times its convolution algorithms on the
first batches and keeps the fastest (``cudnn.benchmark``). On a CPU both are the same:
one process with a fixed thread count repeats itself bit for bit. On a GPU the cost of
determinism has not been measured by this project (no GPU was lent to it); ops with no
deterministic CUDA kernel (bilinear upsampling's backward) warn rather than stop.
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_kind() -> str:
    """Which kind of CPU computed, as far as rounding goes: torch's instruction set in use
    and the vendor, e.g. ``"AVX512 GenuineIntel"``; with the instruction set forced below
    the CPU's own (``ATEN_CPU_CAPABILITY=avx2`` on an AVX-512 CPU) it says so, since that
    rounds like neither kind (``"AVX2 AuthenticAMD, forced on an AVX512 CPU"``)."""
    capability = torch.backends.cpu.get_cpu_capability()
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        flags = ""
    own = "AVX512" if " avx512f" in flags else "AVX2" if " avx2" in flags else capability
    kind = f"{capability} {processor_vendor()}"
    return kind if capability == own or not flags else f"{kind}, forced on an {own} CPU"


def device_kind(device: torch.device) -> str:
    """What a run on ``device`` rounds like: :func:`cpu_kind` on the CPU, the GPU's name on
    CUDA (as a run's ``provenance.json`` records it: ``cpu_kind``, else ``processor``)."""
    return cpu_kind() if device.type == "cpu" else torch.cuda.get_device_name(device)


def processor_vendor() -> str:
    """The CPU's vendor, ``"GenuineIntel"`` or ``"AuthenticAMD"`` (``/proc/cpuinfo`` on
    Linux; ``"unknown"`` elsewhere): at one instruction set the two round differently."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return "unknown"


def processor() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; the architecture elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve_device(name: str) -> torch.device:
    """``"auto"`` is CUDA when present, else the CPU; ``"cuda"`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA device; use auto or cpu")
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 matrix products natively."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def resolve_precision(name: str, device: torch.device) -> str:
    """``"fp32"``, ``"bf16"`` or ``"fp16"``: ``name`` with ``"auto"`` decided for ``device``."""
    if name not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {PRECISIONS}, got {name!r}")
    if name == "fp16" and device.type != "cuda":
        raise ValueError(f"train.precision=fp16 needs a CUDA device (for its gradient scaler), got {device}; "
                         "use bf16 or fp32 on a CPU")
    if name == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return name


@dataclass(frozen=True)
class Compute:
    """The resolved ``device``, ``precision`` (fp32, bf16 or fp16) and memory format of a run."""

    device: torch.device
    precision: str = "fp32"
    channels_last: bool = False

    @classmethod
    def from_config(cls, train) -> "Compute":
        """From a :class:`~mrife.config.TrainConfig`; also sets this process's CPU threads."""
        threads = train.threads or cores()
        if threads < 1:
            raise ValueError(f"train.threads must be >= 0 (0: every core), got {train.threads}")
        torch.set_num_threads(threads)
        device = resolve_device(train.device)
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's condition for determinism
            torch.backends.cudnn.benchmark = not train.deterministic
        torch.use_deterministic_algorithms(train.deterministic, warn_only=True)
        return cls(device, resolve_precision(train.precision, device), train.channels_last)

    def on_rank(self, local_rank: int) -> "Compute":
        """The same, on GPU ``local_rank`` of this machine for a CUDA device (one GPU per
        process under torchrun); a CPU stays the CPU."""
        if self.device.type != "cuda":
            return self
        torch.cuda.set_device(local_rank)
        return replace(self, device=torch.device("cuda", local_rank))

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def inputs(self, batch: dict) -> tuple[Tensor, Tensor]:
        """A batch's images ``[B, 3, H, W]`` and masks ``[B, H, W]`` on the device, in its format."""
        return batch["image"].to(self.device, memory_format=self.memory_format), batch["mask"].to(self.device)

    def autocast(self):
        """The context forward passes run in: autocast for bf16 / fp16, nothing for fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.precision])

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, active for fp16 only (a pass-through otherwise)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
