"""Map products of a landslide probability map, as a geologist opens them in QGIS.

:func:`write_scene_maps` writes, for one scene, into a folder:

- ``<name>_probability.tif`` and ``<name>_mask.tif``: float32 probability (NaN = no data)
  and uint8 mask, with the scene's CRS, transform and size, deflate-compressed; ``.png``
  instead for a plain image (probability as 0..255 grey, transparent where there is no
  data). The mask is encoded alike in both: 0 background, 1 landslide, 255 no data, with
  a colour table (palette) that shows them black, red and transparent;
- ``<name>_landslides.geojson``: one polygon per connected landslide region (4-connected),
  in the scene's CRS (pixel coordinates for a plain image), with its ``area`` in map units
  squared and its ``mean_probability``; regions smaller than ``min_area`` are dropped;
- ``<name>_landslides.gpkg`` (when asked): the same polygons as a GeoPackage;
- ``<name>_quicklook.png``: the scene with the polygons' outlines drawn.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import rasterio
import rasterio.features
import shapely.geometry
from affine import Affine
from PIL import Image, ImageDraw
from scipy import ndimage

MASK_NODATA = 255
PRODUCTS = ("_probability", "_mask", "_landslides", "_quicklook")  # file stems end so: <name><product>.<ext>
QUICKLOOK_SIDE = 2048  # pixels on the quick-look's long side, at most
OUTLINE = (255, 40, 40)
# The mask's colour table (GeoTIFF) and palette (PNG): value -> RGBA. Viewers show the
# values as colours; a program reads the values 0, 1 and MASK_NODATA from either file.
MASK_COLOURS = {0: (0, 0, 0, 255), 1: (*OUTLINE, 255), MASK_NODATA: (0, 0, 0, 0)}


def earlier_maps(folder: Path) -> list[Path]:
    """The files of ``folder`` that :func:`write_scene_maps` writes (named ``<name>`` +
    one of :data:`PRODUCTS`), of any scene: what ``mrife predict --overwrite`` deletes
    before it writes, so that maps of scenes not mapped again do not stay mixed in."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.stem.endswith(PRODUCTS))


def mask_of(probability: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """uint8 [H, W]: 1 where ``probability >= threshold``, 0 elsewhere, ``MASK_NODATA`` where NaN."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold {threshold} must be between 0 and 1")
    with np.errstate(invalid="ignore"):
        mask = (probability >= threshold).view(np.uint8)  # the bools' bytes: no second copy
    for top in range(0, mask.shape[0], 1024):  # strip by strip: no scene-sized temporary
        strip = mask[top:top + 1024]
        strip[np.isnan(probability[top:top + 1024])] = MASK_NODATA
    return mask


def write_raster(path: Path, array: np.ndarray, scene, nodata: float | None = None,
                 colours: dict[int, tuple] | None = None) -> Path:
    """Write one band [H, W] as GeoTIFF (``.tif``) with ``scene``'s CRS and transform, and
    ``colours`` (value -> RGBA) as its colour table."""
    profile = {"driver": "GTiff", "height": array.shape[0], "width": array.shape[1], "count": 1,
               "dtype": array.dtype.name, "compress": "deflate", "nodata": nodata,
               "crs": getattr(scene, "crs", None), "transform": getattr(scene, "transform", Affine.identity())}
    if max(array.shape) >= 512:
        profile |= {"tiled": True, "blockxsize": 256, "blockysize": 256}
    with rasterio.open(path, "w", **profile) as out:
        out.write(array, 1)
        if colours:
            out.write_colormap(1, colours)
    return path


def write_png(path: Path, array: np.ndarray, valid: np.ndarray) -> Path:
    """Write uint8 [H, W] as a grey PNG, transparent where not ``valid``."""
    Image.fromarray(np.stack([array, np.where(valid, 255, 0).astype(np.uint8)], -1), "LA").save(path)
    return path


def write_mask_png(path: Path, mask: np.ndarray) -> Path:
    """Write a mask uint8 [H, W] (0, 1, ``MASK_NODATA``) as a palette PNG: the values as
    they are, shown through :data:`MASK_COLOURS` (no data transparent)."""
    image = Image.fromarray(mask, "P")
    palette = np.zeros((256, 4), np.uint8)
    for value, rgba in MASK_COLOURS.items():
        palette[value] = rgba
    image.putpalette(palette[:, :3].tobytes())
    image.save(path, transparency=palette[:, 3].tobytes())  # the tRNS chunk: alpha per palette entry
    return path


def landslide_polygons(mask: np.ndarray, probability: np.ndarray, transform: Affine = Affine.identity(),
                       min_area: float = 0.0) -> list[dict]:
    """GeoJSON features, one per 4-connected landslide region of ``mask`` (1 = landslide).

    Coordinates go through ``transform`` (pixel -> map); properties: ``id``, ``area`` (map
    units squared, holes excluded), ``mean_probability`` (over the region's pixels).
    Regions with an area under ``min_area`` are dropped. Largest first.
    """
    landslide = mask == 1
    regions, count = ndimage.label(landslide)  # int32; the default structure is 4-connected
    if count == 0:
        return []
    mean = _region_means(regions, probability, count)
    features = []
    for geometry, label in rasterio.features.shapes(regions, mask=landslide, connectivity=4, transform=transform):
        polygon = shapely.geometry.shape(geometry)
        if polygon.area < min_area:
            continue
        features.append({"type": "Feature", "geometry": geometry,
                         "properties": {"area": round(polygon.area, 3),
                                        "mean_probability": round(float(mean[int(label) - 1]), 4)}})
    features.sort(key=lambda f: -f["properties"]["area"])
    for i, feature in enumerate(features):
        feature["properties"] = {"id": i + 1, **feature["properties"]}
    return features


def _region_means(regions: np.ndarray, probability: np.ndarray, count: int, rows: int = 512) -> np.ndarray:
    """float64 [count]: the mean probability of regions 1..count, summed a strip of
    ``rows`` rows at a time (a whole-scene bincount would copy the labels to int64)."""
    sums, sizes = np.zeros(count + 1), np.zeros(count + 1)
    for top in range(0, regions.shape[0], rows):
        labels = regions[top:top + rows].ravel()
        sums += np.bincount(labels, weights=np.nan_to_num(probability[top:top + rows].ravel()), minlength=count + 1)
        sizes += np.bincount(labels, minlength=count + 1)
    return sums[1:] / sizes[1:]


def write_geojson(path: Path, features: list[dict], crs=None) -> Path:
    """A FeatureCollection in ``crs`` (named in the legacy ``crs`` member, which QGIS and
    GDAL read; RFC 7946 readers assume WGS 84 without it)."""
    collection = {"type": "FeatureCollection", "name": path.stem, "features": features}
    if crs is not None:
        epsg = crs.to_epsg()
        name = f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else crs.to_string()
        collection["crs"] = {"type": "name", "properties": {"name": name}}
    path.write_text(json.dumps(collection))
    return path


def write_geopackage(path: Path, features: list[dict], crs=None) -> Path:
    """The polygons of :func:`landslide_polygons` as a GeoPackage layer in ``crs``."""
    from pyogrio.raw import write  # a GDAL of its own: loaded only when a GeoPackage is asked for

    geometry = np.array([shapely.to_wkb(shapely.geometry.shape(f["geometry"])) for f in features], dtype=object)
    fields = ["id", "area", "mean_probability"]
    values = [np.array([f["properties"][k] for f in features], dtype=np.int64 if k == "id" else np.float64)
              for k in fields]
    with warnings.catch_warnings():
        # A plain image's polygons are in pixels: no CRS is the truth, not an oversight to warn of.
        warnings.filterwarnings("ignore", "'crs' was not provided", UserWarning)
        write(path, geometry, values, fields, driver="GPKG", geometry_type="Polygon",
              crs=None if crs is None else crs.to_wkt())
    return path


def quicklook(path: Path, scene, features: list[dict], transform: Affine = Affine.identity()) -> Path:
    """The scene (at most :data:`QUICKLOOK_SIDE` pixels a side) with the polygons' outlines."""
    scale = max(1.0, max(scene.height, scene.width) / QUICKLOOK_SIDE)
    shape = (max(1, round(scene.height / scale)), max(1, round(scene.width / scale)))
    image, _ = scene.read(shape=shape)  # [h, w, bands]: the first three shown as RGB, or the first as grey
    image = image[..., :3] if image.shape[2] >= 3 else np.repeat(image[..., :1], 3, axis=-1)
    canvas = Image.fromarray((image * 255).round().astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    to_pixels = ~transform
    sy, sx = shape[0] / scene.height, shape[1] / scene.width
    for feature in features:
        for ring in feature["geometry"]["coordinates"]:
            points = [to_pixels @ tuple(xy) for xy in ring]
            draw.line([(c * sx, r * sy) for c, r in points], fill=OUTLINE, width=2)
    canvas.save(path, optimize=True)
    return path


def write_scene_maps(out: Path, name: str, probability: np.ndarray, scene, threshold: float = 0.5,
                     min_area: float = 0.0, geopackage: bool = False) -> dict:
    """Write every map product of one scene into ``out`` (see the module's docstring).

    Returns a summary: ``files``, ``landslides`` (polygon count), ``area`` (their total,
    map units squared).
    """
    mask = mask_of(probability, threshold)
    transform = getattr(scene, "transform", Affine.identity()) if scene.georeferenced else Affine.identity()
    if scene.georeferenced:
        files = [write_raster(out / f"{name}_probability.tif", probability.astype(np.float32, copy=False), scene, np.nan),
                 write_raster(out / f"{name}_mask.tif", mask, scene, MASK_NODATA, MASK_COLOURS)]
    else:
        grey = np.rint(np.nan_to_num(probability) * 255).astype(np.uint8)
        files = [write_png(out / f"{name}_probability.png", grey, mask != MASK_NODATA),
                 write_mask_png(out / f"{name}_mask.png", mask)]
    features = landslide_polygons(mask, probability, transform, min_area)
    crs = scene.crs if scene.georeferenced else None
    files.append(write_geojson(out / f"{name}_landslides.geojson", features, crs))
    if geopackage:
        files.append(write_geopackage(out / f"{name}_landslides.gpkg", features, crs))
    files.append(quicklook(out / f"{name}_quicklook.png", scene, features, transform))
    return {"files": files, "landslides": len(features),
            "area": float(sum(f["properties"]["area"] for f in features))}
