"""A torch Dataset over tiles: the paper's preprocessing and augmentation (Sec. IV-A)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mrife.data.tiling import Tile
from mrife.data.transforms import equalize as equalize_histogram
from mrife.data.transforms import MEAN, STD, joint_flip_rot, normalize, pad_and_resize, to_uint8
from mrife.labels import IGNORE


def prepare(image: np.ndarray, mask: np.ndarray, input_size: int, equalize: bool = True,
            nodata: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The deterministic preprocessing of one tile, the same for training, evaluation and
    prediction (:mod:`mrife.predict`).

    image: float32 [H, W, C] in [0, 1]; mask: uint8 [H, W]; nodata: bool [H, W] or None,
    True where the image's file has no data (nodata value or transparent). Returns uint8
    [C, S, S] and uint8 [S, S] (S = ``input_size``): per-channel histogram equalization
    over the pixels with data (no-data pixels set to 0 and labelled ``IGNORE``), then
    zero-padding to a square and scaling to S x S. Without no-data pixels the result is
    what it was before ``nodata`` existed, bit for bit (the committed runs stay valid).
    """
    if nodata is not None and nodata.any():
        mask = np.where(nodata, IGNORE, mask).astype(np.uint8)
        image = image if equalize else np.where(nodata[..., None], 0.0, image).astype(np.float32)
    image = equalize_histogram(image, nodata) if equalize else image
    image, mask = pad_and_resize(image, mask, input_size)
    return to_uint8(image).transpose(2, 0, 1), mask  # [S, S, C] -> [C, S, S]


def band_statistics(dataset: "TileDataset") -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-band mean and standard deviation of a dataset's prepared tiles, in [0, 1] units:
    the normalization of a run whose bands are not RGB (computed on its training split).
    Pixels without data (``dataset.nodata``: the scenes' own, and padding past a scene's
    edge) are left out."""
    total = total_sq = count = 0.0
    for first in range(0, len(dataset), 64):  # a few tiles at a time: no float copy of them all
        values = dataset.images[first:first + 64].double() / 255.0  # [n, C, S, S]
        if dataset.nodata is None:
            total = total + values.sum(dim=(0, 2, 3))
            total_sq = total_sq + values.square().sum(dim=(0, 2, 3))
            continue
        weight = (~dataset.nodata[first:first + 64]).double()[:, None]  # [n, 1, S, S]
        total = total + (values * weight).sum(dim=(0, 2, 3))
        total_sq = total_sq + (values.square() * weight).sum(dim=(0, 2, 3))
        count = count + weight.sum()
    count = dataset.images[:, 0].numel() if dataset.nodata is None else max(float(count), 1.0)
    mean = total / count
    std = (total_sq / count - mean.square()).clamp(min=0).sqrt().clamp(min=1e-3)  # a constant band: no 0
    return tuple(mean.tolist()), tuple(std.tolist())


class TileDataset(Dataset):
    """Tiles ready for the network.

    Item i is {"image": float32 [C, S, S] normalized by ``mean`` and ``std`` per band
    (ImageNet's by default),
    "mask": int64 [S, S] in {0, 1}, "scene": str} with S = input_size.

    The deterministic part (per-channel histogram equalization, zero-padding to a
    square, scaling to S x S) is computed once here and kept as uint8 (a quarter of the
    float32 memory), so that an item only costs a flip, a rotation and a normalization.
    Equalization comes before padding so that the zero padding does not enter the
    histogram; a tile's no-data pixels (``tile.nodata``: where the scene's file has none,
    and the padding past the scene's edge) do not enter it either, and are labelled ``IGNORE``. ``nodata`` keeps them, scaled
    (bool [N, S, S], or None when no tile has any), for :func:`band_statistics`.

    With augment, item i of epoch e is flipped horizontally and vertically with
    probability 1/2 each and turned by k quarter turns, k uniform in 0..3, drawn from a
    generator seeded by (seed, e, i): the same item of the same epoch is always the
    same, whatever the worker or order. Call `set_epoch(e)` before each epoch (with
    DataLoader workers, do not use persistent_workers, which keep an old copy).
    """

    def __init__(
        self,
        tiles: Sequence[Tile],
        input_size: int,
        equalize: bool = True,
        augment: bool = False,
        seed: int = 0,
        mean=MEAN,
        std=STD,
    ):
        if len(tiles) == 0:
            raise ValueError("TileDataset got no tiles; check the split or the data folder")
        self.input_size = input_size
        self.augment = augment
        self.seed = seed
        self.mean, self.std = tuple(mean), tuple(std)
        self.epoch = 0
        self.scenes = [tile.scene for tile in tiles]
        images = np.empty((len(tiles), tiles[0].image.shape[2], input_size, input_size), np.uint8)
        masks = np.empty((len(tiles), input_size, input_size), np.uint8)
        # bool [N, S, S], True where a tile's scene has no data; None when no tile has any
        nodata = np.zeros(masks.shape, bool) if any(t.nodata is not None for t in tiles) else None
        for i, tile in enumerate(tiles):
            images[i], masks[i] = prepare(tile.image, tile.mask, input_size, equalize, tile.nodata)
            if tile.nodata is not None:  # scaled as the mask is (1: no data; a square tile gets no padding here)
                nodata[i] = pad_and_resize(tile.image[..., :1], tile.nodata.astype(np.uint8), input_size)[1] == 1
        self.images = torch.from_numpy(images)  # uint8 [N, C, S, S]
        self.masks = torch.from_numpy(masks)  # uint8 [N, S, S]
        self.nodata = None if nodata is None else torch.from_numpy(nodata)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of this epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.scenes)

    def augmentation(self, index: int) -> tuple[bool, bool, int]:
        """(hflip, vflip, k) of item `index` in the current epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        hflip, vflip = rng.random(2) < 0.5
        return bool(hflip), bool(vflip), int(rng.integers(4))

    def __getitem__(self, index: int) -> dict:
        image, mask = self.images[index], self.masks[index]
        if self.augment:
            image, mask = joint_flip_rot(image, mask, *self.augmentation(index))
        image = normalize(image.float() / 255.0, self.mean, self.std)
        return {"image": image.contiguous(), "mask": mask.long().contiguous(), "scene": self.scenes[index]}

    def __repr__(self) -> str:
        return (
            f"TileDataset({len(self)} tiles, {self.input_size}x{self.input_size}, "
            f"augment={self.augment}, seed={self.seed}, epoch={self.epoch})"
        )
