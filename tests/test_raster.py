"""Reading imagery as it comes: 16-bit stretch, palette, one band, alpha and nodata, bad files."""

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

from mrife.data import DataError, Raster, read_image


def write_tif(path, bands: np.ndarray, nodata=None, alpha_last=False, crs="EPSG:32648"):
    """Write [C, H, W] as a GeoTIFF at a UTM 48N origin, 0.5 m pixels."""
    count, height, width = bands.shape
    with rasterio.open(path, "w", driver="GTiff", height=height, width=width, count=count, dtype=bands.dtype,
                       crs=crs, transform=from_origin(500_000, 3_300_000, 0.5, 0.5), nodata=nodata) as out:
        out.write(bands)
        if alpha_last:
            out.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    return path


def test_twelve_bit_data_keeps_its_grey_levels(tmp_path):
    # 12-bit values in a 16-bit file: cutting to the high byte would leave 16 levels.
    values = np.tile(np.arange(0, 4096, dtype=np.uint16), (3, 16, 1))[:, :, :4096]  # [3, 16, 4096]
    image = read_image(write_tif(tmp_path / "twelve.tif", values))
    assert image.shape == (16, 4096, 3) and image.min() == 0 and image.max() == 1
    assert len(np.unique(image[..., 0])) > 3000, "the 12-bit grey levels were not kept"


def test_stretch_is_fixed_per_scene_so_windows_agree(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.integers(200, 3000, (3, 64, 64), dtype=np.uint16)
    with Raster(write_tif(tmp_path / "scene.tif", values)) as raster:
        whole, _ = raster.read()
        part, _ = raster.read(rasterio.windows.Window(16, 8, 20, 30))
    assert np.array_equal(part, whole[8:38, 16:36]), "a window must be scaled as the whole scene"


def test_alpha_and_nodata_are_invalid_pixels(tmp_path):
    rgb = np.full((3, 8, 8), 100, np.uint8)
    alpha = np.full((1, 8, 8), 255, np.uint8)
    alpha[0, :2] = 0
    with Raster(write_tif(tmp_path / "rgba.tif", np.concatenate([rgb, alpha]), alpha_last=True)) as raster:
        image, valid = raster.read()
        assert raster.colour_bands == [1, 2, 3] and raster.alpha == 4
    assert not valid[:2].any() and valid[2:].all() and (image[:2] == 0).all()

    rgb[:, 5:, 5:] = 0
    with Raster(write_tif(tmp_path / "nodata.tif", rgb, nodata=0)) as raster:
        _, valid = raster.read()
    assert not valid[5:, 5:].any() and valid.sum() == 64 - 9


def test_palette_and_one_band_images_become_rgb(tmp_path):
    palette = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), "P")
    palette.putpalette([0, 0, 0, 255, 128, 0] + [0] * 762)
    palette.save(tmp_path / "palette.png")
    image = read_image(tmp_path / "palette.png")
    assert np.allclose(image[0, 1], [1.0, 128 / 255, 0.0])

    with Raster(write_tif(tmp_path / "gray.tif", np.arange(16, dtype=np.uint8).reshape(1, 4, 4))) as raster:
        assert raster.single_band
        image, _ = raster.read()
    assert image.shape == (4, 4, 3) and np.array_equal(image[..., 0], image[..., 2])


def test_a_band_count_the_models_cannot_take_names_the_file(tmp_path):
    path = write_tif(tmp_path / "four.tif", np.zeros((4, 8, 8), np.uint16))  # RGB + near infrared
    with pytest.raises(DataError, match=r"four\.tif: 4 image bands"):
        Raster(path)


def test_an_unreadable_file_names_itself(tmp_path):
    path = tmp_path / "broken.tif"
    path.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"broken\.tif: unreadable"):
        Raster(path)
