"""Fixtures the test files share: runs shrunk to seconds, and one thread for tiny tensors."""

from __future__ import annotations

import pytest
import torch

# A smoke run shrunk to seconds: 4 synthetic scenes of 64 px, 64-px tiles seen at 32 px,
# batch 2, one epoch. Later overrides win, so a test appends what it needs to change.
TINY = ["data.synthetic_scenes=4", "data.synthetic_size=64", "data.tile_size=64", "data.input_size=32",
        "train.batch_size=2", "train.epochs=1"]


@pytest.fixture
def tiny() -> list[str]:
    """The overrides of :data:`TINY`, for ``load_profile("smoke", [*tiny, ...])``."""
    return list(TINY)


@pytest.fixture
def tiny_smoke(monkeypatch) -> None:
    """The ``smoke`` profile itself shrunk by :data:`TINY`, for tests that train through
    ``mrife reproduce``: the results readers then find the runs under the same config hash."""
    from mrife import config

    monkeypatch.setitem(config.PROFILES, "smoke", [*config.PROFILES["smoke"], *TINY])


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one thread avoids OpenMP's overhead (and contention on a shared CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
