"""Imagery as it comes -- PNG, JPEG, TIFF or GeoTIFF; 8 or 16 bits; RGB, RGBA, palette or
one band -- read window by window and scaled to [0, 1] the same way for training
(:func:`mrife.data.read_image`) and for prediction (:mod:`mrife.predict`).

Scaling: 8-bit values are divided by 255. Deeper values (16-bit, 32-bit, float) are
stretched per band between their 1st and 99th percentiles, computed once on the whole
scene from a decimated read, so a 12-bit sensor keeps its grey levels instead of being
cut to its high byte, and every window of a scene is scaled alike.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window
from PIL import Image, UnidentifiedImageError

from mrife.data.errors import DataError, MissingDataError

STRETCH_PERCENTILES = (1.0, 99.0)
STRETCH_SAMPLE_SIDE = 1024  # the decimated read the percentiles come from, pixels on its long side
# GDAL's block cache while reading (bytes). Its default, 5 % of the machine's memory,
# would keep every block of a scene read window by window; this holds a band of windows
# across a wide scene, so overlapping windows still find their blocks decoded.
READ_CACHE_BYTES = 64 * 2**20


def open_image(path) -> Image.Image:
    """Open and fully decode an image file with PIL, or raise a DataError naming it.

    GDAL reads a truncated PNG or JPEG without an error (the missing rows come back as
    zeros), so :class:`Raster` decodes those formats with PIL first.
    """
    try:
        image = Image.open(path)
        image.load()  # PIL decodes lazily: force it so truncated files fail here
    except FileNotFoundError as err:
        raise MissingDataError(f"{path}: file not found") from err
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise DataError(
            f"{path}: unreadable image file ({err}); re-export it as PNG or remove it "
            "together with its partner"
        ) from err
    return image


@dataclass(frozen=True)
class Stretch:
    """Per-band linear scaling to [0, 1]: ``(value - low) / (high - low)``, clipped."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def apply(self, values: np.ndarray) -> np.ndarray:
        """[C, h, w] raw values -> float32 [C, h, w] in [0, 1]."""
        low = np.asarray(self.low, np.float32)[:, None, None]
        span = np.maximum(np.asarray(self.high, np.float32)[:, None, None] - low, 1e-6)
        return np.clip((values.astype(np.float32) - low) / span, 0.0, 1.0)


class Raster:
    """An image file open for windowed reads (rasterio, GDAL inside).

    Attributes: ``height``, ``width`` (pixels), ``crs`` and ``transform`` (``None`` and
    the identity for a plain image), ``georeferenced``, ``colour_bands`` (the band
    indexes read as the image, 1-based), ``alpha`` (the alpha band index or ``None``),
    ``nodata`` (the file's nodata value or ``None``), ``stretch`` (``None`` for 8-bit).

    ``bands`` is how many image bands a reader expects: 3 (RGB; a one-band image is
    repeated to 3) or the run's ``data.bands``; another count is an error naming the file.
    An alpha band is left out of the count, except when the file has exactly ``bands``
    bands (a 4-band uint8 GeoTIFF is RGBA to GDAL, but RGB + elevation to a 4-band run).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path, bands: int = 3):
        self.path = path
        self.bands = bands
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._file = rasterio.open(path)
        except RasterioIOError as err:
            if not os.path.exists(path):
                raise MissingDataError(f"{path}: file not found") from err
            raise DataError(f"{path}: unreadable image file ({err}); re-export it as PNG or GeoTIFF") from err
        f = self._file
        self.height, self.width = f.height, f.width
        self.georeferenced = f.crs is not None
        self.crs, self.transform = f.crs, f.transform
        interp = list(f.colorinterp)
        self.alpha = interp.index(ColorInterp.alpha) + 1 if ColorInterp.alpha in interp else None
        if bands != 3 and f.count == bands:
            self.alpha = None
        self.colour_bands = [i for i in range(1, f.count + 1) if i != self.alpha]
        self.palette = f.colormap(1) if interp[0] == ColorInterp.palette and bands == 3 else None
        takes = (1, 3) if bands == 3 else (bands,)
        if self.palette is None and len(self.colour_bands) not in takes:
            self.close()
            expected = "3 (RGB), or 1 (repeated to RGB)" if bands == 3 else f"{bands} (data.bands)"
            raise DataError(f"{path}: {len(self.colour_bands)} image bands (besides alpha); the model takes {expected}")
        self.nodata = f.nodata
        self.dtype = np.dtype(f.dtypes[0])
        # GDAL zero-fills a truncated PNG or JPEG: PIL decodes those once, on the first read
        self._decoded = f.driver not in ("PNG", "JPEG")
        self.stretch = None if self.dtype == np.uint8 else self._scene_stretch()

    @property
    def single_band(self) -> bool:
        """One grey band, repeated to RGB on reading."""
        return self.palette is None and self.bands == 3 and len(self.colour_bands) == 1

    def _scene_stretch(self) -> Stretch:
        """Percentiles of each band over the valid pixels of a decimated read of the scene."""
        scale = max(1.0, max(self.height, self.width) / STRETCH_SAMPLE_SIDE)
        shape = (max(1, round(self.height / scale)), max(1, round(self.width / scale)))
        values = self._read(self.colour_bands, out_shape=(len(self.colour_bands), *shape))
        valid = self._valid(values, None if self.alpha is None else self._read(self.alpha, out_shape=shape))
        if not valid.any():
            raise DataError(f"{self.path}: every pixel is nodata or transparent")
        low, high = np.percentile(values[:, valid].astype(np.float64), STRETCH_PERCENTILES, axis=1)
        return Stretch(tuple(low.tolist()), tuple(high.tolist()))

    def _valid(self, values: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
        """bool [h, w]: not transparent, and not nodata in every band."""
        valid = np.ones(values.shape[1:], bool)
        if alpha is not None:
            valid &= alpha > 0
        if self.nodata is not None:
            valid &= ~np.all(values == self.nodata, axis=0)
        return valid

    def read(self, window: Window | None = None, shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(image, valid)`` of ``window`` (default: the whole scene), resampled to ``shape``
        ``(h, w)`` when given (nearest: a quick-look of a large scene without reading it all).

        image: float32 [h, w, bands] in [0, 1] (0 where not valid); valid: bool [h, w],
        false where the file says nodata or alpha is 0.
        """
        if not self._decoded:
            open_image(self.path).close()
            self._decoded = True
        bands = (len(self.colour_bands), *shape) if shape else None
        values = self._read(self.colour_bands, window=window, out_shape=bands)  # [C, h, w]
        alpha = None if self.alpha is None else self._read(self.alpha, window=window, out_shape=shape)
        valid = self._valid(values, alpha)
        if self.palette is not None:
            lut = np.array([self.palette.get(i, (0, 0, 0, 255))[:3] for i in range(256)], np.float32) / 255.0
            image = lut[values[0]].transpose(2, 0, 1)
        elif self.stretch is None:
            image = values.astype(np.float32) / 255.0
        else:
            image = self.stretch.apply(values)
        if self.single_band:
            image = np.repeat(image, 3, axis=0)
        image = image.transpose(1, 2, 0) * valid[..., None]  # [h, w, bands]
        return np.ascontiguousarray(image, np.float32), valid

    def _read(self, *args, **kwargs) -> np.ndarray:
        """The file's ``read`` with GDAL's block cache held to :data:`READ_CACHE_BYTES`."""
        with rasterio.Env(GDAL_CACHEMAX=READ_CACHE_BYTES):
            return self._file.read(*args, **kwargs)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Raster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = f"{self.crs}" if self.georeferenced else "not georeferenced"
        return (f"Raster({str(self.path)!r}, {self.width}x{self.height}, {len(self.colour_bands)} band(s) "
                f"{self.dtype}, {kind})")
