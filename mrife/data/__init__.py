"""Data: reading image/mask folders, tiling and splitting by scene, the paper's
preprocessing, the real Sichuan set and a synthetic relic-landslide generator."""

from mrife.data import synthetic
from mrife.data.dataset import TileDataset, band_statistics
from mrife.data.errors import DataError
from mrife.data.folder import FolderDataset, Scene, read_image, read_mask
from mrife.data.raster import Raster
from mrife.data.sichuan import SICHUAN_CITATION, sichuan
from mrife.data.tiling import Tile, print_table_one, split_by_scene, table_one, tile_scenes

__all__ = [
    "DataError",
    "FolderDataset",
    "Raster",
    "Scene",
    "SICHUAN_CITATION",
    "Tile",
    "TileDataset",
    "band_statistics",
    "print_table_one",
    "read_image",
    "read_mask",
    "sichuan",
    "split_by_scene",
    "synthetic",
    "table_one",
    "tile_scenes",
]
