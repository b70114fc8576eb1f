"""More bands than RGB: a run on 4-band GeoTIFFs (RGB + elevation) trains, keeps its band
statistics, and predicts only on scenes with its bands."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from test_raster import write_tif

from mrife.cli import main
from mrife.config import load_profile
from mrife.data import DataError, Raster
from mrife.data.transforms import MEAN
from mrife.predict import predict
from mrife.train import fit


def four_band_folder(root, n=6, side=64):
    """Scenes of 16-bit RGB + elevation, a landslide as a hollow in the elevation band."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        rgb = rng.integers(800, 1200, (3, side, side))
        elevation = 3000 + 10 * np.arange(side)[None, :].repeat(side, 0)  # a slope
        mask = np.zeros((side, side), np.uint8)
        top, left = rng.integers(0, side // 2, 2)
        mask[top:top + 20, left:left + 24] = 1
        elevation = elevation - 400 * mask.astype(np.int64)
        write_tif(root / "images" / f"scene{i}.tif", np.concatenate([rgb, elevation[None]]).astype(np.uint16))
        Image.fromarray(mask * 255).save(root / "masks" / f"scene{i}.png")
    return root


@pytest.fixture(scope="module")
def four_band_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bands")
    root = four_band_folder(tmp / "data")
    cfg = load_profile("smoke", [f"data.source={root}", "data.bands=4", "data.tile_size=64", "data.input_size=32",
                                 "model.name=segbranch", "train.batch_size=2", "train.epochs=1"])
    return fit(cfg, tmp / "runs", progress=False), root


def test_a_four_band_run_keeps_its_band_statistics(four_band_run):
    run, _ = four_band_run
    saved = json.loads((run / "normalization.json").read_text())
    assert len(saved["mean"]) == len(saved["std"]) == 4
    assert saved["mean"][:3] != list(MEAN), "a 4-band run normalizes with its own statistics, not ImageNet's"
    state = torch.load(run / "best.pt", weights_only=True)
    first_conv = next(w for w in state.values() if w.ndim == 4)  # the backbone's stem comes first
    assert first_conv.shape[1] == 4, "the encoder should take 4 input channels"


def test_a_four_band_run_predicts_four_band_scenes_only(four_band_run, tmp_path, capsys):
    run, root = four_band_run
    scene = root / "images" / "scene0.tif"
    probability = predict(run, scene, progress=False)
    assert probability.shape == (64, 64) and np.isfinite(probability).all()
    assert main(["predict", str(run), str(scene), "--out", str(tmp_path / "maps"), "--no-progress"]) == 0

    rgb = write_tif(tmp_path / "rgb.tif", np.zeros((3, 64, 64), np.uint16))
    with pytest.raises(DataError, match=r"rgb\.tif: 3 image bands .* takes 4"):
        predict(run, rgb, progress=False)


def test_four_bands_of_eight_bits_are_not_taken_for_rgba(tmp_path):
    path = write_tif(tmp_path / "rgbe.tif", np.arange(4 * 16, dtype=np.uint8).reshape(4, 2, 8))
    with Raster(path, bands=4) as raster:  # GDAL calls band 4 alpha; for a 4-band run it is data
        image, valid = raster.read()
    assert image.shape == (2, 8, 4) and valid.all()
    with Raster(path) as raster:  # read as RGB, the same file is RGB + alpha
        assert raster.colour_bands == [1, 2, 3] and raster.alpha == 4
