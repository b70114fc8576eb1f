"""Reading a folder of image/mask pairs into `Scene`s, with errors that name the file.

A data folder holds `images/` and `masks/`. A mask pairs with an image when their
stems are equal (`a.png` with `a.png`, extensions may differ) or when the mask stem is
the image stem with `Label` before its trailing number (the Sichuan set's rule:
`Landslide001.png` with `LandslideLabel001.png`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mrife.data.errors import DataError, MissingDataError
from mrife.data.raster import Raster, open_image
from mrife.progress import tqdm

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclass
class Scene:
    """One image with its landslide mask.

    image: float32 [H, W, C] in [0, 1] (C = 3 for RGB); mask: uint8 [H, W] in {0, 1}
    (1 = landslide); nodata: bool [H, W], True where the image file has no data (its
    nodata value, or transparent), or None when every pixel has data. No-data pixels are
    0 in ``image``, and neither equalized nor trained on (:func:`mrife.data.dataset.prepare`).
    """

    name: str
    image: np.ndarray
    mask: np.ndarray
    nodata: np.ndarray | None = None

    def __repr__(self) -> str:
        h, w = self.mask.shape
        return f"Scene({self.name!r}, {h}x{w}, landslide {self.mask.mean():.1%})"


def read_image(path: str | Path, bands: int = 3) -> np.ndarray:
    """Read an image as float32 [H, W, bands] in [0, 1], scaled as
    :class:`mrife.data.raster.Raster` scales it (8-bit / 255; 16-bit and deeper stretched by
    the scene's percentiles).

    RGB, RGBA (alpha dropped), palette and one-band images (repeated to 3 channels) are
    accepted, in PNG, JPEG or (Geo)TIFF; with ``bands`` other than 3, images of exactly
    that many bands.
    """
    return read_image_and_nodata(path, bands)[0]


def read_image_and_nodata(path: str | Path, bands: int = 3) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`read_image`, and bool [H, W] True where the file has no data (its nodata
    value, or alpha 0), or None when every pixel has data."""
    with Raster(path, bands) as raster:
        image, valid = raster.read()
    return image, (None if valid.all() else ~valid)


def _mask_values(path: Path, image: Image.Image) -> np.ndarray:
    """The mask as one integer per pixel [H, W]: grey level, palette index or packed RGB."""
    if image.mode == "P":
        # palette masks store class indices (index 0 = background, VOC style)
        return np.asarray(image)
    if image.mode in ("RGB", "RGBA", "CMYK", "YCbCr"):
        rgb = np.asarray(image.convert("RGB")).astype(np.uint32)
        # pack the colour into one integer so counting distinct colours is a 1-D unique
        return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    if image.mode in ("LA", "1"):
        image = image.convert("L")
    if image.mode == "F":
        raise DataError(f"{path}: floating-point mask; save it as 8-bit PNG with 0 and 1 or 255")
    return np.asarray(image)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a landslide mask as uint8 [H, W] in {0, 1}.

    Accepts 0/1, 0/255 (any non-zero value) and colour-on-black RGB masks; 0 or black is
    background. More than two distinct values (e.g. a JPEG-compressed mask) is an error.
    """
    path = Path(path)
    values = _mask_values(path, open_image(path))
    distinct = np.unique(values)
    if distinct.size > 2:
        packed = values.dtype == np.uint32  # RGB colours packed by _mask_values
        shown = ", ".join(
            str((v >> 16, (v >> 8) & 255, v & 255)) if packed else str(v) for v in distinct[:6].tolist()
        ) + (", ..." if distinct.size > 6 else "")
        raise DataError(
            f"{path}: mask has {distinct.size} distinct values ({shown}); a mask must hold "
            "background 0 (black) and one landslide value. Save masks losslessly (PNG) "
            "with 0/1, 0/255 or one colour on black"
        )
    if distinct.size == 2 and distinct[0] != 0:
        raise DataError(
            f"{path}: mask has two values and neither is 0 (black) background; "
            "background must be 0"
        )
    return (values > 0).astype(np.uint8)


def _natural_key(name: str) -> list:
    """Sort `a2` before `a10`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _list_images(folder: Path) -> dict[str, Path]:
    """Image files of a folder by stem; two files with one stem is an error."""
    files = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.stem in files:
            raise DataError(
                f"{files[path.stem]} and {path} share the name {path.stem!r}; keep only one"
            )
        files[path.stem] = path
    return files


def _image_stem(mask_stem: str) -> str:
    """The image stem a mask belongs to: `LandslideLabel001` -> `Landslide001`."""
    return re.sub(r"Label(?=\d+$)", "", mask_stem)


def _pair(images: dict[str, Path], masks: dict[str, Path]) -> list[tuple[str, Path, Path]]:
    """(name, image path, mask path) for every image, or a DataError for any lone file."""
    by_image = {}
    for stem, path in masks.items():
        key = stem if stem in images else _image_stem(stem)
        if key not in images:
            raise DataError(
                f"{path}: mask without an image; expected images/{key}.png (or another "
                f"extension among {', '.join(IMAGE_SUFFIXES)}); add the image or remove the mask"
            )
        if key in by_image:
            raise DataError(f"{by_image[key]} and {path} are both masks of image {images[key]}; keep one")
        by_image[key] = path
    pairs = []
    for stem in sorted(images, key=_natural_key):
        if stem not in by_image:
            labelled = re.sub(r"(\d+)$", r"Label\1", stem)
            expected = f"masks/{stem}.png" + (f" or masks/{labelled}.png" if labelled != stem else "")
            raise DataError(
                f"{images[stem]}: image without a mask; expected {expected}; add the mask "
                "or remove the image"
            )
        pairs.append((stem, images[stem], by_image[stem]))
    return pairs


class FolderDataset:
    """The scenes of a folder `root` holding `images/` and `masks/`.

    Pairing, image sizes and band counts are checked when the folder is opened (file
    headers only); pixels are read and checked when a scene is asked for. ``bands``: the
    band count every image must have (3: RGB, or one band repeated).
    """

    def __init__(self, root: str | Path, bands: int = 3):
        self.root = Path(root)
        self.bands = bands
        for sub in ("images", "masks"):
            if not (self.root / sub).is_dir():
                raise MissingDataError(
                    f"{self.root / sub}: folder not found; a data folder holds images/ and "
                    "masks/ with one mask per image"
                )
        images = _list_images(self.root / "images")
        masks = _list_images(self.root / "masks")
        if not images:
            raise DataError(
                f"{self.root / 'images'}: no image files ({', '.join(IMAGE_SUFFIXES)}); "
                "put the images there"
            )
        self._pairs = _pair(images, masks)
        for _, image_path, mask_path in self._pairs:
            self._check_sizes(image_path, mask_path)

    def _check_sizes(self, image_path: Path, mask_path: Path) -> None:
        sizes = []
        for path, bands in ((image_path, self.bands), (mask_path, 3)):
            with Raster(path, bands) as raster:  # reads the header only
                sizes.append((raster.width, raster.height))
        if sizes[0] != sizes[1]:
            (wi, hi), (wm, hm) = sizes
            raise DataError(
                f"{mask_path}: mask is {wm}x{hm} (width x height) but its image {image_path} "
                f"is {wi}x{hi}; resize the mask with nearest-neighbour to the image size"
            )

    def __len__(self) -> int:
        return len(self._pairs)

    @property
    def names(self) -> list[str]:
        """Scene names (image stems), in natural order."""
        return [name for name, _, _ in self._pairs]

    def paths(self, i: int) -> tuple[Path, Path]:
        """(image path, mask path) of scene i."""
        _, image_path, mask_path = self._pairs[i]
        return image_path, mask_path

    def scene(self, i: int) -> Scene:
        """Read scene i: image float32 [H, W, bands] in [0, 1], mask uint8 [H, W] in {0, 1},
        and where the image has no data (:class:`Scene`)."""
        name, image_path, mask_path = self._pairs[i]
        (image, nodata), mask = read_image_and_nodata(image_path, self.bands), read_mask(mask_path)
        if image.shape[:2] != mask.shape:
            raise DataError(
                f"{mask_path}: mask is {mask.shape} but its image {image_path} is "
                f"{image.shape[:2]} (height, width); resize the mask to the image size"
            )
        return Scene(name, image, mask, nodata)

    def __getitem__(self, i: int) -> Scene:
        return self.scene(i)

    def scenes(self, progress: bool = True) -> list[Scene]:
        """Read every scene (with a progress bar when there are many, unless not ``progress``)."""
        indices = range(len(self))
        bar = tqdm(indices, desc="reading scenes", disable=not progress or len(self) < 20)
        return [self.scene(i) for i in bar]

    def __repr__(self) -> str:
        return f"FolderDataset({str(self.root)!r}, {len(self)} scenes)"


_DIGESTS: dict[tuple, str] = {}  # (path, size, mtime, ctime) -> digest, for this process


def _file_digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    if key not in _DIGESTS:
        digest = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def fingerprint(root: str | Path, bands: int = 3) -> str:
    """Sixteen hex digits that change when a file of the data folder ``root`` is added,
    removed, renamed or edited: a hash over the names, sizes and bytes of every file under
    ``images/`` and ``masks/``. Part of a run's identity (:func:`mrife.runs.run_dir_for`),
    so that training on an edited folder is a new run rather than the old one returned."""
    dataset = FolderDataset(root, bands)
    digest = hashlib.sha256()
    for i in range(len(dataset)):
        for path in dataset.paths(i):
            digest.update(f"{path.parent.name}/{path.name}:{path.stat().st_size}:{_file_digest(path)}\n".encode())
    return digest.hexdigest()[:16]
