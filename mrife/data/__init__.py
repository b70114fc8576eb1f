"""Data: reading image/mask folders, tiling and splitting by scene, the paper's
preprocessing, the real Sichuan set and a synthetic relic-landslide generator."""

from mrife.data import synthetic
from mrife.data.dataset import TileDataset
from mrife.data.folder import DataError, FolderDataset, Scene, read_image, read_mask
from mrife.data.sichuan import SICHUAN_CITATION, sichuan
from mrife.data.tiling import Tile, print_table_one, split_by_scene, table_one, tile_scenes

__all__ = [
    "DataError",
    "FolderDataset",
    "Scene",
    "SICHUAN_CITATION",
    "Tile",
    "TileDataset",
    "print_table_one",
    "read_image",
    "read_mask",
    "sichuan",
    "split_by_scene",
    "synthetic",
    "table_one",
    "tile_scenes",
]
