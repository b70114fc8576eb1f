"""The training of one run, written to its run directory (:mod:`mrife.runs`).

:func:`fit` reads as its stages: the run directory, the data (:mod:`mrife.loaders`), the
model with its optimizer and schedule, the resume, the loop over epochs, and the test of the
best-validation checkpoint (scored by :mod:`mrife.evaluation`). The loop knows a model only
through the training contract of :mod:`mrife.models.base`.
"""

from __future__ import annotations

import logging
import resource
import shutil
import time
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from mrife.compute import Compute
from mrife.config import RunConfig, save_yaml
from mrife.distributed import Ranks, global_batch_dropout, join, sharing, sync_batch_norm
from mrife.evaluation import ablation_metrics, scored_confusions, validate
from mrife.loaders import build_loaders, build_splits
from mrife.metrics import ConfusionMatrix
from mrife.models import SegmentationModel, build_model
from mrife.progress import announce, tqdm
from mrife.runs import (code_version, epoch_seconds, is_finished, load_checkpoint, provenance, remove_partial_writes,
                        run_dir_for, save_checkpoint, write_json)

log = logging.getLogger(__name__)  # what a run says without a progress bar (mrife.progress.log_to_stdout)


# ---------------------------------------------------------------- optimizer, model and processes
def build_optimizer(cfg: RunConfig, model: SegmentationModel, steps_per_epoch: int):
    """The paper's SGD and a poly learning-rate schedule precomputed over every step."""
    t = cfg.train
    optimizer = torch.optim.SGD(model.trainable_parameters(), lr=t.lr, momentum=t.momentum,
                                weight_decay=t.weight_decay)
    total = t.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: (1 - min(step, total - 1) / total) ** t.lr_power)
    return optimizer, schedule


class TrainingLosses(nn.Module):
    """A model's :meth:`training_losses` as a forward pass: what DistributedDataParallel
    wraps, since it synchronizes the gradients of what its forward computes."""

    def __init__(self, model: SegmentationModel):
        super().__init__()
        self.model = model

    def forward(self, images: Tensor, masks: Tensor, step: int, generator: torch.Generator) -> dict[str, Tensor]:
        return self.model.training_losses(images, masks, step, generator)


def distribute(model: SegmentationModel, cfg: RunConfig, compute: Compute, ranks: Ranks):
    """What computes a training step's losses: ``model.training_losses`` in one process;
    among several, the model (dropout drawn for the global batch, batch norm synchronized
    with ``train.sync_bn``) wrapped in DistributedDataParallel."""
    if ranks.world == 1:
        return model.training_losses
    share = cfg.train.batch_size // ranks.world
    if model.batch_split is None or (model.batch_split == "pairs" and share % 2):
        raise ValueError(
            f"{type(model).__name__} cannot share a batch of {cfg.train.batch_size} among {ranks.world} processes: "
            + ("its loss compares every image of the batch with every other; train it in one process"
               if model.batch_split is None else f"its loss pairs the images, and each share of {share} must be even"))
    global_batch_dropout(model)
    if cfg.train.sync_bn:
        sync_batch_norm(model, compute.device)
    return DistributedDataParallel(TrainingLosses(model), device_ids=[compute.device.index] if compute.device.type == "cuda" else None)


def build_training(cfg: RunConfig, steps_per_epoch: int, compute: Compute, ranks: Ranks = Ranks()):
    """The model of ``cfg`` (drawn with ``cfg.seed``) on the configured device, what computes
    its training steps' losses (:func:`distribute`), and ``(optimizer, schedule, scaler)``."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(compute.device, memory_format=compute.memory_format)
    step_losses = distribute(model, cfg, compute, ranks)
    optimizer, schedule = build_optimizer(cfg, model, steps_per_epoch)
    return model, step_losses, (optimizer, schedule, compute.grad_scaler())


# ---------------------------------------------------------------- the loop
def open_run(cfg: RunConfig, root: str | Path, force: bool) -> tuple[Path, Compute, Ranks]:
    """The run directory of ``cfg`` under ``root``, this process's compute, and the
    processes that train the run together (:func:`mrife.distributed.join`).

    ``force`` deletes the directory first. Unless the run is finished, rank 0 makes the
    directory, deletes what a killed try left half written and writes ``config.yaml``.
    """
    run = run_dir_for(cfg, root)
    compute = Compute.from_config(cfg.train)
    ranks = join(compute.device)
    compute = compute.on_rank(ranks.local_rank)
    if ranks.main and force and run.exists():
        shutil.rmtree(run)
    ranks.barrier()
    if ranks.main and not is_finished(run):
        run.mkdir(parents=True, exist_ok=True)
        remove_partial_writes(run)  # a try killed mid-write
        save_yaml(cfg, run / "config.yaml")
    return run, compute, ranks


def fit(cfg: RunConfig, root: str | Path = "runs", progress: bool = True, force: bool = False) -> Path:
    """Train ``cfg`` into its run directory under ``root``; resume or skip if it exists.

    Returns the run directory. A finished run (``test_metrics.json`` present) is returned
    as it is; an interrupted one resumes after its last complete epoch. ``force`` deletes
    what the directory holds and trains the run again from the start. Started by
    torchrun, the processes train the run together (:mod:`mrife.distributed`); rank 0
    writes it.
    """
    # The run directory, and the processes that train it together
    run, compute, ranks = open_run(cfg, root, force)
    if is_finished(run):
        return run
    progress = progress and ranks.main
    started = time.perf_counter()

    # Data
    loaders = build_loaders(cfg, build_splits(cfg, progress), ranks)

    # Model, optimizer and schedule on the configured device; then what an interrupted run had done
    model, step_losses, (optimizer, schedule, scaler) = build_training(cfg, len(loaders["train"]), compute, ranks)
    state = resume(run, model, optimizer, schedule, scaler, compute.device)
    if state["history"] and ranks.main:  # a kill can fall between the last epoch's last.pt and its history.json
        write_json(run / "history.json", state["history"])
    started -= state["seconds"]  # wall time counts every try
    if ranks.main:
        announce(expected_time(cfg, run.parent, cfg.train.epochs - state["epoch"] - 1), progress, log)
    state["tries"].append(code_version())  # read now: the checkout may change while it trains

    # Loop: train an epoch, validate, keep the best weights and a resumable state
    draws = torch.Generator()  # the model's own random draws (the mask module)
    epochs = tqdm(range(state["epoch"] + 1, cfg.train.epochs), desc=run.name, disable=not progress,
                  initial=state["epoch"] + 1, total=cfg.train.epochs)
    for epoch in epochs:
        tic = time.perf_counter()
        seed_epoch(cfg.seed, epoch, loaders["train"], draws)
        terms = train_epoch(model, loaders["train"], (optimizer, schedule, scaler), draws, compute, progress,
                            ranks, step_losses)
        val = validate(model, loaders["val"], compute, ranks)
        record = epoch_record(epoch, schedule, terms, val, tic)
        if ranks.main:
            save_epoch(run, state, record, model, (optimizer, schedule, scaler), time.perf_counter() - started)
        epochs.set_postfix(loss=f"{terms['loss']:.3f}", val_lIoU=f"{record['val_lIoU']:.3f}")
    ranks.barrier()  # best.pt is written

    # Test the best-validation checkpoint, whole and with each part the model names switched off
    test_and_write(run, cfg, model, loaders, compute, ranks, started, state["tries"])
    return run


def test_and_write(run: Path, cfg: RunConfig, model: SegmentationModel, loaders: dict[str, DataLoader],
                   compute: Compute, ranks: Ranks, started: float, tries: list) -> None:
    """Score the best-validation checkpoint on the test split, whole and with each part the
    model names switched off; then rank 0 finishes the run: ``test_confusions.json``,
    ``normalization.json``, ``provenance.json`` (the wall time since ``started``, every
    try's code version), ``test_metrics.json`` (the mark of a finished run), and
    ``last.pt`` deleted."""
    model.load_state_dict(load_checkpoint(run / "best.pt", compute.device))
    per_scene = scored_confusions(model, loaders["test"], compute, ranks)
    ablated = ablation_metrics(model, loaders["test"], compute, ranks)
    if not ranks.main:
        return
    test = ConfusionMatrix.pooled(per_scene.values()).compute() | ablated | model.test_metrics(loaders["test"])
    write_json(run / "test_confusions.json", {scene: cm.counts for scene, cm in per_scene.items()})
    write_json(run / "normalization.json", {"mean": loaders["train"].dataset.mean, "std": loaders["train"].dataset.std})
    write_json(run / "provenance.json", provenance(cfg, compute, time.perf_counter() - started, tries, ranks))
    write_json(run / "test_metrics.json", test)
    (run / "last.pt").unlink(missing_ok=True)


def expected_time(cfg: RunConfig, folder: Path, epochs: int) -> str:
    """What training ``epochs`` more epochs of ``cfg`` is expected to take, said before it
    starts: the median epoch of the finished runs of the same model in ``folder`` (timed
    on the machine that trained them), or the progress bar's estimate after one epoch."""
    seconds = epoch_seconds(folder).get(cfg.model.name)
    if seconds is None:
        return (f"{epochs} epochs to train; the progress bar estimates the time after the first "
                f"(no finished {cfg.model.name} run in {folder} to time them by)")
    return (f"{epochs} epochs to train: about {epochs * seconds / 60:.0f} min at {seconds:.0f} s an epoch "
            f"(the median of the finished {cfg.model.name} runs in {folder})")


def dry_run(cfg: RunConfig, steps: int = 2, progress: bool = True) -> dict:
    """Build what a run of ``cfg`` needs -- the data, the loaders with their configured
    workers, the model, the optimizer -- and time ``steps`` training steps; nothing is
    written.

    Returns ``steps_per_epoch``, ``step_seconds`` (each step; the first includes warm-up),
    ``peak_memory_mib`` (CUDA: the most memory allocated; CPU: the process's peak resident
    set, data included), ``memory_kind``, ``device`` and ``projected_hours``: epochs x steps
    per epoch x the last step's time (validation not counted).
    """
    loaders = build_loaders(cfg, build_splits(cfg, progress))
    compute = Compute.from_config(cfg.train)
    model, _, optimization = build_training(cfg, len(loaders["train"]), compute)
    draws = torch.Generator()
    seed_epoch(cfg.seed, 0, loaders["train"], draws)
    model.train()
    cuda = compute.device.type == "cuda"
    seconds = []
    for batch, _ in zip(loaders["train"], range(steps)):
        tic = time.perf_counter()
        train_step(model, batch, optimization, draws, compute)
        if cuda:
            torch.cuda.synchronize(compute.device)
        seconds.append(time.perf_counter() - tic)
    if cuda:
        memory, kind = torch.cuda.max_memory_allocated(compute.device) / 2**20, "CUDA memory allocated, at most"
    else:
        memory, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process resident set, at most"
    per_epoch = len(loaders["train"])
    return {"steps_per_epoch": per_epoch, "step_seconds": seconds, "peak_memory_mib": memory,
            "memory_kind": kind, "device": str(compute.device),
            "projected_hours": cfg.train.epochs * per_epoch * seconds[-1] / 3600}


def resume(run: Path, model, optimizer, schedule, scaler, device) -> dict:
    """The loop's state: ``{"epoch", "best", "history", "seconds", "tries"}``, from ``last.pt``
    if there is one (``tries``: the code version of each earlier try).

    The model, optimizer, schedule and gradient scaler are loaded in place. A fresh run
    starts at epoch -1 (none done), best validation lIoU -1.
    """
    if not (run / "last.pt").exists():
        return {"epoch": -1, "best": -1.0, "history": [], "seconds": 0.0, "tries": []}
    saved = load_checkpoint(run / "last.pt", device)
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["schedule"])
    scaler.load_state_dict(saved["scaler"])
    return {k: saved[k] for k in ("epoch", "best", "history", "seconds")} | {"tries": saved.get("tries", [])}


def seed_epoch(seed: int, epoch: int, loader: DataLoader, draws: torch.Generator) -> None:
    """Seed every random draw of an epoch by ``(seed, epoch)``: a resumed run continues
    exactly as an uninterrupted one would."""
    epoch_seed = seed * 100_003 + epoch
    torch.manual_seed(epoch_seed)
    loader.generator.manual_seed(epoch_seed)
    loader.dataset.set_epoch(epoch)
    draws.manual_seed(epoch_seed)


def train_step(model: SegmentationModel, batch: dict, optimization, draws, compute: Compute,
               ranks: Ranks = Ranks(), step_losses=None) -> dict[str, Tensor]:
    """One optimizer step on ``batch``; returns the model's loss terms (detached; among
    several processes, the global batch's).

    ``optimization`` is ``(optimizer, schedule, scaler)``; ``step_losses`` (default
    ``model.training_losses``) is what :func:`distribute` returns.
    """
    optimizer, schedule, scaler = optimization
    images, masks = compute.inputs(batch)
    with compute.autocast(), sharing(ranks):
        losses = (step_losses or model.training_losses)(images, masks, schedule.last_epoch, draws)
    terms = global_terms(losses, ranks)
    if not torch.isfinite(terms["loss"]):
        values = {k: float(v) for k, v in terms.items()}
        raise FloatingPointError(
            f"non-finite loss {values}; training stopped, the last complete epoch's "
            f"checkpoint is kept (lower train.lr or check the data)"
        )
    optimizer.zero_grad(set_to_none=True)
    # DistributedDataParallel averages the ranks' gradients; their losses add up to the global one
    scaler.scale(losses["loss"] * ranks.world if ranks.world > 1 else losses["loss"]).backward()
    scaler.step(optimizer)
    scaler.update()
    schedule.step()
    model.after_step()
    return terms


def global_terms(losses: dict[str, Tensor], ranks: Ranks) -> dict[str, Tensor]:
    """The loss terms of the global batch, detached: each rank's parts summed, except the
    ratios named ``share_*`` (MRIFE's gradient shares), averaged."""
    if ranks.world == 1:
        return {k: v.detach() for k, v in losses.items()}
    names = sorted(losses)  # the same terms on every rank, summed in one exchange
    summed = ranks.sum(torch.stack([losses[k].detach().float() for k in names]))
    return {k: v / ranks.world if k.startswith("share_") else v for k, v in zip(names, summed)}


def train_epoch(model: SegmentationModel, loader, optimization, draws, compute: Compute,
                progress: bool, ranks: Ranks = Ranks(), step_losses=None) -> dict[str, float]:
    """One pass over ``loader``; returns the mean of each term the model reports, over the
    batches that report it (a diagnostic measured every few steps is averaged over those).

    ``optimization`` is ``(optimizer, schedule, scaler)``; ``ranks`` and ``step_losses``
    as :func:`train_step` takes them.
    """
    model.train()
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for batch in tqdm(loader, desc="batches", leave=False, disable=not progress):
        losses = train_step(model, batch, optimization, draws, compute, ranks, step_losses)
        for k in losses:
            sums[k] = sums.get(k, 0.0) + float(losses[k])
            counts[k] = counts.get(k, 0) + 1
    return {k: v / counts[k] for k, v in sums.items()}


def epoch_record(epoch: int, schedule, terms: dict, val: dict, tic: float) -> dict:
    """One line of ``history.json``: the epoch's loss terms, validation metrics and seconds."""
    return {"epoch": epoch, "lr": schedule.get_last_lr()[0],
            **{f"train_{k}": v for k, v in terms.items()},
            **{f"val_{k}": v for k, v in val.items()},
            "seconds": round(time.perf_counter() - tic, 2)}


def save_epoch(run: Path, state: dict, record: dict, model, optimization, seconds: float) -> None:
    """Add ``record`` to the history; write ``best.pt`` on a new best validation lIoU, then
    ``last.pt`` and ``history.json`` (``state`` is updated in place).

    ``optimization`` is ``(optimizer, schedule, scaler)``."""
    optimizer, schedule, scaler = optimization
    state["history"].append(record)
    state.update(epoch=record["epoch"], seconds=seconds)
    if record["val_lIoU"] > state["best"]:
        state["best"] = record["val_lIoU"]
        save_checkpoint(run / "best.pt", model.state_dict())
    save_checkpoint(run / "last.pt", {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                      "schedule": schedule.state_dict(), "scaler": scaler.state_dict(),
                                      **state})
    write_json(run / "history.json", state["history"])
