"""A run's data: the scenes of its source, cut into tiles and split by scene
(:func:`build_splits`), and the loaders that feed training, validation and test
(:func:`build_loaders`), shared among several processes (:mod:`mrife.distributed`).
"""

from __future__ import annotations

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Subset

from mrife import data
from mrife.config import RunConfig
from mrife.distributed import RankBatches, Ranks


def scenes_of(cfg: RunConfig, progress: bool = True) -> list[data.Scene]:
    """The whole scenes of ``cfg.data.source``: synthetic, the Sichuan set, or a folder."""
    d = cfg.data
    if d.bands != 3 and d.source in ("synthetic", "sichuan"):
        raise ValueError(f"data.bands={d.bands}, but the {d.source} scenes are RGB: set data.source to a folder "
                         f"of {d.bands}-band images")
    if d.source == "synthetic":
        return data.synthetic.make_scenes(
            d.synthetic_scenes, size=d.synthetic_size, difficulty=d.difficulty,
            slide_fraction=d.slide_fraction, seed=d.split_seed,
        )
    if d.source == "sichuan":
        return data.sichuan().scenes(progress)
    return data.FolderDataset(d.source, d.bands).scenes(progress)


def build_splits(cfg: RunConfig, progress: bool = True) -> dict[str, list[data.Tile]]:
    """Scenes of ``cfg.data.source`` cut into tiles and split 6:2:2 by scene.

    Training tiles are cut every ``data.tile_stride`` pixels (overlap is augmentation);
    validation and test tiles every tile size, the last ones padded past the scene's edge
    (ignored pixels), so that no pixel is scored twice.
    """
    d = cfg.data
    scenes = scenes_of(cfg, progress)
    train = data.split_by_scene(data.tile_scenes(scenes, d.tile_size, d.tile_stride), d.split, d.split_seed)
    scored = data.split_by_scene(data.tile_scenes(scenes, d.tile_size, pad_edges=True), d.split, d.split_seed)
    return {"train": train["train"], "val": scored["val"], "test": scored["test"]}


def build_loaders(cfg: RunConfig, splits: dict[str, list[data.Tile]], ranks: Ranks = Ranks()) -> dict[str, DataLoader]:
    """Training loader (augmented, shuffled, its own generator) and validation / test loaders.

    Inputs are normalized per band with ImageNet's statistics for RGB (``data.bands`` 3),
    otherwise with the training split's (:func:`mrife.data.dataset.band_statistics`);
    ``loaders["train"].dataset.mean`` and ``.std`` hold them. Among several processes
    (``ranks``), each loads its share of every training batch and of the scored tiles.
    """
    loaders, normalization = {}, {}
    for name in ("train", "val", "test"):
        train = name == "train"
        dataset = data.TileDataset(
            splits[name], cfg.data.input_size, equalize=cfg.data.equalize,
            augment=train and cfg.data.augment, seed=cfg.seed, **normalization,
        )
        if train and cfg.data.bands != 3:
            dataset.mean, dataset.std = data.band_statistics(dataset)
        normalization = {"mean": dataset.mean, "std": dataset.std}
        if train and ranks.world > 1:  # one process's batches, each cut into the ranks' shares
            generator = torch.Generator()
            batches = BatchSampler(RandomSampler(dataset, generator=generator), cfg.train.batch_size, drop_last=True)
            loaders[name] = DataLoader(dataset, batch_sampler=RankBatches(batches, ranks),
                                       num_workers=cfg.train.workers, generator=generator)
            continue
        if ranks.world > 1:
            dataset = Subset(dataset, range(ranks.rank, len(dataset), ranks.world))
        loaders[name] = DataLoader(
            dataset, batch_size=cfg.train.batch_size, shuffle=train, drop_last=train,
            num_workers=cfg.train.workers, generator=torch.Generator() if train else None,
        )
    if len(loaders["train"]) == 0:
        raise ValueError(
            f"the training split has {len(loaders['train'].dataset)} tiles, fewer than one batch "
            f"of {cfg.train.batch_size}: lower train.batch_size or use more scenes"
        )
    return loaders
