"""mrife: relic-landslide segmentation with MRIFE (He et al.), reproduced in PyTorch.

The names a notebook needs::

    import mrife
    cfg = mrife.load_profile("smoke")          # or "cpu", "paper"
    run = mrife.fit(cfg, "runs")               # train into a run directory
    cfg, model = mrife.load_run(run)           # the best checkpoint, eval mode

    probability = mrife.predict.predict(run, "scene.tif")  # float32 [H, W]
    runs = mrife.results("cpu", "mrife")       # the committed runs of an experiment, seed by seed
    mrife.verdicts("cpu", mrife.paper.CLAIMS)  # each claim of the paper against our runs

and the pieces: ``mrife.data``, ``mrife.BlockMasker``, ``mrife.build_model``,
``mrife.joint_loss``, ``mrife.ConfusionMatrix``.

Imports run one way, from the leaves up; a module imports only from its own layer's
package or from the layers below it (``tests/test_layers.py`` checks every import):

0. ``labels``: the values a label mask holds (background, landslide, ignored),
   ``distributed``: the processes a run is shared among (torchrun), ``paper``: the
   paper's numbers, ``progress``: the progress bars of long work, and ``claims``: the
   rules the runs are read with (learned, plateau, verdict, open-choice decision);
1. the leaves: ``config``, ``compute``, ``data``, ``gis`` (map files a GIS opens:
   GeoTIFF, GeoJSON, GeoPackage), ``masking``, ``metrics`` and ``mrife.kernels`` (the
   SFCE kernel with the reference it is checked against);
2. ``losses``: every loss term, built on the kernels, ``loaders``: a run's data (its
   scenes, split by scene, and the loaders), and ``report``: what the runs' tables say,
   in words, and the settings beside the paper's;
3. ``models``: the models and their training contract (``models/base.py``), and
   ``training_report``: how a model's runs trained, epoch by epoch, in tables and words;
4. ``runs``: the run directory (atomic writes, checkpoints, provenance, ``load_run``),
   and ``evaluation``: a model scored on a loader's tiles, pooled or scene by scene;
5. ``train``: the loop, and ``migrate``: committed runs renamed when the configuration
   gains a field;
6. what uses trained runs: ``cam``, ``plots``, ``predict``;
7. ``figure_data``: what the book draws from a trained run, kept beside it;
8. ``experiments``: every run the book needs (experiments, open choices, seeds);
9. ``results``: the finished runs, read back;
10. ``reproduce``: training the runs not finished yet, and ``tables``: the tables that
    compare the runs, with the paper and with each other;
11. ``cli``, then this package's face (``__init__``, ``__main__``).
"""

__version__ = "0.1.0"

import importlib
import importlib.util

# Before any library that imports tqdm.auto (timm, through huggingface_hub): the first
# import of tqdm.auto in a kernel without ipywidgets warns "IProgress not found", and
# mrife.progress imports it with that warning silenced (about 0.1 s).
from mrife import progress  # noqa: F401

# The names a notebook needs, by the module that defines them. They are imported on first
# use (PEP 562), as is any submodule (``mrife.predict``, ``mrife.data``, ...), so that
# ``import mrife`` and ``mrife --help`` load no torch, timm or rasterio.
_EXPORTS = {
    "mrife.config": ("RunConfig", "load_profile"),
    "mrife.evaluation": ("evaluate",),
    "mrife.kernels": ("supervised_contrastive",),
    "mrife.losses": ("joint_loss", "reconstruction_loss", "sfce_loss"),
    "mrife.masking": ("BlockMasker", "classify_blocks"),
    "mrife.metrics": ("ConfusionMatrix",),
    "mrife.models": ("MODEL_NAMES", "build_model"),
    "mrife.results": ("finished", "results"),
    "mrife.runs": ("load_run",),
    "mrife.tables": ("verdicts",),
    "mrife.train": ("fit",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["data", "predict", *_MODULE_OF]


def __getattr__(name: str):
    """``mrife.<name>``: an exported name or a submodule, imported now and kept."""
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'mrife' has no attribute {name!r}; its names: {', '.join(sorted(__all__))}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
