"""Training and evaluation of one run, written to a run directory.

A run directory ``<root>/<model>-<config hash>/`` holds:

- ``config.yaml``: the resolved configuration;
- ``history.json``: one record per epoch (each loss term, validation metrics, seconds);
- ``best.pt``: the weights of the epoch with the best validation lIoU;
- ``last.pt`` (model, optimizer, schedule, epoch): for resuming, while the run is under
  way; removed once the run is finished, since a finished run is never trained again
  (it is twice the size of ``best.pt``);
- ``test_metrics.json``: the best checkpoint on the test split; its presence marks the
  run finished;
- ``provenance.json``: git commit (and whether the tree had uncommitted changes), package
  versions, seed, device, wall time.

Every file is written atomically (temporary file, then rename), so an interrupted run
loses at most the epoch under way and resumes from its last complete one.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from importlib import metadata
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mrife import data
from mrife.config import RunConfig, config_hash, load_yaml, save_yaml
from mrife.losses import LossWeights, joint_loss
from mrife.masking import BlockMasker
from mrife.metrics import ConfusionMatrix
from mrife.models import build_model
from mrife.models.icssn import object_metrics

# ---------------------------------------------------------------- data
def build_splits(cfg: RunConfig, progress: bool = True) -> dict[str, list[data.Tile]]:
    """Scenes of ``cfg.data.source`` cut into tiles and split 6:2:2 by scene."""
    d = cfg.data
    if d.source == "synthetic":
        scenes = data.synthetic.make_scenes(
            d.synthetic_scenes, size=d.synthetic_size, difficulty=d.difficulty,
            slide_fraction=d.slide_fraction, seed=d.split_seed,
        )
    elif d.source == "sichuan":
        scenes = data.sichuan().scenes(progress)
    else:
        scenes = data.FolderDataset(d.source).scenes(progress)
    tiles = data.tile_scenes(scenes, d.tile_size, d.tile_stride)
    return data.split_by_scene(tiles, d.split, seed=d.split_seed)


def build_loaders(cfg: RunConfig, splits: dict[str, list[data.Tile]]) -> dict[str, DataLoader]:
    """Training loader (augmented, shuffled) and validation / test loaders."""
    loaders = {}
    for name, tiles in splits.items():
        train = name == "train"
        dataset = data.TileDataset(
            tiles, cfg.data.input_size, equalize=cfg.data.equalize,
            augment=train and cfg.data.augment, seed=cfg.seed,
        )
        loaders[name] = DataLoader(
            dataset, batch_size=cfg.train.batch_size, shuffle=train, drop_last=train,
            num_workers=cfg.train.workers, generator=torch.Generator() if train else None,
        )
    return loaders


# ---------------------------------------------------------------- model and loss
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_model(cfg: RunConfig) -> torch.nn.Module:
    """The model of ``cfg.model`` (a field another model takes is left out)."""
    if cfg.model.name == "icssn":  # its contrastive terms share the loss temperature
        return build_model(cfg.model, temperature=cfg.loss.temperature)
    return build_model(cfg.model)


def compute_losses(model, batch: dict, masker: BlockMasker, cfg: RunConfig, device,
                   step: int = 0) -> dict[str, Tensor]:
    """One forward pass and every loss term: ``{"loss", "ce", "reconst", "cons", ...}``.

    A model with a ``training_losses(images, masks, masker, step)`` method (ICSSN) computes
    its own terms; MRIFE gets the joint loss of Eq. (8); other models cross-entropy alone.
    """
    images, masks = batch["image"].to(device), batch["mask"].to(device)
    if hasattr(model, "training_losses"):
        return model.training_losses(images, masks, masker, step)
    if not hasattr(model, "update_teacher"):  # segmentation-only models
        return joint_loss(model(images), masks)
    masked = masker(images, masks)
    out = model(images, masked.images)
    weights = LossWeights(cfg.loss.alpha, cfg.loss.beta, cfg.loss.gamma)
    return joint_loss(out.logits, masks, out.student, out.teacher, masked.idx_pos,
                      masked.idx_neg, weights, cfg.loss.temperature)


@torch.no_grad()
def evaluate(model, loader: DataLoader, device=None, progress: bool = False) -> dict[str, float]:
    """Metrics of ``model`` (eval mode) pooled over every pixel of ``loader``."""
    device = device or next(model.parameters()).device
    model.eval()
    cm = ConfusionMatrix()
    for batch in tqdm(loader, desc="evaluate", leave=False, disable=not progress):
        cm.update(model(batch["image"].to(device)), batch["mask"].to(device))
    return cm.compute()


@torch.no_grad()
def confusion_by_scene(model, loader: DataLoader, device=None) -> dict[str, ConfusionMatrix]:
    """One confusion matrix per scene of ``loader`` (``model`` in eval mode).

    Pooling them gives :func:`evaluate`'s numbers; kept apart, they let
    :func:`mrife.metrics.scene_bootstrap` resample the scenes.
    """
    device = device or next(model.parameters()).device
    model.eval()
    per_scene: dict[str, ConfusionMatrix] = {}
    for batch in loader:
        pred = model(batch["image"].to(device)).argmax(1).cpu()  # [B, H, W]
        for i, scene in enumerate(batch["scene"]):
            per_scene.setdefault(scene, ConfusionMatrix()).update(pred[i], batch["mask"][i])
    return per_scene


# ---------------------------------------------------------------- files
def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=1)))


def run_dir_for(cfg: RunConfig, root: str | Path = "runs") -> Path:
    return Path(root) / f"{cfg.model.name}-{config_hash(cfg)}"


def provenance(cfg: RunConfig, device, seconds: float) -> dict:
    """Where and with what a run was produced.

    ``git_dirty`` is true when tracked files differed from ``git_commit`` (the run's code
    is then not exactly that commit's), ``None`` outside a git checkout.
    """
    commit = _git("rev-parse", "HEAD")
    changes = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    packages = {p: _version(p) for p in ("mrife", "torch", "torchvision", "timm", "numpy", "triton")}
    return {"git_commit": commit or "unknown", "git_dirty": None if changes is None else bool(changes),
            "packages": packages, "python": platform.python_version(),
            "seed": cfg.seed, "device": str(device), "threads": torch.get_num_threads(),
            "machine": platform.machine(), "wall_time_s": round(seconds, 1)}


def _git(*args: str) -> str:
    """Output of ``git args`` in the package's checkout ("" when git or the checkout is missing)."""
    try:
        return subprocess.run(["git", *args], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


# ---------------------------------------------------------------- the loop
def fit(cfg: RunConfig, root: str | Path = "runs", progress: bool = True) -> Path:
    """Train ``cfg`` into its run directory under ``root``; resume or skip if it exists.

    Returns the run directory. A finished run (``test_metrics.json`` present) is returned
    as it is; an interrupted one resumes after its last complete epoch.
    """
    run = run_dir_for(cfg, root)
    if (run / "test_metrics.json").exists():
        return run
    run.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run / "config.yaml")
    started = time.perf_counter()

    # Data
    loaders = build_loaders(cfg, build_splits(cfg, progress))
    if len(loaders["train"]) == 0:
        raise ValueError(
            f"the training split has {len(loaders['train'].dataset)} tiles, fewer than one batch "
            f"of {cfg.train.batch_size}: lower train.batch_size or use more scenes"
        )

    # Model, masker, optimizer and schedule
    device = resolve_device(cfg.train.device)
    torch.manual_seed(cfg.seed)
    model = make_model(cfg).to(device)
    masker = BlockMasker(cfg.model.block, cfg.mask.strategy, cfg.mask.ratio, seed=cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=cfg.train.lr, momentum=cfg.train.momentum,
                                weight_decay=cfg.train.weight_decay)
    total_steps = cfg.train.epochs * len(loaders["train"])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: (1 - min(step, total_steps - 1) / total_steps) ** cfg.train.lr_power)

    history, best, start = [], -1.0, 0
    if (run / "last.pt").exists():
        state = torch.load(run / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        history, best, start = state["history"], state["best"], state["epoch"] + 1

    # Loop
    epochs = tqdm(range(start, cfg.train.epochs), desc=run.name, disable=not progress,
                  initial=start, total=cfg.train.epochs)
    for epoch in epochs:
        tic = time.perf_counter()
        # Every random draw of an epoch is seeded by (seed, epoch), so a resumed run
        # continues exactly as an uninterrupted one would.
        epoch_seed = cfg.seed * 100_003 + epoch
        torch.manual_seed(epoch_seed)
        loaders["train"].generator.manual_seed(epoch_seed)
        loaders["train"].dataset.set_epoch(epoch)
        masker.generator.manual_seed(epoch_seed)
        terms = train_epoch(model, loaders["train"], optimizer, schedule, masker, cfg, device, progress)
        val = evaluate(model, loaders["val"], device)
        record = {"epoch": epoch, "lr": schedule.get_last_lr()[0],
                  **{f"train_{k}": v for k, v in terms.items()},
                  **{f"val_{k}": v for k, v in val.items()},
                  "seconds": round(time.perf_counter() - tic, 2)}
        history.append(record)
        if val["lIoU"] > best:
            best = val["lIoU"]
            atomic_write(run / "best.pt", lambda p: torch.save(model.state_dict(), p))
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "schedule": schedule.state_dict(), "epoch": epoch, "best": best, "history": history}
        atomic_write(run / "last.pt", lambda p: torch.save(state, p))
        write_json(run / "history.json", history)
        epochs.set_postfix(loss=f"{terms['loss']:.3f}", val_lIoU=f"{val['lIoU']:.3f}")

    # Test the best-validation checkpoint
    model.load_state_dict(torch.load(run / "best.pt", map_location=device, weights_only=True))
    test = evaluate(model, loaders["test"], device)
    if hasattr(model, "classify"):  # ICSSN's object-level classification, for free
        test.update(object_metrics(model, loaders["test"]))
    prior = json.loads((run / "provenance.json").read_text())["wall_time_s"] if (run / "provenance.json").exists() else 0
    write_json(run / "provenance.json", provenance(cfg, device, prior + time.perf_counter() - started))
    write_json(run / "test_metrics.json", test)
    (run / "last.pt").unlink(missing_ok=True)
    return run


def train_epoch(model, loader, optimizer, schedule, masker, cfg, device, progress) -> dict[str, float]:
    """One pass over ``loader``; returns the mean of each loss term."""
    model.train()
    sums: dict[str, float] = {}  # every term the model reports
    for batch in tqdm(loader, desc="batches", leave=False, disable=not progress):
        losses = compute_losses(model, batch, masker, cfg, device, step=schedule.last_epoch)
        if not torch.isfinite(losses["loss"]):
            values = {k: float(v.detach()) for k, v in losses.items()}
            raise FloatingPointError(
                f"non-finite loss {values}; training stopped, the last complete epoch's "
                f"checkpoint is kept (lower train.lr or check the data)"
            )
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()
        schedule.step()
        if hasattr(model, "update_teacher"):
            model.update_teacher()
        for k in losses:
            sums[k] = sums.get(k, 0.0) + float(losses[k].detach())
    return {k: v / len(loader) for k, v in sums.items()}


def load_run(run: str | Path, checkpoint: str = "best.pt"):
    """``(config, model)`` of a run directory, the model in eval mode on the CPU."""
    run = Path(run)
    if not (run / checkpoint).exists():
        raise FileNotFoundError(f"{run / checkpoint} does not exist: train the run first (mrife train)")
    cfg = load_yaml(run / "config.yaml")
    cfg.model.pretrained = False  # the checkpoint holds every weight
    model = make_model(cfg)
    state = torch.load(run / checkpoint, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"] if "optimizer" in state else state)
    return cfg, model.eval()

