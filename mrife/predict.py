"""Landslide probability over whole scenes, from a trained run.

A scene is read window by window -- a window is the run's tile (``data.tile_size`` scene
pixels) -- and each window is prepared exactly as the run's tiles were
(:func:`mrife.data.dataset.prepare`: histogram equalization over the pixels with data,
scaling to the input size, ImageNet normalization). Pixels without data (the file's
nodata value, or transparent) enter no statistic and get no prediction (NaN). Windows overlap; their landslide probabilities, scaled back to
scene pixels, are blended with a weight that falls smoothly towards a window's border,
so no seam shows where windows meet. Only one batch of windows is in memory at a time,
read from disk with windowed reads; the output is one float32 array of the scene's size.

    from mrife.predict import predict
    probability = predict("results/cpu/mrife-0fd563970c", "scene.tif")  # float32 [H, W]

:mod:`mrife.gis` turns the probability into a mask, polygons and a quick-look;
``mrife predict`` does both for a list of files. :func:`score_folder` scores the maps of a
labelled folder's scenes, each mapped whole (``mrife evaluate RUN --data FOLDER``).
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rasterio.windows import Window

from mrife.compute import resolve_device
from mrife.config import RunConfig
from mrife.data.dataset import prepare
from mrife.data.folder import IMAGE_SUFFIXES, FolderDataset, read_mask
from mrife.data.raster import Raster
from mrife.data.tiling import window_starts
from mrife.data.transforms import MEAN, STD, normalize
from mrife.labels import IGNORE, LANDSLIDE
from mrife.gis import MASK_NODATA, mask_of
from mrife.metrics import METRIC_NAMES, ConfusionMatrix
from mrife.progress import tqdm
from mrife.runs import load_normalization, load_run


class ArrayScene:
    """An image already in memory, read like a :class:`~mrife.data.raster.Raster`.

    image: [H, W, C] (C = 3 for RGB), uint8 (divided by 255) or float in [0, 1]; NaN
    pixels are no data.
    """

    georeferenced = False

    def __init__(self, image: np.ndarray):
        image = np.asarray(image)
        if image.ndim != 3:
            raise ValueError(f"image of shape {image.shape}: expected [H, W, C] (C = 3 for RGB)")
        if image.dtype == np.uint8:
            image = image.astype(np.float32) / 255.0
        elif not np.issubdtype(image.dtype, np.floating):
            raise ValueError(f"image of dtype {image.dtype}: expected uint8, or float in [0, 1]")
        elif np.nanmin(image) < 0 or np.nanmax(image) > 1:
            raise ValueError("float image with values outside [0, 1]: scale it first")
        self.image = image.astype(np.float32)
        self.height, self.width, self.bands = image.shape

    def read(self, window: Window | None = None, shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(image float32 [h, w, C], valid bool [h, w])`` of ``window`` (default: all),
        sampled (nearest) to ``shape`` when given."""
        part = self.image if window is None else self.image[window.toslices()]
        if shape:
            rows = np.linspace(0, part.shape[0] - 1, shape[0]).round().astype(int)
            cols = np.linspace(0, part.shape[1] - 1, shape[1]).round().astype(int)
            part = part[rows][:, cols]
        valid = ~np.isnan(part).any(-1)
        return np.nan_to_num(part), valid


def blend_weight(size: int) -> np.ndarray:
    """float64 [size]: a window's weight along one axis, sin^2 from near 0 at the borders
    to 1 at the centre, never 0 (a border pixel covered by one window keeps its value)."""
    return np.sin(np.pi * (np.arange(size) + 0.5) / size) ** 2


def windows_of(height: int, width: int, size: int, overlap: float) -> tuple[list[int], list[int]]:
    """Window rows and columns (top-left corners, scene pixels) for ``overlap`` in [0, 1).

    Windows are ``size`` pixels, taken every ``size * (1 - overlap)``; the last one along
    each axis ends at the scene's edge (a scene smaller than a window: one window, padded).
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap {overlap} must be in [0, 1) (a fraction of the window)")
    stride = max(1, round(size * (1 - overlap)))
    return window_starts(height, size, stride, pad_edges=False), window_starts(width, size, stride, pad_edges=False)


def _weight_sums(length: int, starts: list[int], weight: np.ndarray) -> np.ndarray:
    """float64 [length]: the sum of the window weights over every window covering each pixel."""
    total = np.zeros(length)
    for start in starts:
        n = min(len(weight), length - start)
        total[start:start + n] += weight[:n]
    return total


def _window_batch(scene, corners, cfg: RunConfig, normalization) -> tuple[torch.Tensor, list[tuple[int, int, np.ndarray]]]:
    """The network's input for windows at ``corners`` [B, C, S, S], and each window's
    ``(height, width, valid)`` inside the scene."""
    size, inputs, kept = cfg.data.tile_size, [], []
    for y, x in corners:
        h, w = min(size, scene.height - y), min(size, scene.width - x)
        part, valid = scene.read(Window(x, y, w, h))
        tile = np.zeros((size, size, part.shape[2]), np.float32)  # padded past the scene's edge, as tiles are
        tile[:h, :w] = part
        nodata = np.ones((size, size), bool)  # no data and padding: left out of the equalization, as in training
        nodata[:h, :w] = ~valid
        image, _ = prepare(tile, np.zeros((size, size), np.uint8), cfg.data.input_size, cfg.data.equalize, nodata)
        inputs.append(image)
        kept.append((h, w, valid))
    return normalize(torch.from_numpy(np.stack(inputs)).float() / 255.0, *normalization), kept


@torch.inference_mode()
def probability_map(model: torch.nn.Module, cfg: RunConfig, scene, overlap: float = 0.5, batch_size: int = 8,
                    device: str | torch.device = "cpu", progress: bool = True, normalization=None) -> np.ndarray:
    """Landslide probability of every pixel of ``scene``: float32 [H, W] in [0, 1], NaN
    where the scene has no data (nodata or transparent).

    Args:
        model: a trained model of ``cfg`` (put in eval mode and moved to ``device`` here).
        scene: a :class:`~mrife.data.raster.Raster`, an :class:`ArrayScene`, or anything
            with ``height``, ``width`` and ``read(window) -> (image, valid)``.
        overlap: the fraction of a window its neighbour shares (0.5: half a window).
        batch_size: windows per forward pass.
        normalization: the run's per-band ``(mean, std)`` (:func:`mrife.runs.load_normalization`);
            by default ImageNet's, which an RGB run uses.
    """
    if scene.bands != cfg.data.bands:
        raise ValueError(f"the scene has {scene.bands} bands and the run takes {cfg.data.bands} (data.bands)")
    if normalization is None:
        if cfg.data.bands != 3:
            raise ValueError("a run whose bands are not RGB needs its normalization (mrife.runs.load_normalization)")
        normalization = (MEAN, STD)
    device = torch.device(device)
    model = model.eval().to(device)
    size = cfg.data.tile_size
    rows, cols = windows_of(scene.height, scene.width, size, overlap)
    weight = blend_weight(size)
    blended = np.zeros((scene.height, scene.width), np.float32)
    corners = [(y, x) for y in rows for x in cols]
    with tqdm(total=len(corners), desc="windows", unit="window", disable=not progress) as bar:
        for first in range(0, len(corners), batch_size):
            batch = corners[first:first + batch_size]
            images, kept = _window_batch(scene, batch, cfg, normalization)
            logits = model(images.to(device)).float()  # [B, 2, S, S]
            probability = F.interpolate(logits.softmax(1)[:, LANDSLIDE:LANDSLIDE + 1], size=(size, size),
                                        mode="bilinear", align_corners=False)[:, 0].cpu().numpy()
            for (y, x), (h, w, valid), p in zip(batch, kept, probability):
                p = np.where(valid, p[:h, :w], np.nan)  # no data stays NaN through the blend
                blended[y:y + h, x:x + w] += p * np.outer(weight[:h], weight[:w])
            bar.update(len(batch))
    # The windows form a grid and the weight is a product of row and column weights, so
    # the total weight is too: divided axis by axis, no second scene-sized array.
    blended /= _weight_sums(scene.height, rows, weight).astype(np.float32)[:, None]
    blended /= _weight_sums(scene.width, cols, weight).astype(np.float32)[None, :]
    return blended


def scene_paths(inputs) -> list[Path]:
    """The image files that ``inputs`` name, as people pass them: a file as it is; a folder:
    its image files (:data:`~mrife.data.folder.IMAGE_SUFFIXES`), sorted by name; a glob
    pattern (``"scenes/*.tif"``, quoted so the shell leaves it): its matches, sorted. An
    input that names no image file is an error naming it."""
    paths, unmatched = [], []
    for item in map(Path, inputs):
        if item.is_file():
            found = [item]
        elif item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found = sorted(Path(p) for p in glob.glob(str(item)) if Path(p).is_file())
        if not found:
            unmatched.append(f"{item} (a folder without image files)" if item.is_dir() else str(item))
        paths += found
    if unmatched:
        raise FileNotFoundError(f"input not found: {', '.join(unmatched)}; pass image files "
                                f"({', '.join(IMAGE_SUFFIXES)}), folders of them or glob patterns")
    return list(dict.fromkeys(paths))  # a file named twice is mapped once


def open_scene(image, bands: int = 3) -> Raster | ArrayScene:
    """A path (opened as a :class:`~mrife.data.raster.Raster` of ``bands`` bands: call
    ``close``), an array, or a scene as it is."""
    if isinstance(image, (str, Path)):
        return Raster(image, bands)
    if isinstance(image, np.ndarray):
        return ArrayScene(image)
    return image


def predict(run, image, overlap: float = 0.5, batch_size: int = 8, device: str = "auto",
            progress: bool = True) -> np.ndarray:
    """Landslide probability float32 [H, W] of ``image`` (a path or an [H, W, C] array) with
    the best checkpoint of the run directory ``run``, or ``run = (cfg, model)`` (RGB)."""
    if isinstance(run, (str, Path)):
        cfg, model = load_run(run)
        normalization = load_normalization(run, cfg)
    else:
        (cfg, model), normalization = run, None
    scene = open_scene(image, cfg.data.bands)
    try:
        return probability_map(model, cfg, scene, overlap, batch_size, resolve_device(device), progress,
                               normalization)
    finally:
        if isinstance(scene, Raster):
            scene.close()


def score_folder(run, folder, threshold: float = 0.5, overlap: float = 0.5, batch_size: int = 8,
                 device: str = "auto", progress: bool = True, normalization=None):
    """The metrics of a run's whole-scene maps on a labelled folder (``images/`` and
    ``masks/``, paired as :class:`~mrife.data.FolderDataset` pairs them).

    Each scene is mapped whole as ``mrife predict`` maps it (the mask at ``threshold``) and
    scored against its mask over the pixels with data. Returns a DataFrame indexed by
    scene, then ``"pooled"`` (every scene's pixels counted together, as the paper pools),
    with columns ``TP``, ``FP``, ``FN``, ``TN`` (pixels) and :data:`~mrife.metrics.METRIC_NAMES`;
    ``table.attrs`` holds ``threshold`` and ``overlap``. ``run``: a run directory, or
    ``(cfg, model)`` with its ``normalization`` (as :func:`probability_map` takes it).
    """
    import pandas as pd

    if not 0 < threshold < 1:  # refused before any scene is read
        raise ValueError(f"threshold {threshold} must be between 0 and 1")
    if isinstance(run, (str, Path)):
        cfg, model = load_run(run)
        normalization = load_normalization(run, cfg)
    else:
        cfg, model = run
    dataset = FolderDataset(folder, cfg.data.bands)
    device = resolve_device(device)
    matrices = {}
    for i, name in enumerate(dataset.names):
        image_path, mask_path = dataset.paths(i)
        with Raster(image_path, cfg.data.bands) as scene:
            probability = probability_map(model, cfg, scene, overlap, batch_size, device, progress, normalization)
        predicted = mask_of(probability, threshold)
        label = read_mask(mask_path)
        label[predicted == MASK_NODATA] = IGNORE  # no data: no prediction, not counted
        matrices[name] = ConfusionMatrix()
        matrices[name].update(torch.from_numpy(predicted), torch.from_numpy(label))
    matrices["pooled"] = ConfusionMatrix.pooled(matrices.values())
    table = pd.DataFrame([{"TP": cm.tp, "FP": cm.fp, "FN": cm.fn, "TN": cm.tn, **cm.compute()}
                          for cm in matrices.values()], index=pd.Index(list(matrices), name="scene"))
    table = table[["TP", "FP", "FN", "TN", *METRIC_NAMES]]
    table.attrs.update(threshold=threshold, overlap=overlap)
    return table
