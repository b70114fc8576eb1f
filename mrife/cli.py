"""The ``mrife`` command: ``train``, ``evaluate``, ``reproduce``, ``predict``, ``info``.

Examples:
    mrife train --profile smoke --set model.name=segbranch
    mrife train --config run.yaml --out runs
    mrife evaluate runs/mrife-0123456789 --split val
    mrife reproduce --profile smoke
    mrife reproduce --profile cpu --only mrife deeplabv3plus --seeds 0 1 2
    mrife reproduce --profile cpu --check mrife --seeds 1
    mrife predict results/cpu/mrife-0fd563970c scene.tif --out maps
    mrife info
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from mrife.config import PROFILES, apply_overrides, load_profile, load_yaml
from mrife.progress import log_to_stdout


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "no_progress", False):
        log_to_stdout()
    try:
        return {"train": _train, "evaluate": _evaluate, "reproduce": _reproduce, "predict": _predict,
                "info": _info}[args.command](args)
    except (ValueError, KeyError, TypeError, FileNotFoundError) as err:
        print(f"mrife {args.command}: error: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mrife", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_evaluate, _add_reproduce, _add_predict):
        add(sub)
    sub.add_parser("info", help="versions, devices, profiles and data availability")
    return parser


def _add_train(sub) -> None:
    train = sub.add_parser("train", help="train one run into its run directory",
                           epilog="several GPUs (or CPU processes): torchrun --standalone --nproc_per_node N "
                                  "-m mrife train ... trains the run as one process would (mrife.distributed)")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--profile", default="cpu", choices=sorted(PROFILES),
                        help="starting configuration (default: cpu)")
    source.add_argument("--config", type=Path, help="a YAML config written by an earlier run")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting, e.g. --set train.lr=0.01 (repeatable)")
    train.add_argument("--out", type=Path, default=Path("runs"), help="root of run directories")
    train.add_argument("--force", action="store_true",
                       help="delete the run directory's files and train again (default: skip a finished run, "
                            "resume an interrupted one)")
    train.add_argument("--dry-run", action="store_true",
                       help="build the data, model, optimizer and loaders, time two training steps, print "
                            "the memory and the projected training time; write nothing")
    train.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _add_evaluate(sub) -> None:
    evaluate = sub.add_parser(
        "evaluate", help="metrics of a run's best checkpoint: on a split of its data, or on your labelled scenes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  mrife evaluate runs/mrife-0123456789 --split val\n"
               "  mrife evaluate runs/mrife-0123456789 --data my-scenes --out scores\n\n"
               "with --data, each scene of FOLDER (images/ and masks/, paired as for training) is mapped\n"
               "whole as mrife predict maps it, and scored against its mask over the pixels with data;\n"
               "a table per scene and pooled over every pixel (TP FP FN TN PA precision recall F1 lIoU mIoU)\n"
               "is printed and written to <out>/<run>-<folder>.csv and .json, with the threshold")
    evaluate.add_argument("run", type=Path, help="run directory")
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test"],
                          help="without --data: the split of the run's own data, scored tile by tile as training "
                               "scored it; printed as JSON (default: test)")
    evaluate.add_argument("--data", type=Path, metavar="FOLDER",
                          help="a labelled folder (images/ and masks/) whose whole scenes are mapped and scored")
    evaluate.add_argument("--out", type=Path, default=Path("scores"),
                          help="with --data: the folder of the CSV and JSON tables (default: scores)")
    _map_options(evaluate)
    evaluate.add_argument("--overwrite", action="store_true", help="with --data: replace tables written earlier")


def _add_reproduce(sub) -> None:
    repro = sub.add_parser("reproduce", help="train every run the book needs for a profile")
    repro.add_argument("--profile", default="cpu", choices=sorted(PROFILES))
    repro.add_argument("--only", nargs="+", metavar="EXPERIMENT", help="a subset of the experiments")
    repro.add_argument("--choices", action="store_true",
                       help="train the candidates of every open choice (mrife.experiments.CHOICES), judged on "
                            "the validation split, instead of the book's experiments")
    repro.add_argument("--out", type=Path, default=None, help="results root (default: $MRIFE_RESULTS or results)")
    repro.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                       help="training seeds of every experiment, each its own run (default: 0 at smoke; "
                            "0 1 2 at cpu and paper, and 0 1 2 3 4 for the experiments of Tables III and IV: "
                            "deeplabv3plus, mrife, icssn, segbranch, mrife-mfm); runs go seed by seed, the seeds "
                            "trained so far on another kind of processor last")
    repro.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting of every run (not seed: use --seeds)")
    repro.add_argument("--force", action="store_true",
                       help="train the planned runs again from the start, finished or not (default: skip a "
                            "finished run, resume an interrupted one)")
    repro.add_argument("--check", metavar="EXPERIMENT",
                       help="train one run again (the first of --seeds, default the profile's first seed) into "
                            "<out>/check/ and say, metric by metric, whether it falls within the committed "
                            "seeds' spread (mean +- 2 sd)")
    repro.add_argument("--no-progress", action="store_true")
    repro.add_argument("--plan", action="store_true",
                       help="train nothing: list the runs still missing, seed by seed, and the time each is "
                            "expected to take (its epochs x the median epoch of the finished runs of the same "
                            "model at --times-from)")
    repro.add_argument("--times-from", metavar="PROFILE", choices=sorted(PROFILES),
                       help="the profile whose finished runs time the plan's epochs (default: --profile)")


def _add_predict(sub) -> None:
    predict = sub.add_parser(
        "predict", help="landslide maps of whole scenes with a trained run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  mrife predict results/cpu/mrife-0fd563970c scene1.tif scenes/ 'more/*.png' --out maps "
               "--min-area 100\n\nwrites, per input, <name>_probability and <name>_mask (GeoTIFF with the "
               "input's CRS,\nor PNG for a plain image), <name>_landslides.geojson and <name>_quicklook.png.\n"
               "The mask, TIFF or PNG alike: 0 background, 1 landslide, 255 no data (colour table:\n"
               "black, red, transparent). The probability: float32 in [0, 1], NaN where no data (PNG:\n"
               "0..255 grey, transparent where no data). Pixels without data in the input (its nodata\n"
               "value, or transparent) get no prediction and enter no statistic.")
    predict.add_argument("run", type=Path, help="run directory (its best checkpoint and config)")
    predict.add_argument("inputs", type=Path, nargs="+", metavar="INPUT",
                         help="PNG, JPEG, TIFF or GeoTIFF scenes (8 or 16 bits; RGB, RGBA or one band), folders of "
                              "them (their image files, sorted) or quoted glob patterns")
    predict.add_argument("--out", type=Path, required=True, help="output folder")
    _map_options(predict)
    predict.add_argument("--min-area", type=float, default=0.0,
                         help="drop polygons smaller than this, in map units squared (pixels for a plain image)")
    predict.add_argument("--gpkg", action="store_true", help="also write the polygons as a GeoPackage")
    predict.add_argument("--overwrite", action="store_true",
                         help="write into an output folder that has files: the maps an earlier mrife predict wrote "
                              "there (<name>_probability, _mask, _landslides, _quicklook), of any scene, are deleted "
                              "first; other files are kept, and named")


def _map_options(parser: argparse.ArgumentParser) -> None:
    """The options of whole-scene mapping, shared by ``predict`` and ``evaluate --data``."""
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="probability from which a pixel is landslide, in (0, 1) (0.5)")
    parser.add_argument("--overlap", type=float, default=0.5,
                        help="fraction of a window shared with the next, in [0, 1) (0.5)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (8)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _check_map_options(args) -> None:
    """Refuse a bad mapping option at once, before anything is imported, read or written."""
    if not 0 < args.threshold < 1:
        raise ValueError(f"--threshold {args.threshold:g} must be between 0 and 1 (a probability)")
    if not 0 <= args.overlap < 1:
        raise ValueError(f"--overlap {args.overlap:g} must be in [0, 1) (a fraction of the window)")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size} must be at least 1")
    if getattr(args, "min_area", 0.0) < 0:
        raise ValueError(f"--min-area {args.min_area:g} must be 0 or more")
    if args.device not in ("auto", "cpu") and not args.device.startswith("cuda"):
        raise ValueError(f"--device {args.device!r}: use auto, cpu or cuda (cuda:N for one of several GPUs)")
    if not args.run.is_dir():
        raise FileNotFoundError(f"no such run directory: {args.run}")


def _train(args) -> int:
    from mrife.distributed import main_process
    from mrife.runs import is_finished, run_dir_for
    from mrife.train import fit

    cfg = apply_overrides(load_yaml(args.config), args.overrides) if args.config else \
        load_profile(args.profile, args.overrides)
    if args.dry_run:
        return _dry_run(cfg, progress=not args.no_progress)
    finished = not args.force and is_finished(run_dir_for(cfg, args.out))
    run = fit(cfg, args.out, progress=not args.no_progress, force=args.force)
    if not main_process():  # under torchrun, rank 0 reports
        return 0
    print(f"run directory: {run}")
    if finished:
        print("finished earlier: skipped (--force trains it again)")
    print("test split, best-validation checkpoint (test_metrics.json):")
    print(json.dumps(json.loads((run / "test_metrics.json").read_text()), indent=1))
    return 0


def _reproduce(args) -> int:
    from mrife.distributed import main_process
    from mrife.experiments import CANDIDATES, CHOICES
    from mrife.reproduce import reproduce

    if args.check:
        return _check(args)
    experiments = args.only or (sorted({c for cs in CHOICES.values() for c in cs}) if args.choices else None)
    if args.plan:
        return _plan(args, experiments)
    runs = reproduce(args.profile, args.out, experiments, args.overrides, progress=not args.no_progress,
                     seeds=args.seeds, force=args.force)
    if not main_process():  # under torchrun, rank 0 reports
        return 0
    for name, by_seed in runs.items():
        for seed, run in sorted(by_seed.items()):
            best_val = max(r["val_lIoU"] for r in json.loads((run / "history.json").read_text()))
            # A candidate of an open choice is judged on validation: its test numbers stay unread here.
            test = "" if name in CANDIDATES or args.choices else \
                "  test lIoU {lIoU:.4f}  F1 {F1:.4f}".format(**json.loads((run / "test_metrics.json").read_text()))
            print(f"{name:22s} seed {seed:<3d} best val lIoU {best_val:.4f}{test}  {run}")
    return 0


def _plan(args, experiments) -> int:
    from mrife.compute import processor
    from mrife.experiments import profile_experiments, results_root
    from mrife.reproduce import plan, trained_on
    from mrife.runs import epoch_seconds

    timing = args.times_from or args.profile
    folder = Path(args.out or results_root()) / timing
    own = epoch_seconds(folder, processor())  # this machine's epoch times where it trained the model before
    kind = trained_on(args.profile, (experiments or profile_experiments(args.profile))[0], args.overrides)
    todo = plan(args.profile, epoch_seconds(folder) | own, args.out, experiments, args.seeds, here=kind)
    if todo.empty:
        print(f"profile {args.profile}: every planned run is finished; nothing to train")
        return 0
    print(todo.to_string(index=False, formatters={"expected (s)": lambda s: f"{s:.0f}"}))
    unknown = sorted(set(todo.loc[todo["expected (s)"].isna(), "model"]))
    print(f"profile {args.profile}: {len(todo)} runs to train, about {todo['expected (s)'].sum() / 3600:.1f} h "
          f"one after the other, at the epoch times of the finished runs of profile {timing}"
          + (f" on this processor ({', '.join(sorted(own))}; other models: on any)" if own else "")
          + (f"; not counted: {', '.join(unknown)} (no finished run of it there: --times-from)" if unknown else ""))
    return 0


def _check(args) -> int:
    from mrife.reproduce import SPREAD, check

    if args.only or args.choices or args.overrides or args.force:
        raise ValueError("--check trains one run of the profile as committed: it takes no --only, --choices, "
                         "--set or --force")
    seed = args.seeds[0] if args.seeds else None
    table = check(args.profile, args.check, seed, args.out, progress=not args.no_progress)
    print(f"{args.check} at profile {args.profile} trained again, beside the committed seeds "
          f"(within: inside mean +- {SPREAD:g} sd)")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    return 0 if (table["within"] != "no").all() else 1


def _dry_run(cfg, progress: bool) -> int:
    from mrife.train import dry_run

    m, d, t = cfg.model, cfg.data, cfg.train
    print(f"dry run of profile {cfg.profile}: {m.name}, {m.backbone} at output stride {m.output_stride}, "
          f"input {d.input_size} px, batch {t.batch_size}, {t.workers} loader workers")
    out = dry_run(cfg, progress=progress)
    steps = ", ".join(f"{s:.2f} s" for s in out["step_seconds"])
    print(f"device {out['device']}; {out['steps_per_epoch']} steps per epoch")
    print(f"step times: {steps} (the first includes warm-up)")
    print(f"peak memory: {out['peak_memory_mib']:.0f} MiB ({out['memory_kind']})")
    print(f"projected: {t.epochs} epochs x {out['steps_per_epoch']} steps x {out['step_seconds'][-1]:.2f} s = "
          f"{out['projected_hours']:.1f} h of training steps (validation not counted)")
    return 0


def _evaluate(args) -> int:
    if args.data is not None:
        return _evaluate_folder(args)
    from mrife.evaluation import evaluate
    from mrife.loaders import build_loaders, build_splits
    from mrife.runs import load_run

    cfg, model = load_run(args.run)
    loader = build_loaders(cfg, build_splits(cfg))[args.split]
    print(json.dumps(evaluate(model, loader, progress=True), indent=1))
    return 0


def _evaluate_folder(args) -> int:
    _check_map_options(args)
    name = f"{args.run.resolve().name}-{args.data.resolve().name}"
    tables = [args.out / f"{name}.csv", args.out / f"{name}.json"]
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; name a folder")
    written = [str(path) for path in tables if path.exists()]
    if written and not args.overwrite:
        raise ValueError(f"{', '.join(written)} already exist; choose another --out or pass --overwrite")
    from mrife.compute import resolve_device
    from mrife.data import FolderDataset
    from mrife.predict import score_folder
    from mrife.runs import load_normalization, load_run

    device = resolve_device(args.device)
    cfg, model = load_run(args.run)
    normalization = load_normalization(args.run, cfg)
    FolderDataset(args.data, cfg.data.bands)  # pairs, sizes and band counts checked before any scene is mapped
    table = score_folder((cfg, model), args.data, args.threshold, args.overlap, args.batch_size, device,
                         progress=not args.no_progress, normalization=normalization)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(tables[0], float_format="%.6f")
    tables[1].write_text(json.dumps({"run": str(args.run), "data": str(args.data), **table.attrs,
                                     "scenes": table.drop(index="pooled").reset_index().to_dict("records"),
                                     "pooled": table.loc["pooled"].to_dict()}, indent=1))
    print(f"{args.run.name} on {args.data}: {len(table) - 1} scenes mapped whole, landslide from probability "
          f"{args.threshold:g}, pixels without data not counted")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"-> {tables[0]}, {tables[1]}")
    return 0


def _predict(args) -> int:
    _check_map_options(args)
    import time

    from mrife.compute import resolve_device
    from mrife.data.raster import Raster
    from mrife.gis import earlier_maps, write_scene_maps
    from mrife.predict import probability_map, scene_paths
    from mrife.runs import load_normalization, load_run

    # Everything that can be refused is checked before anything is written or a window read.
    paths = scene_paths(args.inputs)
    stems = [path.stem for path in paths]
    if len(set(stems)) < len(stems):
        raise ValueError(f"two inputs share a name ({', '.join(sorted({s for s in stems if stems.count(s) > 1}))}), "
                         "so their outputs would overwrite each other")
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; name a folder")
    held = sorted(args.out.iterdir()) if args.out.is_dir() else []
    if held and not args.overwrite:
        raise ValueError(f"{args.out} already holds files; choose another --out or pass --overwrite")
    device = resolve_device(args.device)
    cfg, model = load_run(args.run)
    normalization = load_normalization(args.run, cfg)
    for path in paths:  # unreadable files and wrong band counts, from the headers
        Raster(path, cfg.data.bands).close()

    earlier = [p for p in earlier_maps(args.out) if p.resolve() not in {q.resolve() for q in paths}] if held else []
    for path in earlier:
        path.unlink()
    kept = sorted(set(held) - set(earlier))
    if kept:
        print(f"--overwrite: {len(earlier)} earlier map file(s) deleted; kept, not written by mrife predict: "
              f"{', '.join(p.name for p in kept)}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        tic = time.perf_counter()
        with Raster(path, cfg.data.bands) as scene:
            if scene.single_band:
                print(f"{path}: one band, repeated to RGB", file=sys.stderr)
            probability = probability_map(model, cfg, scene, args.overlap, args.batch_size, device,
                                          progress=not args.no_progress, normalization=normalization)
            summary = write_scene_maps(args.out, path.stem, probability, scene, args.threshold, args.min_area,
                                       geopackage=args.gpkg)
        units = "map units" if scene.georeferenced else "pixels"
        print(f"{path.name}: {scene.width}x{scene.height}, {_window_count(scene, cfg, args.overlap)} windows, "
              f"{time.perf_counter() - tic:.1f} s, {summary['landslides']} landslides, "
              f"{summary['area']:.1f} {units} squared -> {args.out}")
    return 0


def _window_count(scene, cfg, overlap: float) -> int:
    from mrife.predict import windows_of

    rows, cols = windows_of(scene.height, scene.width, cfg.data.tile_size, overlap)
    return len(rows) * len(cols)


def _info(args) -> int:
    import torch

    from mrife.runs import package_version

    print(f"mrife {package_version('mrife')}, python {platform.python_version()}")
    for package in ("torch", "torchvision", "triton", "timm"):
        print(f"{package:12s}{package_version(package)}")
    cuda = torch.cuda.is_available()
    print(f"cuda        {'yes: ' + torch.cuda.get_device_name(0) if cuda else 'no'}; cpu threads {torch.get_num_threads()}")
    print(f"profiles    {', '.join(sorted(PROFILES))}")
    mirror = os.environ.get("MRIFE_DATA_MIRROR")
    print(f"data mirror {mirror or 'not set (the Sichuan set is downloaded on first use)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
