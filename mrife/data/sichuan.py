"""The real data: 36 Sichuan landslide scenes (1024 x 1024 aerial images with masks).

The files are fetched with pooch from a public GitHub repository at a fixed commit
and checked against the sha256 sums in `sichuan_registry.txt`, or read from a local
mirror folder (env MRIFE_DATA_MIRROR) after the same check.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from importlib import resources
from pathlib import Path

import pooch

from mrife.data.errors import DataError, MissingDataError
from mrife.data.folder import FolderDataset

SICHUAN_CITATION = (
    "Zeng Chao, Cao Zhenyu, Su Fenghuan, et al. High-precision aerial imagery and "
    "interpretation dataset of landslide and debris flow disaster in Sichuan and "
    "surrounding areas [DS/OL]. V1. Science Data Bank, 2021. "
    "DOI: 10.11922/sciencedb.j00001.00222. Licence: CC BY 4.0."
)

BASE_URL = (
    "https://raw.githubusercontent.com/atlan-antillia/"
    "TensorFlow-FlexUNet-Tiled-Image-Segmentation-Sichuan-Landslide/"
    "7cbf974fe4b64b5162db330b5c07b00a8568aa18/"
    "projects/TensorFlowFlexUNet/Sichuan-Landslide/mini_test/"
)
FOLDER = "sichuan-landslide"
MIRROR_ENV = "MRIFE_DATA_MIRROR"
_FIX = (
    f"connect to the internet, or set {MIRROR_ENV} (or pass mirror=) to a folder that "
    f"holds {FOLDER}/images and {FOLDER}/masks"
)


def registry() -> dict[str, str]:
    """{relative path: sha256} of the 72 files (36 images, 36 masks)."""
    text = resources.files("mrife.data").joinpath("sichuan_registry.txt").read_text()
    return dict(line.split() for line in text.splitlines() if line.strip())


def _from_mirror(mirror: Path) -> FolderDataset:
    """Verify every file of `mirror/sichuan-landslide` against the registry; no download."""
    root = mirror / FOLDER
    if not root.is_dir():
        raise MissingDataError(f"{root}: not found; {MIRROR_ENV} or mirror= must name the folder holding {FOLDER}/")
    for name, sha256 in registry().items():
        path = root / name
        if not path.is_file():
            raise MissingDataError(f"{path}: missing from the mirror; copy it from {BASE_URL}{name}")
        if pooch.file_hash(str(path), alg="sha256") != sha256:
            raise DataError(
                f"{path}: sha256 does not match the registry ({sha256}); the file is damaged "
                f"or a different version: replace it with {BASE_URL}{name}"
            )
    return FolderDataset(root)


def _file_downloader(url: str, output_file, pooch_: pooch.Pooch | None) -> None:
    """A pooch downloader for file:// URLs (pooch itself knows http, ftp, sftp, doi)."""
    with urllib.request.urlopen(url) as source:
        if hasattr(output_file, "write"):
            shutil.copyfileobj(source, output_file)
        else:
            with open(output_file, "wb") as target:
                shutil.copyfileobj(source, target)


def _download(cache_dir: Path, base_url: str) -> FolderDataset:
    """Fetch the files that are not yet in `cache_dir/sichuan-landslide` with pooch."""
    root = cache_dir / FOLDER
    local = base_url.startswith("file:")
    # retries help a flaky network, never a local copy
    fetcher = pooch.create(path=root, base_url=base_url, retry_if_failed=0 if local else 2)
    with resources.files("mrife.data").joinpath("sichuan_registry.txt").open() as file:
        fetcher.load_registry(file)
    downloader = _file_downloader if local else None
    for name in fetcher.registry:
        try:
            fetcher.fetch(name, downloader=downloader)
        except ValueError as err:
            if "does not match the known hash" not in str(err):  # pooch's wording for a mismatch
                raise
            raise DataError(
                f"{name}: the downloaded file from {fetcher.get_url(name)} does not match its "
                f"sha256 in the registry ({err}); the source changed: {_FIX}"
            ) from err
        except Exception as err:  # requests' ConnectionError, HTTPError, urllib's URLError...
            raise MissingDataError(
                f"could not download {name} from {fetcher.get_url(name)} "
                f"({type(err).__name__}: {err}); {_FIX}"
            ) from err
    return FolderDataset(root)


def sichuan(
    mirror: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    base_url: str = BASE_URL,
) -> FolderDataset:
    """The 36 Sichuan landslide scenes as a FolderDataset (cite `SICHUAN_CITATION`).

    mirror (or env MRIFE_DATA_MIRROR): a folder holding `sichuan-landslide/`; every file
    there is checked against its sha256 and nothing is downloaded. Otherwise the files
    are downloaded with pooch from `base_url` into `cache_dir/sichuan-landslide`
    (default: pooch's user cache for "mrife"), once.
    """
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
    if mirror:
        return _from_mirror(Path(mirror))
    cache_dir = Path(cache_dir) if cache_dir is not None else Path(pooch.os_cache("mrife"))
    return _download(cache_dir, base_url)
