"""Whole-scene prediction: windows, blending, map products in the scene's CRS, clear errors."""

import json

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely.geometry
import torch
from PIL import Image
from test_raster import write_tif

from mrife.cli import main
from mrife.config import load_profile, save_yaml
from mrife.data.dataset import prepare
from mrife.data.raster import Raster
from mrife.data.transforms import MEAN, STD, normalize
from mrife.gis import MASK_NODATA, write_geopackage, write_scene_maps
from mrife.models import build_model
from mrife.predict import ArrayScene, probability_map

# No equalization, so that a pixel's brightness reaches the model as it is in the file.
PLAIN = load_profile("smoke", ["data.equalize=false", "data.tile_size=64", "data.input_size=32"])
PIXEL = 0.5  # metres, the GeoTIFFs' resolution (write_tif)


class Brightness(torch.nn.Module):
    """Landslide where the image (before normalization) is bright: a model whose answer is known."""

    def forward(self, x):  # [B, 3, S, S] -> [B, 2, S, S]
        image = x * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
        bright = image.mean(1, keepdim=True)
        return torch.cat([torch.zeros_like(bright), 20 * (bright - 0.5)], 1)


class Ramp(torch.nn.Module):
    """A landslide logit rising from -3 to 3 across each window's columns, whatever the image."""

    def forward(self, x):
        ramp = torch.linspace(-3, 3, x.shape[-1]).expand(x.shape[0], 1, x.shape[-2], -1)
        return torch.cat([torch.zeros_like(ramp), ramp], 1)


def planted_scene(path, nodata_corner=False):
    """A 16-bit, 300 x 260 GeoTIFF (EPSG:32648) of dim noise with a bright landslide at
    rows 100-160, columns 80-150; returns the path and the landslide's map polygon."""
    rng = np.random.default_rng(0)
    values = (1000 + rng.integers(-30, 30, (3, 300, 260))).astype(np.uint16)
    values[:, 100:160, 80:150] = 3000
    if nodata_corner:
        values[:, :40, :40] = 0
    x0, y0 = 500_000, 3_300_000
    planted = shapely.geometry.box(x0 + 80 * PIXEL, y0 - 160 * PIXEL, x0 + 150 * PIXEL, y0 - 100 * PIXEL)
    return write_tif(path, values, nodata=0 if nodata_corner else None), planted


def make_run(root, name="run", checkpoint=True):
    """A run directory of a smoke segmentation branch (untrained weights)."""
    cfg = load_profile("smoke", ["model.name=segbranch"])
    run = root / name
    run.mkdir()
    save_yaml(cfg, run / "config.yaml")
    if checkpoint:
        torch.manual_seed(0)
        torch.save(build_model(cfg).state_dict(), run / "best.pt")
    return run


def test_maps_keep_the_scenes_crs_transform_and_size_and_find_the_landslide(tmp_path):
    path, planted = planted_scene(tmp_path / "scene.tif")
    with Raster(path) as scene:
        probability = probability_map(Brightness(), PLAIN, scene, progress=False)
        summary = write_scene_maps(tmp_path, "scene", probability, scene, min_area=10.0)
    with rasterio.open(path) as source, rasterio.open(tmp_path / "scene_mask.tif") as mask, \
            rasterio.open(tmp_path / "scene_probability.tif") as prob:
        for out in (mask, prob):
            assert (out.crs, out.transform, out.shape) == (source.crs, source.transform, source.shape)
        assert mask.dtypes[0] == "uint8" and prob.dtypes[0] == "float32"
    collection = json.loads((tmp_path / "scene_landslides.geojson").read_text())
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32648"
    largest = shapely.geometry.shape(collection["features"][0]["geometry"])
    assert largest.intersection(planted).area / planted.area > 0.9, "the polygon misses the planted landslide"
    assert largest.area == pytest.approx(planted.area, rel=0.1)
    assert collection["features"][0]["properties"]["area"] == pytest.approx(largest.area, rel=1e-3)
    assert summary["landslides"] == len(collection["features"]) == 1, "min_area should drop specks"
    assert (tmp_path / "scene_quicklook.png").exists()

    write_geopackage(tmp_path / "scene.gpkg", collection["features"], rasterio.crs.CRS.from_epsg(32648))
    info = pyogrio.read_info(tmp_path / "scene.gpkg")
    assert info["crs"] == "EPSG:32648" and info["features"] == 1 and list(info["fields"]) == ["id", "area", "mean_probability"]


def test_an_image_that_fits_one_window_is_one_forward_pass():
    cfg = load_profile("smoke", ["model.name=segbranch"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    rng = np.random.default_rng(1)
    for height, width in [(64, 64), (50, 40)]:  # exactly one tile, and one padded tile
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        probability = probability_map(model, cfg, ArrayScene(image), progress=False)
        tile = np.zeros((64, 64, 3), np.float32)
        tile[:height, :width] = image / 255.0
        padding = np.ones((64, 64), bool)  # no data: left out of the equalization, as in a training tile
        padding[:height, :width] = False
        inputs, _ = prepare(tile, np.zeros((64, 64), np.uint8), cfg.data.input_size, nodata=padding)
        with torch.no_grad():
            expected = model(normalize(torch.from_numpy(inputs[None]).float() / 255)).softmax(1)[0, 1]
        assert np.allclose(probability, expected.numpy()[:height, :width], atol=1e-6)


def test_blended_windows_leave_no_seam():
    constant = ArrayScene(np.full((64, 64 * 4, 3), 0.4, np.float32))
    window = torch.sigmoid(torch.linspace(-3, 3, 64)).numpy()
    steepest = np.abs(np.diff(window)).max()  # within one window's own prediction

    def largest_step(overlap):
        return np.abs(np.diff(probability_map(Ramp(), PLAIN, constant, overlap, progress=False), axis=1)).max()

    assert largest_step(0.0) > 10 * steepest, "side by side windows should show their seam (the test's control)"
    assert largest_step(0.5) < 2 * steepest, "blended windows show a step at their borders"


def test_nodata_and_alpha_are_carried_into_the_mask(tmp_path):
    path, _ = planted_scene(tmp_path / "scene.tif", nodata_corner=True)
    with Raster(path) as scene:
        write_scene_maps(tmp_path, "scene", probability_map(Brightness(), PLAIN, scene, progress=False), scene)
    with rasterio.open(tmp_path / "scene_mask.tif") as out:
        mask = out.read(1)
        assert out.nodata == MASK_NODATA
    assert (mask[:40, :40] == MASK_NODATA).all() and (mask[40:] != MASK_NODATA).all()

    rgba = np.zeros((70, 90, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = 255
    rgba[:, :30, 3] = 0  # transparent left strip
    Image.fromarray(rgba, "RGBA").save(tmp_path / "photo.png")
    with Raster(tmp_path / "photo.png") as scene:
        probability = probability_map(Brightness(), PLAIN, scene, progress=False)
        write_scene_maps(tmp_path, "photo", probability, scene)
    assert np.isnan(probability[:, :30]).all() and not np.isnan(probability[:, 30:]).any()
    mask = np.asarray(Image.open(tmp_path / "photo_mask.png"))  # palette indices: the mask's values
    assert (mask[:, :30] == MASK_NODATA).all() and (mask[:, 30:] != MASK_NODATA).all()


def test_cli_writes_every_product_and_a_summary(tmp_path, capsys):
    run = make_run(tmp_path)
    path, _ = planted_scene(tmp_path / "scene.tif")
    assert main(["predict", str(run), str(path), "--out", str(tmp_path / "maps"), "--no-progress", "--gpkg"]) == 0
    names = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert names == ["scene_landslides.geojson", "scene_landslides.gpkg", "scene_mask.tif", "scene_probability.tif",
                     "scene_quicklook.png"]
    assert "scene.tif: 260x300, 72 windows" in capsys.readouterr().out  # 9 rows x 8 columns of 64-px windows every 32 px


def test_cli_errors_name_what_is_wrong(tmp_path, capsys):
    run = make_run(tmp_path)
    scene, _ = planted_scene(tmp_path / "scene.tif")
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not an image")
    four = write_tif(tmp_path / "four.tif", np.zeros((4, 8, 8), np.uint16))
    cases = {
        "broken.tif: unreadable": [str(run), str(broken)],
        "four.tif: 4 image bands": [str(run), str(four)],
        "best.pt does not exist": [str(make_run(tmp_path, "untrained", checkpoint=False)), str(scene)],
        "input not found: .*missing.tif": [str(run), str(tmp_path / "missing.tif")],
    }
    if not torch.cuda.is_available():
        cases["no CUDA device"] = [str(run), str(scene), "--device", "cuda"]
    for i, (message, argv) in enumerate(cases.items()):
        assert main(["predict", *argv, "--out", str(tmp_path / f"out{i}"), "--no-progress"]) == 2, message
        assert message.split(":")[0] in capsys.readouterr().err, message

    out = tmp_path / "full"
    out.mkdir()
    (out / "earlier.geojson").write_text("{}")
    assert main(["predict", str(run), str(scene), "--out", str(out), "--no-progress"]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert main(["predict", str(run), str(scene), "--out", str(out), "--no-progress", "--overwrite"]) == 0
