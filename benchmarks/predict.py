"""Whole-scene prediction: windows per second and peak memory against the scene's size.

Writes 16-bit RGB GeoTIFFs of 4096 x 4096 and 8192 x 8192 pixels (EPSG:32648; written
strip by strip, tiled and compressed), trains a ``smoke`` segmentation branch (seconds),
then predicts each scene in a fresh process -- the probability map, then every map
product of :mod:`mrife.gis` -- and reads that process's peak resident memory from the
kernel. The scene-sized arrays (float32 probability, uint8 mask, int32 region labels:
9 bytes a pixel) are printed beside it: memory that grows faster than they do would be
the scene being held whole.

    python benchmarks/predict.py [--sizes 4096 8192] [--threads 1] [--batch-size 32]

Prints a markdown table. Run it on an idle machine: windows per second is wall-clock.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

ARRAY_BYTES_PER_PIXEL = 4 + 1 + 4  # probability float32, mask uint8, region labels int32


def write_scene(path: Path, side: int) -> Path:
    """A smooth 16-bit RGB scene with bright patches, written 512 rows at a time."""
    profile = {"driver": "GTiff", "height": side, "width": side, "count": 3, "dtype": "uint16",
               "crs": "EPSG:32648", "transform": from_origin(500_000, 3_300_000, 0.5, 0.5),
               "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    cols = np.arange(side)
    with rasterio.open(path, "w", **profile) as out:
        for top in range(0, side, 512):
            rows = np.arange(top, min(side, top + 512))[:, None]
            wave = 1000 + 400 * np.sin(rows / 97.0) * np.cos(cols / 131.0)
            patches = ((rows // 700 + cols // 900) % 5 == 0) * 1500
            strip = (wave + patches).astype(np.uint16)
            out.write(np.stack([strip, strip + 50, strip + 100]), window=Window(0, top, side, len(rows)))
    return path


def train_smoke_run(root: Path) -> Path:
    from mrife.config import load_profile
    from mrife.train import fit

    return fit(load_profile("smoke", ["model.name=segbranch"]), root, progress=False)


CHILD = """
import json, sys, time, torch
from pathlib import Path
from mrife.data.raster import Raster
from mrife.gis import write_scene_maps
from mrife.predict import probability_map, windows_of
from mrife.runs import load_run
torch.set_num_threads(int(sys.argv[4]))
cfg, model = load_run(sys.argv[1])
with Raster(sys.argv[2]) as scene:
    rows, cols = windows_of(scene.height, scene.width, cfg.data.tile_size, 0.5)
    tic = time.perf_counter()
    probability = probability_map(model, cfg, scene, batch_size=int(sys.argv[5]), progress=False)
    predicted = time.perf_counter()
    summary = write_scene_maps(Path(sys.argv[3]), "scene", probability, scene, min_area=50.0)
    written = time.perf_counter()
print(json.dumps({"windows": len(rows) * len(cols), "predict_s": predicted - tic,
                  "write_s": written - predicted, "landslides": summary["landslides"]}))
"""


def measure(run: Path, scene: Path, out: Path, threads: int, batch_size: int) -> dict:
    """Predict in a fresh process; its result and peak resident memory (MiB)."""
    out.mkdir()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(run), str(scene), str(out), str(threads),
                              str(batch_size)], stdout=subprocess.PIPE, text=True)
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise RuntimeError(f"prediction of {scene} failed (status {status})")
    return json.loads(stdout) | {"peak_mib": usage.ru_maxrss / 1024}  # ru_maxrss is KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = train_smoke_run(tmp / "runs")
        rows = []
        for side in args.sizes:
            tic = time.perf_counter()
            scene = write_scene(tmp / f"scene{side}.tif", side)
            print(f"wrote {side} x {side} in {time.perf_counter() - tic:.0f} s", file=sys.stderr)
            rows.append((side, measure(run, scene, tmp / f"maps{side}", args.threads, args.batch_size)))
            scene.unlink()
    print(f"Machine: {platform.processor() or platform.machine()}, {args.threads} thread(s), batch "
          f"{args.batch_size}; model: smoke segmentation branch (64-px windows, half overlap)\n")
    print("| scene | windows | windows/s | predict s | write s | peak RSS MiB | scene arrays MiB | peak - arrays MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for side, r in rows:
        arrays = side * side * ARRAY_BYTES_PER_PIXEL / 2**20
        print(f"| {side} x {side} | {r['windows']} | {r['windows'] / r['predict_s']:.0f} | {r['predict_s']:.0f} | "
              f"{r['write_s']:.1f} | {r['peak_mib']:.0f} | {arrays:.0f} | {r['peak_mib'] - arrays:.0f} |")


if __name__ == "__main__":
    main()
