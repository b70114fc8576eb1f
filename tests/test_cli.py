"""The command line as a user meets it: help without the heavy imports, every argument of
``predict`` and ``evaluate`` checked before anything is written, inputs as people pass
them, one mask encoding for PNG and GeoTIFF, and ``evaluate --data`` on labelled scenes."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from PIL import Image
from test_predict import make_run, planted_scene
from test_raster import write_tif

import mrife
from mrife.cli import main
from mrife.predict import predict, score_folder

HEAVY = ("torch", "timm", "segmentation_models_pytorch", "rasterio", "pandas")


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["reproduce"], ["predict"], ["info"]])
def test_help_loads_no_heavy_package(command):
    # Not a timed test: what makes --help slow is importing these (seconds each on a cold cache).
    code = (f"import sys\nfrom mrife.cli import main\ntry:\n    main({command + ['--help']!r})\n"
            "except SystemExit:\n    pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().endswith("[]"), f"mrife {' '.join(command)} --help imported {done.stdout.splitlines()[-1]}"
    assert "usage: mrife" in done.stdout


def test_import_mrife_is_light_and_gives_predict():
    code = "import sys, mrife\nprint(sorted(m for m in %r if m in sys.modules))\nprint(mrife.predict.predict)" % (HEAVY,)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[0] == "[]", f"import mrife imported {done.stdout.splitlines()[0]}"
    assert "function predict" in done.stdout
    assert mrife.predict.predict is predict and mrife.fit is mrife.train.fit
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mrife.nope


def test_evaluate_split_has_help_text(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--split {train,val,test} without --data: the split of the run's own data" in text


# ---------------------------------------------------------------- checks before work
def test_every_predict_argument_is_checked_before_anything_is_written(tmp_path, capsys):
    run = make_run(tmp_path)
    scene, _ = planted_scene(tmp_path / "scene.tif")
    four = write_tif(tmp_path / "four.tif", np.zeros((4, 8, 8), np.uint16))
    out = tmp_path / "maps"
    cases = {
        "--threshold 5 must be between 0 and 1": [str(run), str(scene), "--threshold", "5"],
        "--threshold 0 must be between 0 and 1": [str(run), str(scene), "--threshold", "0"],
        "--overlap 1 must be in [0, 1)": [str(run), str(scene), "--overlap", "1"],
        "--batch-size 0 must be at least 1": [str(run), str(scene), "--batch-size", "0"],
        "--min-area -1 must be 0 or more": [str(run), str(scene), "--min-area", "-1"],
        f"no such run directory: {tmp_path / 'nope'}": [str(tmp_path / "nope"), str(scene)],
        "input not found": [str(run), str(scene), str(tmp_path / "missing.tif")],
        "four.tif: 4 image bands": [str(run), str(scene), str(four)],
    }
    if not torch.cuda.is_available():
        cases["torch sees no CUDA device"] = [str(run), str(scene), "--device", "cuda"]
    for message, argv in cases.items():
        assert main(["predict", *argv, "--out", str(out), "--no-progress"]) == 2, message
        err = capsys.readouterr().err
        assert message in err, f"expected {message!r} in {err!r}"
        assert not out.exists(), f"{message}: the output folder was created though the command was refused"

    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["predict", str(run), str(scene), "--out", str(out), "--no-progress"]) == 2
    assert "already holds files; choose another --out or pass --overwrite" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_overwrite_deletes_earlier_maps_and_names_the_files_it_keeps(tmp_path, capsys):
    run = make_run(tmp_path)
    scene, _ = planted_scene(tmp_path / "scene.tif")
    out = tmp_path / "maps"
    out.mkdir()
    for name in ("old_mask.tif", "old_probability.tif", "old_landslides.geojson", "old_quicklook.png", "notes.txt"):
        (out / name).write_text("earlier")
    assert main(["predict", str(run), str(scene), "--out", str(out), "--no-progress", "--overwrite"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["notes.txt", "scene_landslides.geojson", "scene_mask.tif", "scene_probability.tif",
                     "scene_quicklook.png"], names
    assert "kept, not written by mrife predict: notes.txt" in capsys.readouterr().err


def test_folders_and_globs_are_inputs(tmp_path, capsys):
    run = make_run(tmp_path)
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    rng = np.random.default_rng(0)
    for name in ("b", "a"):
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), "RGB").save(scenes / f"{name}.png")
    (scenes / "readme.txt").write_text("not an image")
    assert main(["predict", str(run), str(scenes), "--out", str(tmp_path / "by_folder"), "--no-progress"]) == 0
    printed = [line.split(":")[0] for line in capsys.readouterr().out.splitlines()]
    assert printed == ["a.png", "b.png"], "a folder's image files are mapped in name order"
    assert main(["predict", str(run), str(scenes / "*.png"), "--out", str(tmp_path / "by_glob"), "--no-progress"]) == 0
    assert {p.name for p in (tmp_path / "by_glob").iterdir()} == {p.name for p in (tmp_path / "by_folder").iterdir()}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", str(run), str(empty), "--out", str(tmp_path / "none"), "--no-progress"]) == 2
    assert "a folder without image files" in capsys.readouterr().err


# ---------------------------------------------------------------- one mask encoding
def test_png_and_geotiff_masks_read_back_alike(tmp_path):
    run = make_run(tmp_path)
    rng = np.random.default_rng(2)
    rgb = rng.integers(1, 256, (3, 70, 90), dtype=np.uint8)
    rgb[:, :, :20] = 0  # no data: nodata 0 in the GeoTIFF, transparent in the PNG
    write_tif(tmp_path / "geo.tif", rgb, nodata=0)
    rgba = np.concatenate([rgb, np.where(rgb[:1] == 0, 0, 255).astype(np.uint8)]).transpose(1, 2, 0)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "plain.png")
    threshold = float(np.nanmedian(predict(run, tmp_path / "plain.png", progress=False)))  # a mixed map
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # --gpkg on a plain image: no 'crs' warning
        assert main(["predict", str(run), str(tmp_path / "geo.tif"), str(tmp_path / "plain.png"), "--gpkg",
                     "--threshold", str(threshold), "--out", str(tmp_path / "maps"), "--no-progress"]) == 0
    with rasterio.open(tmp_path / "maps" / "geo_mask.tif") as tif:
        from_tif, colours = tif.read(1), tif.colormap(1)
    png = Image.open(tmp_path / "maps" / "plain_mask.png")
    from_png = np.asarray(png)
    assert np.array_equal(from_png, from_tif), "the PNG and GeoTIFF masks of one image should hold the same values"
    assert set(np.unique(from_tif)) == {0, 1, 255}, "0 background, 1 landslide, 255 no data"
    assert (from_tif[:, :20] == 255).all() and (from_tif[:, 20:] != 255).all()
    assert list(colours[1][:3]) == png.getpalette()[3:6] and colours[255][3] == 0, "one colour table: no data transparent"
    assert (np.asarray(png.convert("RGBA"))[:, :20, 3] == 0).all(), "a viewer shows the PNG's no data as transparent"


# ---------------------------------------------------------------- evaluate --data
def labelled_folder(root):
    """3 scenes of sizes that are not multiples of 8, the last with a transparent border."""
    rng = np.random.default_rng(5)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name, (h, w) in {"s1": (75, 93), "s2": (101, 67), "s3": (83, 131)}.items():
        image = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        image[..., 3] = 255
        image[h // 4:h // 2, w // 3:w // 2, :3] = 250  # a bright patch, labelled landslide
        if name == "s3":
            image[:12, :, 3] = image[:, -9:, 3] = 0
        mask = np.zeros((h, w), np.uint8)
        mask[h // 4:h // 2, w // 3:w // 2] = 255
        Image.fromarray(image, "RGBA").save(root / "images" / f"{name}.png")
        Image.fromarray(mask).save(root / "masks" / f"{name}.png")
    return root


def independent_metrics(tp, fp, fn, tn):
    """The paper's metrics (Eqs. 9-14) written out again, not through mrife.metrics."""
    return {"PA": (tp + tn) / (tp + fp + fn + tn), "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0, "F1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0,
            "lIoU": tp / (tp + fp + fn) if tp + fp + fn else 1.0}


def test_evaluate_data_scores_predicts_masks(tmp_path, capsys):
    run = make_run(tmp_path)
    data = labelled_folder(tmp_path / "labelled")
    threshold = float(np.nanmedian(predict(run, data / "images" / "s1.png", progress=False)))
    out = tmp_path / "scores"
    assert main(["evaluate", str(run), "--data", str(data), "--out", str(out), "--threshold", str(threshold),
                 "--no-progress"]) == 0
    assert "3 scenes mapped whole" in capsys.readouterr().out
    assert main(["predict", str(run), str(data / "images"), "--out", str(tmp_path / "maps"),
                 "--threshold", str(threshold), "--no-progress"]) == 0

    counts = {}
    for name in ("s1", "s2", "s3"):
        predicted = np.asarray(Image.open(tmp_path / "maps" / f"{name}_mask.png"))
        label = np.asarray(Image.open(data / "masks" / f"{name}.png")) > 0
        scored = predicted != 255
        p, t = predicted[scored] == 1, label[scored]
        counts[name] = [int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum()), int((~p & ~t).sum())]
    assert (np.asarray(Image.open(tmp_path / "maps" / "s3_mask.png"))[:12] == 255).all(), "no data is not scored"
    counts["pooled"] = [sum(c[i] for c in counts.values()) for i in range(4)]
    assert 0 < counts["pooled"][0] and 0 < counts["pooled"][1], "the test needs a map with hits and misses"

    table = pd.read_csv(out / f"run-labelled.csv", index_col="scene")
    saved = json.loads((out / "run-labelled.json").read_text())
    in_python = score_folder(run, data, threshold, progress=False)
    assert saved["threshold"] == threshold and in_python.attrs["threshold"] == threshold
    assert list(table.index) == ["s1", "s2", "s3", "pooled"] == list(in_python.index)
    for name, (tp, fp, fn, tn) in counts.items():
        expected = independent_metrics(tp, fp, fn, tn)
        row = saved["pooled"] if name == "pooled" else next(r for r in saved["scenes"] if r["scene"] == name)
        for source, values in (("csv", table.loc[name]), ("json", row), ("python", in_python.loc[name])):
            assert [values[k] for k in ("TP", "FP", "FN", "TN")] == [tp, fp, fn, tn], f"{source} {name} counts"
            for metric, value in expected.items():
                assert values[metric] == pytest.approx(value, abs=1e-6), f"{source} {name} {metric}"


def test_evaluate_data_checks_before_work(tmp_path, capsys):
    run = make_run(tmp_path)
    data = labelled_folder(tmp_path / "labelled")
    out = tmp_path / "scores"
    cases = {"--threshold 1.5 must be between 0 and 1": ["--threshold", "1.5"],
             "--overlap -0.5 must be in [0, 1)": ["--overlap", "-0.5"]}
    for message, extra in cases.items():
        assert main(["evaluate", str(run), "--data", str(data), "--out", str(out), *extra]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()
    assert main(["evaluate", str(tmp_path / "nope"), "--data", str(data), "--out", str(out)]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--data", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert "nothing/images: folder not found" in capsys.readouterr().err
    assert not out.exists()
