"""Cutting scenes into tiles, splitting them by scene, and the paper's Table I.

The paper trains on 512 x 512 images cut from large scenes and splits them 6:2:2
(Table I). Tiles of one scene overlap and share one site, so the split is drawn over
scenes, never over tiles: otherwise the test set would hold near-copies of training
tiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mrife.data.errors import DataError
from mrife.data.folder import Scene
from mrife.labels import IGNORE, LANDSLIDE

SPLITS = ("train", "val", "test")
TABLE_COLUMNS = {"train": "Training", "val": "Validation", "test": "Test"}


@dataclass
class Tile:
    """A square window of a scene.

    scene: the scene's name; y, x: the window's top-left corner in the scene (pixels);
    image: float32 [S, S, C] in [0, 1]; mask: uint8 [S, S] in {0, 1, 255}. Where the
    window runs past the scene's edge, the image is zero and the mask ``IGNORE`` (255):
    padding is neither trained on nor counted. nodata: bool [S, S], True where the tile
    has no data (the scene's file has none there, or the padding), or None when it has
    data everywhere; those pixels enter no statistic (:func:`mrife.data.dataset.prepare`).
    """

    scene: str
    y: int
    x: int
    image: np.ndarray
    mask: np.ndarray
    nodata: np.ndarray | None = None

    @property
    def has_slide(self) -> bool:
        """Whether the tile holds any landslide pixel (Table I's "Slide")."""
        return bool((self.mask == LANDSLIDE).any())

    def __repr__(self) -> str:
        size = self.mask.shape[0]
        return f"Tile({self.scene!r}, y={self.y}, x={self.x}, {size}x{size}, slide={self.has_slide})"


def window_starts(length: int, size: int, stride: int, pad_edges: bool) -> list[int]:
    """Window starts along one axis: every `stride` pixels, the last window aligned to the
    far edge, or (`pad_edges`) running past it."""
    if length <= size:
        return [0]
    if pad_edges:
        return list(range(0, length - size + stride, stride))  # the last window passes the edge
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)  # so that no border row/column is dropped
    return starts


def tile_scenes(scenes: Sequence[Scene], size: int, stride: int | None = None,
                pad_edges: bool = False) -> list[Tile]:
    """Cut every scene into size x size tiles taken every `stride` pixels (default: size).

    By default the last row and column of tiles end at the scene's edge, so they overlap
    their neighbours rather than dropping pixels. With ``pad_edges`` they run past the
    edge instead, padded (image 0, mask ``IGNORE``): at ``stride == size`` no pixel is then
    in two tiles, as validation and test need. A scene smaller than `size` along an axis is
    padded at the bottom/right either way. Tiles are copies: editing one leaves the scene
    intact.
    """
    stride = size if stride is None else stride
    if size < 1 or stride < 1:
        raise ValueError(f"tile size {size} and stride {stride} must be positive")
    tiles = []
    for scene in scenes:
        h, w = scene.mask.shape
        if scene.image.shape[:2] != (h, w):
            raise DataError(
                f"scene {scene.name!r}: image {scene.image.shape[:2]} and mask {(h, w)} "
                "differ in size"
            )
        for y in window_starts(h, size, stride, pad_edges):
            for x in window_starts(w, size, stride, pad_edges):
                image = np.zeros((size, size, scene.image.shape[2]), np.float32)
                mask = np.full((size, size), IGNORE, np.uint8)
                window_image = scene.image[y : y + size, x : x + size]
                th, tw = window_image.shape[:2]
                image[:th, :tw] = window_image
                mask[:th, :tw] = scene.mask[y : y + size, x : x + size]
                nodata = _tile_nodata(scene, y, x, size)
                if nodata is not None:  # no data: neither trained on nor counted
                    mask[nodata] = IGNORE
                tiles.append(Tile(scene.name, y, x, image, mask, nodata))
    return tiles


def _tile_nodata(scene: Scene, y: int, x: int, size: int) -> np.ndarray | None:
    """bool [size, size]: where the window at (y, x) has no data -- the scene's no-data
    pixels, and the padding past the scene's edge -- or None when it has data everywhere."""
    h, w = scene.mask.shape
    nodata = np.ones((size, size), bool)
    th, tw = min(size, h - y), min(size, w - x)
    nodata[:th, :tw] = False if scene.nodata is None else scene.nodata[y : y + th, x : x + tw]
    return nodata if nodata.any() else None


def _allocate(n: int, ratios: np.ndarray) -> np.ndarray:
    """Split n items into parts proportional to ratios (largest remainder)."""
    exact = n * ratios
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def _check_ratios(ratios: Sequence[float]) -> np.ndarray:
    ratios = np.asarray(ratios, dtype=float)
    if ratios.shape != (3,) or (ratios <= 0).any():
        raise ValueError(
            f"ratios {tuple(ratios.tolist())} must be three positive numbers "
            "(train, val, test), e.g. (0.6, 0.2, 0.2)"
        )
    return ratios / ratios.sum()


def split_by_scene(
    tiles: Sequence[Tile], ratios: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
) -> dict[str, list[Tile]]:
    """Split tiles into {"train", "val", "test"} by scene, stratified by landslide presence.

    Scenes with and scenes without any landslide pixel are shuffled separately (seeded)
    and each group is shared out by `ratios`, so every part gets its share of both kinds.
    Every part gets at least one scene; that needs at least 3 scenes. Tiles keep their
    input order within a part.
    """
    ratios = _check_ratios(ratios)
    scenes: dict[str, bool] = {}  # scene name -> holds a landslide, in order of appearance
    for tile in tiles:
        scenes[tile.scene] = scenes.get(tile.scene, False) or tile.has_slide
    if len(scenes) < 3:
        raise DataError(
            f"cannot split {len(scenes)} scene(s) {list(scenes)} into train/val/test by "
            "scene: at least 3 scenes are needed (tiles of one scene are correlated, so "
            "they must not be split apart); add scenes"
        )
    rng = np.random.default_rng(seed)
    strata = [[name for name, slide in scenes.items() if slide == kind] for kind in (True, False)]
    strata = [[group[i] for i in rng.permutation(len(group))] for group in strata]
    counts = np.stack([_allocate(len(group), ratios) for group in strata])  # [stratum, part]
    # a small set can leave a part empty: move one scene from the largest part into it
    for part in np.flatnonzero(counts.sum(0) == 0):
        donor = int(np.argmax(counts.sum(0)))
        stratum = int(np.argmax(counts[:, donor]))
        counts[stratum, donor] -= 1
        counts[stratum, part] += 1
    part_of = {}
    for group, group_counts in zip(strata, counts):
        bounds = np.cumsum(group_counts)
        for i, name in enumerate(group):
            part_of[name] = SPLITS[int(np.searchsorted(bounds, i, side="right"))]
    return {part: [tile for tile in tiles if part_of[tile.scene] == part] for part in SPLITS}


def table_one(splits: dict[str, Sequence[Tile]]) -> pd.DataFrame:
    """Tiles with ("Slide") and without ("Non-slide") landslide pixels per part.

    The analogue of the paper's Table I: rows Slide / Non-slide, columns Training,
    Validation, Test.
    """
    missing = [part for part in SPLITS if part not in splits]
    if missing:
        raise KeyError(f"splits lacks {missing}; expected the keys {list(SPLITS)} of split_by_scene")
    counts = {}
    for part in SPLITS:
        slide = sum(tile.has_slide for tile in splits[part])
        counts[TABLE_COLUMNS[part]] = [slide, len(splits[part]) - slide]
    return pd.DataFrame(counts, index=["Slide", "Non-slide"])


def print_table_one(splits: dict[str, Sequence[Tile]]) -> None:
    """Print `table_one(splits)` with the number of scenes per part."""
    table = table_one(splits)
    scenes = {TABLE_COLUMNS[p]: len({t.scene for t in splits[p]}) for p in SPLITS}
    print("Tiles per part (scenes: " + ", ".join(f"{k} {v}" for k, v in scenes.items()) + ")")
    print(table.to_string())
