"""No data never enters the statistics: a transparent or nodata border leaves each
window's histogram equalization, and so the map inside the border, as it would be without
the border; training tiles leave the scene's no-data pixels out alike."""

import numpy as np
import pytest
import torch
from PIL import Image
from test_predict import Brightness
from test_raster import write_tif

from mrife.config import load_profile
from mrife.data import FolderDataset, Raster, TileDataset, band_statistics, tile_scenes
from mrife.data.dataset import prepare
from mrife.data.transforms import equalize
from mrife.labels import IGNORE
from mrife.predict import ArrayScene, probability_map

BORDER = 32  # px: one window stride of the smoke profile (64-px windows, half overlap), so windows line up
TOLERANCE = 1e-5  # probability: the same windows, batched otherwise, may round otherwise in a model


@pytest.fixture(scope="module")
def smoke():
    """The smoke profile's windows and preparation (equalized), and a model whose answer is
    the equalized brightness: an equalization stretched by a black border shows at once."""
    return load_profile("smoke", ["model.name=segbranch"]), Brightness()


def textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 [H, W, 3] in 1..255 (0 is the GeoTIFF's nodata): a dim gradient with noise,
    so that equalization has something to stretch."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(20, 90, width)[None, :, None] + np.linspace(0, 40, height)[:, None, None]
    return np.clip(ramp + rng.normal(0, 12, (height, width, 3)), 1, 255).astype(np.uint8)


def bordered(image: np.ndarray, fill: int = 0) -> np.ndarray:
    """``image`` inside a frame of BORDER pixels of ``fill`` on every side."""
    return np.pad(image, ((BORDER, BORDER), (BORDER, BORDER), (0, 0)), constant_values=fill)


def test_equalizing_every_pixel_as_valid_is_torchvisions_bit_for_bit():
    rng = np.random.default_rng(3)
    for shape in [(64, 64, 3), (17, 31, 4), (8, 8, 1)]:
        image = rng.random(shape, dtype=np.float32) ** 3  # skewed, as dim scenes are
        image[..., 0] = 0.5  # a constant channel: torchvision leaves it as it is
        none = np.zeros(shape[:2], bool)
        assert np.array_equal(equalize(image, none), equalize(image)), "no no-data must change nothing"
        from mrife.data.transforms import _equalize_valid
        assert np.array_equal(_equalize_valid(image, ~none), equalize(image)), \
            f"the valid-pixel equalization differs from torchvision's on a fully valid {shape} image"


def test_equalizing_around_nodata_equals_equalizing_the_valid_part_alone():
    inner = textured(40, 50).astype(np.float32) / 255
    framed = bordered(inner)
    nodata = np.ones(framed.shape[:2], bool)
    nodata[BORDER:-BORDER, BORDER:-BORDER] = False
    out = equalize(framed, nodata)
    assert np.array_equal(out[BORDER:-BORDER, BORDER:-BORDER], equalize(inner)), \
        "the valid pixels should be equalized as the image without its border is"
    assert not out[nodata].any(), "no-data pixels should come out 0"
    assert not np.array_equal(equalize(framed)[BORDER:-BORDER, BORDER:-BORDER], equalize(inner)), \
        "control: with the border counted, equalization should differ"


def test_prepare_labels_nodata_ignored_and_is_unchanged_without_it():
    rng = np.random.default_rng(0)
    image, mask = rng.random((50, 60, 3), dtype=np.float32), rng.integers(0, 2, (50, 60)).astype(np.uint8)
    old = prepare(image, mask, 32)
    for nodata in (None, np.zeros((50, 60), bool)):
        new = prepare(image, mask, 32, nodata=nodata)
        assert all(np.array_equal(a, b) for a, b in zip(old, new)), "without no-data, prepare must not change"
    nodata = np.zeros((50, 60), bool)
    nodata[:, :20] = True
    image_out, mask_out = prepare(image, mask, 60, nodata=nodata)
    assert (mask_out[:50, :20] == IGNORE).all() and not image_out[:, :50, :20].any()
    assert (mask_out[:50, 20:] == mask[:, 20:]).all(), "pixels with data keep their labels"


def predictions(model, cfg, scene_of_inner, scene_of_bordered):
    """The probability of the image alone and of the bordered image, inside the border."""
    alone = probability_map(model, cfg, scene_of_inner, progress=False)
    framed = probability_map(model, cfg, scene_of_bordered, progress=False)
    return alone, framed


def assert_same_inside(alone, framed):
    inside = framed[BORDER:-BORDER, BORDER:-BORDER]
    assert np.isnan(framed[:BORDER]).all() and np.isnan(framed[:, -BORDER:]).all(), "no data gets no prediction"
    assert not np.isnan(inside).any()
    # Away from the image's edge by one stride, the same windows cover a pixel with and
    # without the border. Nearer, the bordered image's first and last windows add their
    # view of a part of the image, equalized alone, to the blend.
    core = (slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    difference = np.abs(inside[core] - alone[core]).max()
    assert difference < TOLERANCE, f"the border changed the map inside it by {difference:.2g} (tolerance {TOLERANCE})"


def test_a_transparent_border_leaves_the_map_inside_it_as_without(tmp_path, smoke):
    cfg, model = smoke
    inner = textured(160, 192)
    Image.fromarray(inner, "RGB").save(tmp_path / "alone.png")
    rgba = np.concatenate([bordered(inner), np.zeros((*bordered(inner).shape[:2], 1), np.uint8)], -1)
    rgba[BORDER:-BORDER, BORDER:-BORDER, 3] = 255  # transparent frame
    Image.fromarray(rgba, "RGBA").save(tmp_path / "framed.png")
    with Raster(tmp_path / "alone.png") as a, Raster(tmp_path / "framed.png") as b:
        alone, framed = predictions(model, cfg, a, b)
    assert_same_inside(alone, framed)

    # control: the same border counted as black pixels (what predict did) brightens the
    # windows that reach it, and more of the image inside them is mapped as landslide
    black = probability_map(model, cfg, ArrayScene(bordered(inner)), progress=False)
    rim = black[BORDER:2 * BORDER, BORDER:-BORDER], framed[BORDER:2 * BORDER, BORDER:-BORDER]
    assert (rim[0] >= 0.5).mean() > (rim[1] >= 0.5).mean() + 0.1, "control: a black border should change the map"


def test_a_nodata_border_of_a_geotiff_leaves_the_map_inside_it_as_without(tmp_path, smoke):
    cfg, model = smoke
    # 16-bit: stretched by percentiles over the valid pixels, the same with and without the frame
    inner = textured(128, 160, seed=1).astype(np.uint16) * 40 + 500  # no 0: 0 is the nodata value
    alone = write_tif(tmp_path / "alone.tif", inner.transpose(2, 0, 1), nodata=0)
    framed = write_tif(tmp_path / "framed.tif", bordered(inner).transpose(2, 0, 1), nodata=0)
    with Raster(alone) as a, Raster(framed) as b:
        assert_same_inside(*predictions(model, cfg, a, b))


def test_training_tiles_leave_a_scenes_nodata_out(tmp_path):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    inner = textured(48, 48)
    rgba = np.concatenate([bordered(inner), np.zeros((112, 112, 1), np.uint8)], -1)
    rgba[BORDER:-BORDER, BORDER:-BORDER, 3] = 255
    Image.fromarray(rgba, "RGBA").save(root / "images" / "a.png")
    mask = np.zeros((112, 112), np.uint8)
    mask[40:60, 40:60] = 1
    mask[:10] = 1  # a label under no data: not trained on
    Image.fromarray(mask * 255).save(root / "masks" / "a.png")

    scene = FolderDataset(root)[0]
    assert scene.nodata is not None and scene.nodata.sum() == 112 * 112 - 48 * 48
    (tile,) = tile_scenes([scene], size=112)
    assert (tile.mask[scene.nodata] == IGNORE).all(), "no-data pixels should be labelled IGNORE"
    dataset = TileDataset([tile], input_size=112)
    image = dataset.images[0].numpy().transpose(1, 2, 0)  # [S, S, C]
    expected = np.rint(equalize(inner.astype(np.float32) / 255) * 255)
    assert np.array_equal(image[BORDER:-BORDER, BORDER:-BORDER], expected), \
        "a training tile should be equalized over its pixels with data only"
    mean, _ = band_statistics(dataset)
    valid = image[BORDER:-BORDER, BORDER:-BORDER] / 255.0
    assert np.allclose(mean, valid.reshape(-1, 3).mean(0)), "band statistics should leave no-data pixels out"

    whole = FolderDataset(root)
    Image.fromarray(inner, "RGB").save(root / "images" / "a.png")
    Image.fromarray(mask[BORDER:-BORDER, BORDER:-BORDER] * 255).save(root / "masks" / "a.png")
    assert whole[0].nodata is None, "a scene with data everywhere has no no-data mask (tiles as before)"


def test_a_tile_past_the_scenes_edge_is_equalized_over_the_scene_alone():
    from mrife.data import Scene

    inner = textured(40, 50).astype(np.float32) / 255
    (tile,) = tile_scenes([Scene("small", inner, np.zeros((40, 50), np.uint8))], size=64)
    assert tile.nodata is not None and tile.nodata[40:].all() and not tile.nodata[:40, :50].any()
    image = TileDataset([tile], input_size=64).images[0].numpy().transpose(1, 2, 0)  # [S, S, C]
    assert np.array_equal(image[:40, :50], np.rint(equalize(inner) * 255)), \
        "the padding should not enter the tile's equalization"
    assert not image[40:].any() and not image[:, 50:].any(), "the padding stays 0"
    tiles = tile_scenes([Scene("exact", textured(64, 128).astype(np.float32) / 255, np.zeros((64, 128), np.uint8))], 64)
    assert all(t.nodata is None for t in tiles), "a scene cut without padding has data everywhere (tiles as before)"
