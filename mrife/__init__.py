"""mrife: relic-landslide segmentation with MRIFE (He et al.), reproduced in PyTorch.

The names a notebook needs::

    import mrife
    cfg = mrife.load_profile("smoke")          # or "cpu", "paper"
    run = mrife.fit(cfg, "runs")               # train into a run directory
    cfg, model = mrife.load_run(run)           # the best checkpoint, eval mode

and the pieces: ``mrife.data``, ``mrife.BlockMasker``, ``mrife.build_model``,
``mrife.joint_loss``, ``mrife.ConfusionMatrix``.

Imports run one way, from the leaves up; a module imports only from its own layer's
package or from the layers below it (``tests/test_layers.py`` checks every import):

0. ``labels``: the values a label mask holds (background, landslide, ignored),
   ``distributed``: the processes a run is shared among (torchrun), ``paper``: the
   paper's numbers, and ``progress``: the progress bars of long work;
1. the leaves: ``config``, ``compute``, ``data``, ``findings`` (what the runs' tables
   say, in words), ``maps``, ``masking``, ``metrics`` and ``mrife.kernels`` (the SFCE
   kernel with the reference it is checked against);
2. ``losses``: every loss term, built on the kernels;
3. ``models``: the models and their training contract (``models/base.py``);
4. ``runs``: the run directory (atomic writes, checkpoints, provenance, ``load_run``);
5. ``train``: the data loaders and the loop;
6. what uses trained runs: ``cam``, ``plots``, ``predict``;
7. ``figures``: what the book draws from a trained run, kept beside it;
8. ``reproduce``: every run the book needs, and the tables that compare them;
9. ``cli``, then this package's face (``__init__``, ``__main__``).
"""

__version__ = "0.1.0"

from mrife import data
from mrife.config import RunConfig, load_profile
from mrife.kernels import supervised_contrastive
from mrife.losses import joint_loss, reconstruction_loss, sfce_loss
from mrife.masking import BlockMasker, classify_blocks
from mrife.metrics import ConfusionMatrix
from mrife.models import MODEL_NAMES, build_model
from mrife.runs import load_run
from mrife.train import evaluate, fit

__all__ = [
    "data", "RunConfig", "load_profile", "joint_loss", "reconstruction_loss", "sfce_loss",
    "supervised_contrastive", "BlockMasker", "classify_blocks", "ConfusionMatrix", "MODEL_NAMES",
    "build_model", "evaluate", "fit", "load_run",
]
