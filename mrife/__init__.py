"""mrife: relic-landslide segmentation with MRIFE (He et al.), reproduced in PyTorch.

The names a notebook needs::

    import mrife
    cfg = mrife.load_profile("smoke")          # or "cpu", "paper"
    run = mrife.fit(cfg, "runs")               # train into a run directory
    cfg, model = mrife.load_run(run)           # the best checkpoint, eval mode

and the pieces: ``mrife.data``, ``mrife.BlockMasker``, ``mrife.build_model``,
``mrife.joint_loss``, ``mrife.ConfusionMatrix``.
"""

__version__ = "0.1.0"

from mrife import data
from mrife.config import RunConfig, load_profile
from mrife.losses import joint_loss, reconstruction_loss, sfce_loss, supervised_contrastive
from mrife.masking import BlockMasker, classify_blocks
from mrife.metrics import ConfusionMatrix
from mrife.models import MODEL_NAMES, build_model
from mrife.train import evaluate, fit, load_run

__all__ = [
    "data", "RunConfig", "load_profile", "joint_loss", "reconstruction_loss", "sfce_loss",
    "supervised_contrastive", "BlockMasker", "classify_blocks", "ConfusionMatrix", "MODEL_NAMES",
    "build_model", "evaluate", "fit", "load_run",
]
