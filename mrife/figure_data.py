"""What the book draws from a trained model, kept beside the run so that no checkpoint is
needed to draw it: the predictions of Fig. 4 and the Grad-CAM maps of Figs. 5, 7 and 8.

``mrife reproduce`` writes ``figures.npz`` into each run of an experiment it trains
(the candidates of an open choice are never drawn), and into every finished one that
still has its checkpoint but not the file (so running it again adds the file to runs
trained before it existed). The file holds, for the figure tiles of
the run's test split (:func:`figure_tiles`: the :data:`N_TILES` test tiles with the most
of both landslide edge and interior blocks, :func:`mrife.masking.illustrative_tiles`
with the paper's 8-px blocks, the same tiles for every model of a profile):

- ``tiles`` int64 ``[N]``: indices into the test :class:`~mrife.data.TileDataset`, and
  ``scenes`` ``[N]``: the scene of each tile;
- ``prediction`` uint8 ``[N, H, W]``: the best checkpoint's argmax, 1 = landslide;
- ``cam/<layer>`` uint8 ``[N, H, W]``: the Grad-CAM map of each layer the model names
  (``model.cam_layers()``), scoring the labelled landslide pixels, in [0, 1] stored in
  steps of 1/255 (a figure shows colours, a table three decimals).

A 96-px ``cpu`` tile makes the file about 30 kB. Example::

    data = read(run)                      # FigureData
    data.prediction                       # [N, H, W] int64 in {0, 1}
    data.heat["enhancement"]              # [N, H, W] float32 in [0, 1]
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import default_collate

from mrife.cam import cam, cam_layers
from mrife.config import RunConfig
from mrife.data import TileDataset
from mrife.loaders import build_splits
from mrife.masking import illustrative_tiles
from mrife.runs import atomic_write, load_run

FILE = "figures.npz"
N_TILES = 3
BLOCK = 8  # px: the paper's block, for every model (a 16-px-block run shows the same tiles)


@dataclass
class FigureData:
    """A run's ``figures.npz``, as tensors (see the module docstring for each field)."""

    tiles: list[int]
    scenes: list[str]
    prediction: Tensor  # int64 [N, H, W] in {0, 1}
    heat: dict[str, Tensor]  # layer -> float32 [N, H, W] in [0, 1]


def test_split(cfg: RunConfig, progress: bool = True) -> TileDataset:
    """The test split of ``cfg``'s data as the model sees it (normalized, not augmented);
    ``progress``: a bar while the scenes are read."""
    return TileDataset(build_splits(cfg, progress)["test"], cfg.data.input_size, equalize=cfg.data.equalize)


def figure_tiles(test: TileDataset) -> list[int]:
    """The indices of the :data:`N_TILES` figure tiles of a test split."""
    return illustrative_tiles(test.masks, BLOCK, N_TILES)


def tile_batch(cfg: RunConfig, tiles: list[int] | None = None) -> dict:
    """The figure tiles of ``cfg``'s test split as one batch: ``image`` ``[N, 3, H, W]``
    (normalized), ``mask`` ``[N, H, W]``, ``scene`` (names), for drawing beside a run's
    :class:`FigureData`. ``tiles`` (a run's stored indices) must be the figure tiles of
    this data: a ValueError otherwise (the data or its tiling changed since the run)."""
    test = test_split(cfg)
    picked = figure_tiles(test)
    if tiles is not None and list(tiles) != picked:
        raise ValueError(f"the stored figure tiles {list(tiles)} are not this data's {picked}: the data or its "
                         "tiling changed since the run was trained")
    return default_collate([test[i] for i in picked])


def compute(cfg: RunConfig, model: torch.nn.Module, progress: bool = True) -> dict[str, np.ndarray]:
    """The arrays of ``figures.npz`` for ``model`` (eval mode, on the CPU) trained with ``cfg``: any
    model with ``cam_layers()`` (:class:`mrife.models.SegmentationModel`)."""
    layers = cam_layers(model)  # a model that names none: a clear TypeError, before any work
    test = test_split(cfg, progress)
    tiles = figure_tiles(test)
    batch = default_collate([test[i] for i in tiles])
    with torch.no_grad():
        logits = model(batch["image"])
    arrays = {"tiles": np.asarray(tiles, dtype=np.int64), "scenes": np.asarray(batch["scene"], dtype=str),
              "prediction": logits.argmax(1).to(torch.uint8).numpy()}
    for layer in layers:
        heat = cam(model, batch["image"], layer, target_mask=batch["mask"])  # [N, H, W] in [0, 1]
        arrays[f"cam/{layer}"] = (heat * 255).round().to(torch.uint8).numpy()
    return arrays


def write(run: str | Path, progress: bool = True) -> Path:
    """Compute and write ``<run>/figures.npz`` from the run's best checkpoint (atomically)."""
    run = Path(run)
    cfg, model = load_run(run)
    arrays = compute(cfg, model, progress)

    def save(path: Path) -> None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # to a buffer: savez would add ".npz" to a temporary name
        path.write_bytes(buffer.getvalue())

    atomic_write(run / FILE, save)
    return run / FILE


def read(run: str | Path) -> FigureData:
    """A run's figure data; FileNotFoundError saying how to produce it when missing."""
    path = Path(run) / FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; `mrife reproduce` writes it from the run's checkpoint "
                                "(a run without one must be trained again: `mrife reproduce --force ...`)")
    with np.load(path, allow_pickle=False) as data:
        heat = {key.removeprefix("cam/"): torch.from_numpy(data[key].astype(np.float32) / 255)
                for key in data.files if key.startswith("cam/")}
        return FigureData(data["tiles"].tolist(), data["scenes"].tolist(),
                          torch.from_numpy(data["prediction"].astype(np.int64)), heat)
