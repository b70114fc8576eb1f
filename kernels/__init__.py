"""Kernels of mrife, installed as the subpackage ``mrife.kernels``.

``masked_supcon`` is the SFCE term (paper Eq. 4-6) computed from the feature maps and the
masked positions directly: a fused Triton kernel on CUDA (and under Triton's CPU
interpreter), the eager reference or a bounded-memory chunked path on CPU. See
``README.md`` beside this file for the backends, the ahead-of-time compile check and the
benchmark. ``supervised_contrastive`` and ``gather_rows`` are the eager reference it is
checked against. The package imports nothing else of ``mrife``: it is a leaf that
``mrife.losses`` builds on.
"""

from .masked_supcon import BACKENDS, masked_supcon
from .reference import gather_rows, supervised_contrastive

__all__ = ["BACKENDS", "masked_supcon", "gather_rows", "supervised_contrastive"]
