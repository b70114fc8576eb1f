"""The run directory: one training run on disk, written so that nothing is lost.

A run directory ``<root>/<model>-<config hash>/`` holds:

- ``config.yaml``: the resolved configuration;
- ``history.json``: one record per epoch (each loss term, validation metrics, seconds);
- ``best.pt``: the weights of the epoch with the best validation lIoU;
- ``last.pt`` (model, optimizer, schedule, gradient scaler, epoch, best validation lIoU,
  history, seconds so far, the code of each try): for resuming, while the run is under
  way; removed once the run is finished, since a finished run is never trained again (it
  is twice the size of ``best.pt``);
- ``test_confusions.json``: the best checkpoint's pixel counts ``[TP, FP, FN, TN]`` per
  test scene (what the scene and seed bootstraps resample);
- ``normalization.json``: the per-band ``mean`` and ``std`` the inputs were normalized
  with (ImageNet's for RGB, the training split's for other bands): what prediction needs;
- ``test_metrics.json``: the best checkpoint on the test split; its presence marks the
  run finished;
- ``provenance.json``: the git commit each try started from (and whether the tree had
  uncommitted changes), package versions, seed, device, precision, threads, wall time.

Beside the directory, ``.<model>-<config hash>.claim`` names the host and process
training it while it trains (:func:`claim`), so that several ``mrife reproduce`` sharing
one results folder each take another run.

Every file is written atomically (temporary file, then rename), so an interrupted run
loses at most the epoch under way and resumes from its last complete one. Checkpoints are
read with ``weights_only=True``: a checkpoint from elsewhere cannot run code.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import socket
import statistics
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import torch

from mrife.compute import Compute, cpu_kind, native_bf16, processor
from mrife.config import RunConfig, config_hash, load_yaml
from mrife.data.folder import fingerprint
from mrife.data.transforms import MEAN, STD
from mrife.distributed import Ranks
from mrife.models import SegmentationModel, build_model

BUILT_IN_SOURCES = ("sichuan", "synthetic")  # checksummed downloads, or generated from the config


def run_dir_for(cfg: RunConfig, root: str | Path = "runs") -> Path:
    """``<root>/<model>-<identity>``: the directory of the run ``cfg`` describes.

    The identity is the config's hash; for a data folder (``data.source`` a path) it also
    covers the folder's :func:`~mrife.data.folder.fingerprint`, so editing the data makes
    a new run.
    """
    identity = config_hash(cfg)
    if cfg.data.source not in BUILT_IN_SOURCES:
        identity = hashlib.sha256(f"{identity}:{fingerprint(cfg.data.source, cfg.data.bands)}".encode()).hexdigest()[:10]
    return Path(root) / f"{cfg.model.name}-{identity}"


def is_finished(run: Path) -> bool:
    return (run / "test_metrics.json").exists()


def epoch_seconds(folder: str | Path, processor: str | None = None) -> dict[str, float]:
    """The median seconds of a training epoch of each model (``model.name``) over the
    finished runs in ``folder``, from their histories: what an expected time multiplies.
    With ``processor``, only the runs whose provenance names it (:func:`mrife.compute.processor`):
    epoch times differ between the project's kinds of machine by up to 3x."""
    per_model: dict[str, list[float]] = {}
    for run in sorted(Path(folder).glob("*/")):
        if is_finished(run) and (processor is None or
                                 json.loads((run / "provenance.json").read_text()).get("processor") == processor):
            history = json.loads((run / "history.json").read_text())
            per_model.setdefault(load_yaml(run / "config.yaml").model.name, []).extend(e["seconds"] for e in history)
    return {model: statistics.median(seconds) for model, seconds in per_model.items()}


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


def remove_partial_writes(run: Path) -> None:
    """Delete what a killed process left of an :func:`atomic_write` (``.<name>.*`` files):
    the file it was replacing is intact beside it."""
    for partial in run.glob(".*.*"):
        partial.unlink(missing_ok=True)


@contextlib.contextmanager
def claim(run: Path):
    """Hold the right to train ``run`` while the block runs.

    The claim is a file ``.<run name>.claim`` beside the run directory naming this host and
    process, created atomically (it exists whole or not at all) and removed when the block
    ends. Yields ``None`` when this process holds it, or the holder (``{"host", "pid"}``)
    when another live process does: another ``mrife reproduce`` sharing the results folder
    is training the run. A claim left by a process that died on this host is taken over;
    one from another host is respected (delete the file if that host's job is gone).
    """
    path = run.parent / f".{run.name}.claim"
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"host": socket.gethostname(), "pid": os.getpid()}
    holder = _take(path, me)
    try:
        yield holder
    finally:
        if holder is None:
            path.unlink(missing_ok=True)


def _take(path: Path, me: dict) -> dict | None:
    """Create the claim ``path`` naming ``me``; None on success, else its live holder."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".claim-")
    with os.fdopen(fd, "w") as f:
        json.dump(me, f)
    try:
        for _ in range(2):
            try:
                os.link(tmp, path)  # atomic, and fails if the claim exists: no one sees half a claim
                return None
            except FileExistsError:
                try:
                    holder = json.loads(path.read_text())
                except FileNotFoundError:  # released since: try again
                    continue
                if holder["host"] != me["host"] or _alive(holder["pid"]):
                    return holder
                path.unlink(missing_ok=True)  # its process died on this host: take it over
        return json.loads(path.read_text())
    finally:
        os.unlink(tmp)


@contextlib.contextmanager
def locked(path: Path):
    """Hold an exclusive lock for ``path`` while the block runs, so that processes of this
    host that share a results folder read, change and write the file one at a time (the
    lock is ``.<name>.lock`` beside it, kept: removing a lock file races with its next
    holder). A reader outside the lock still sees the file whole: writes are atomic."""
    with open(path.parent / f".{path.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=1)))


def save_checkpoint(path: Path, state: dict) -> None:
    atomic_write(path, lambda p: torch.save(state, p))


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict:
    """A checkpoint's tensors and plain values; refuses anything else (``weights_only``)."""
    return torch.load(path, map_location=device, weights_only=True)


def code_version() -> dict:
    """The code a run is trained with, read when a try starts: ``git_commit`` and
    ``git_dirty`` (true when tracked files differed from that commit, ``None`` outside a
    git checkout)."""
    commit = _git("rev-parse", "HEAD")
    changes = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit or "unknown", "git_dirty": None if changes is None else bool(changes)}


def changed_tree(run: Path) -> str | None:
    """Why a finished run cannot be traced to a commit of this repository, or ``None`` when
    it can: its ``provenance.json`` names a commit and no try ran on changed tracked files
    (a run from a changed tree ran code that no commit holds exactly)."""
    prov = json.loads((Path(run) / "provenance.json").read_text())
    if prov["git_dirty"] is False:
        return None
    if prov["git_dirty"] is None:
        return "trained outside a git checkout"
    return f"trained from a changed tree at commit {prov['git_commit'][:10]}"


def provenance(cfg: RunConfig, compute: Compute, seconds: float, tries: list[dict], ranks: Ranks = Ranks()) -> dict:
    """Where and with what a run was produced (``precision`` as resolved: ``auto`` is decided;
    ``world_size`` processes, with ``backend``, ``sync_bn`` when there were several).

    ``tries`` holds :func:`code_version` of each try (a resumed run has several); the
    first try's commit is the run's ``git_commit``, and ``git_dirty`` is true if any try
    ran on changed files.
    """
    dirty = [t["git_dirty"] for t in tries]
    packages = {p: package_version(p) for p in ("mrife", "torch", "torchvision", "timm", "numpy", "triton")}
    return {"git_commit": tries[0]["git_commit"] if tries else "unknown",
            "git_dirty": None if None in dirty or not dirty else any(dirty), "tries": tries,
            "packages": packages, "python": platform.python_version(),
            "seed": cfg.seed, "device": str(compute.device), "precision": compute.precision,
            "channels_last": compute.channels_last, "threads": torch.get_num_threads(),
            "machine": platform.machine(), "processor": processor() if compute.device.type == "cpu" else torch.cuda.get_device_name(compute.device),
            "native_bf16": native_bf16(compute.device),
            "cpu_kind": cpu_kind() if compute.device.type == "cpu" else None,  # what rounds alike (mrife.compute)
            "wall_time_s": round(seconds, 1), "world_size": ranks.world,
            "deterministic": cfg.train.deterministic,
            **({"backend": ranks.backend, "sync_bn": cfg.train.sync_bn} if ranks.world > 1 else {})}


def _git(*args: str) -> str:
    """Output of ``git args`` in the package's checkout ("" when git or the checkout is missing)."""
    try:
        return subprocess.run(["git", *args], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def package_version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def load_normalization(run: str | Path, cfg: RunConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The per-band ``(mean, std)`` a run normalized its inputs with (``normalization.json``;
    a run finished before that file existed is RGB with ImageNet's statistics)."""
    path = Path(run) / "normalization.json"
    if path.exists():
        saved = json.loads(path.read_text())
        return tuple(saved["mean"]), tuple(saved["std"])
    if cfg.data.bands != 3:
        raise FileNotFoundError(f"{path} does not exist: the run's band statistics are unknown (retrain it)")
    return MEAN, STD


def load_run(run: str | Path, checkpoint: str = "best.pt") -> tuple[RunConfig, SegmentationModel]:
    """``(config, model)`` of a run directory, the model in eval mode on the CPU."""
    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(f"no such run directory: {run}")
    if not (run / "config.yaml").exists():
        raise FileNotFoundError(f"{run} holds no config.yaml: not a run directory (mrife train writes them)")
    if not (run / checkpoint).exists():
        raise FileNotFoundError(f"{run / checkpoint} does not exist: train the run first (mrife train)")
    cfg = load_yaml(run / "config.yaml")
    cfg.model.pretrained = False  # the checkpoint holds every weight
    model = build_model(cfg)
    state = load_checkpoint(run / checkpoint)
    model.load_state_dict(state["model"] if "optimizer" in state else state)
    return cfg, model.eval()
