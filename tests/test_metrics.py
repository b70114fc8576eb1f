"""Metrics pooled over a confusion matrix (paper Eqs. 9-14, NOTES.md errata)."""

import math

import pytest
import torch

from mrife.metrics import METRIC_NAMES, ConfusionMatrix, scene_bootstrap


def from_counts(tp, fp, fn, tn) -> ConfusionMatrix:
    cm = ConfusionMatrix()
    cm.tp, cm.fp, cm.fn, cm.tn = tp, fp, fn, tn
    return cm


@pytest.mark.parametrize("seed", range(20))
def test_liou_f1_identity(seed):
    g = torch.Generator().manual_seed(seed)
    tp, fp, fn, tn = (int(x) for x in torch.randint(0, 10_000, (4,), generator=g))
    m = from_counts(tp, fp, fn, tn).compute()
    assert m["lIoU"] == pytest.approx(m["F1"] / (2 - m["F1"]), rel=1e-12), f"lIoU != F1/(2-F1) for {m}"


def test_paper_table_iii_row_is_consistent():
    # Baseline row of Table III: F1 0.5054 gives lIoU 0.3381 under the identity.
    assert 0.5054 / (2 - 0.5054) == pytest.approx(0.3381, abs=1e-4)


def test_definitions_on_known_counts():
    m = from_counts(tp=30, fp=10, fn=20, tn=40).compute()
    assert set(m) == set(METRIC_NAMES)
    assert m["PA"] == pytest.approx(0.7)
    assert m["precision"] == pytest.approx(0.75)
    assert m["recall"] == pytest.approx(0.6)
    assert m["F1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert m["lIoU"] == pytest.approx(0.5)
    assert m["mIoU"] == pytest.approx((0.5 + 40 / 70) / 2)


def test_update_pools_pixels_and_accepts_logits():
    target = torch.tensor([[[1, 0], [1, 1]]])
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1, 0, 0] = 1.0  # predicts landslide at (0, 0) only
    cm = ConfusionMatrix()
    cm.update(logits, target)
    cm.update(target, target)  # a perfect batch as labels
    assert (cm.tp, cm.fp, cm.fn, cm.tn) == (1 + 3, 0, 2, 1 + 1)


def test_absent_class_gives_no_nan():
    cm = ConfusionMatrix()
    cm.update(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4, dtype=torch.long))
    m = cm.compute()
    assert all(not math.isnan(v) for v in m.values()), f"NaN in {m}"
    assert m["PA"] == 1.0 and m["mIoU"] == 1.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        ConfusionMatrix().update(torch.zeros(1, 4, 4), torch.zeros(1, 4, 5))


# ---------------------------------------------------------------- scene bootstrap
def per_scene(counts: dict[str, tuple]) -> dict[str, ConfusionMatrix]:
    return {scene: from_counts(*c) for scene, c in counts.items()}


WEAK = {"a": (10, 30, 30, 930), "b": (50, 10, 60, 880), "c": (0, 5, 40, 955), "d": (80, 40, 20, 860)}
STRONG = {s: (tp + 5, max(fp - 5, 0), max(fn - 5, 0), tn) for s, (tp, fp, fn, tn) in WEAK.items()}


def test_bootstrap_value_is_the_pooled_metric():
    table = scene_bootstrap({"weak": per_scene(WEAK)}, "lIoU")
    tp, fp, fn, _ = (sum(c[k] for c in WEAK.values()) for k in range(4))
    assert table.loc["weak", "value"] == pytest.approx(tp / (tp + fp + fn))
    assert table.loc["weak", "low"] <= table.loc["weak", "value"] <= table.loc["weak", "high"]
    assert table.loc["weak", "low"] < table.loc["weak", "high"], "four unequal scenes must give an interval"


def test_bootstrap_difference_is_paired():
    table = scene_bootstrap({"weak": per_scene(WEAK), "strong": per_scene(STRONG), "same": per_scene(WEAK)},
                            "F1", focus="strong")
    # better on every scene: better on every draw, whatever scenes the draw holds
    assert table.loc["strong - weak", "share > 0"] == 1.0 and table.loc["strong - weak", "low"] > 0
    # two copies of one model: the paired difference is zero on every draw
    same = scene_bootstrap({"weak": per_scene(WEAK), "copy": per_scene(WEAK)}, "F1", focus="copy")
    assert same.loc["copy - weak", ["value", "low", "high", "share > 0"]].tolist() == [0, 0, 0, 0]


def test_bootstrap_is_seeded():
    a = scene_bootstrap({"weak": per_scene(WEAK)}, seed=3)
    b = scene_bootstrap({"weak": per_scene(WEAK)}, seed=3)
    assert a.equals(b)


def test_bootstrap_bad_input():
    with pytest.raises(ValueError, match="same test scenes"):
        scene_bootstrap({"weak": per_scene(WEAK), "other": per_scene({"a": WEAK["a"]})})
    with pytest.raises(KeyError, match="unknown metric"):
        scene_bootstrap({"weak": per_scene(WEAK)}, "IoU")
    with pytest.raises(KeyError, match="focus"):
        scene_bootstrap({"weak": per_scene(WEAK)}, focus="nope")
    with pytest.raises(ValueError, match="level"):
        scene_bootstrap({"weak": per_scene(WEAK)}, level=90)
