"""Metrics pooled over a confusion matrix (paper Eqs. 9-14, NOTES.md errata)."""

import math

import pytest
import torch

from mrife.labels import IGNORE
from mrife.metrics import METRIC_NAMES, ConfusionMatrix, ScoreHistogram, hierarchical_bootstrap, scene_bootstrap


from_counts = ConfusionMatrix.from_counts


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


def test_a_model_that_predicts_nothing_has_precision_zero():
    target = torch.tensor([[[1, 0], [0, 0]]])
    cm = ConfusionMatrix()
    cm.update(torch.zeros_like(target), target)
    m = cm.compute()
    assert m["precision"] == 0.0, f"no positive prediction must give precision 0, not 0/0 = 1: {m}"
    assert cm.predicts_nothing and m["recall"] == 0.0 and m["lIoU"] == 0.0


def test_ignored_pixels_are_not_counted():
    # A padded tile scores exactly as its unpadded crop: the padding (255) counts nowhere.
    target = torch.tensor([[1, 0, 255], [1, 1, 255], [255, 255, 255]])
    pred = torch.tensor([[1, 1, 1], [0, 1, 0], [1, 0, 0]])
    padded, crop = ConfusionMatrix(), ConfusionMatrix()
    padded.update(pred[None], target[None])
    crop.update(pred[None, :2, :2], target[None, :2, :2])
    assert padded.counts == crop.counts == (2, 1, 1, 0), f"expected (2, 1, 1, 0), got {padded.counts}"


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


# ---------------------------------------------------------------- seeds x scenes bootstrap
def seeds(*per_seed: dict[str, tuple]) -> dict[int, dict[str, ConfusionMatrix]]:
    """Seed k -> scene -> ConfusionMatrix, from one scene -> counts dict per seed."""
    return {k: per_scene(counts) for k, counts in enumerate(per_seed)}


def width(table, row) -> float:
    return table.loc[row, "high"] - table.loc[row, "low"]


def test_hierarchical_constant_counts_give_a_zero_width_interval():
    same = {s: (20, 10, 10, 960) for s in "abcd"}
    table = hierarchical_bootstrap({"a": seeds(same, same, same), "b": seeds(same, same)}, "F1", focus="a")
    expected = 40 / 60
    for row in ("a", "b"):
        assert table.loc[row, ["value", "mean", "low", "high"]].tolist() == pytest.approx([expected] * 4, abs=0), \
            f"every seed and scene alike: value, mean and both ends must be F1 = {expected}, got {table.loc[row]}"
        assert table.loc[row, "sd"] == 0, "seeds that agree must have sd 0"
    assert table.loc["a - b", ["value", "low", "high"]].tolist() == [0, 0, 0], \
        "two models with the same counts everywhere must differ by exactly 0 on every draw"
    assert table.loc["a", "seeds"] == 3 and table.loc["b", "seeds"] == 2, "seeds column must count each model's seeds"


def test_hierarchical_value_mean_and_sd_follow_their_definitions():
    s0, s1 = {"a": (10, 10, 0, 80), "b": (30, 10, 10, 50)}, {"a": (0, 10, 10, 80), "b": (10, 0, 30, 60)}
    table = hierarchical_bootstrap({"m": seeds(s0, s1)}, "lIoU")
    per_seed = [40 / (40 + 20 + 10), 10 / (10 + 10 + 40)]  # each seed's lIoU pooled over both scenes
    assert table.loc["m", "value"] == pytest.approx(50 / (50 + 30 + 50)), \
        "value must be lIoU of every seed and scene pooled"
    assert table.loc["m", "mean"] == pytest.approx(sum(per_seed) / 2), "mean must average each seed's pooled lIoU"
    assert table.loc["m", "sd"] == pytest.approx(abs(per_seed[0] - per_seed[1]) / math.sqrt(2)), \
        "sd must be the ddof-1 standard deviation over seeds"
    one = hierarchical_bootstrap({"m": seeds(s0)}, "lIoU")
    assert math.isnan(one.loc["m", "sd"]), "one seed has no standard deviation: expected NaN"


def test_hierarchical_seed_noise_widens_the_interval_beyond_scene_bootstrap():
    # Scenes nearly alike within a seed, seeds far apart: one seed's scene bootstrap sees
    # almost no spread, the seed-and-scene bootstrap must see the training noise.
    scenes = "abcdef"
    per_seed = [{s: (tp + i, 40 - tp, 40 - tp - i, 900) for i, s in enumerate(scenes)} for tp in (5, 15, 25, 35, 38)]
    hier = hierarchical_bootstrap({"m": seeds(*per_seed)}, "lIoU")
    scene_only = scene_bootstrap({"m": per_scene(per_seed[0])}, "lIoU")
    assert width(hier, "m") > 3 * width(scene_only, "m"), \
        f"seed noise must widen the interval: {width(hier, 'm'):.4f} vs scenes only {width(scene_only, 'm'):.4f}"


def test_hierarchical_difference_is_paired_over_scenes():
    # Two copies of a model whose scenes differ a lot (and seeds not at all): the shared
    # scene draw makes the difference exactly 0 on every draw, though each model alone
    # has a wide interval.
    copy = seeds(WEAK, WEAK, WEAK)
    table = hierarchical_bootstrap({"x": copy, "y": seeds(WEAK, WEAK, WEAK)}, "lIoU", focus="x")
    assert width(table, "x") > 0.05, "four unequal scenes must give each model a wide interval"
    assert table.loc["x - y", ["value", "mean", "low", "high", "share > 0"]].tolist() == [0, 0, 0, 0, 0], \
        "identical models must differ by exactly 0: the scene draw is shared between models"
    better = hierarchical_bootstrap({"weak": seeds(WEAK, WEAK), "strong": seeds(STRONG, STRONG, STRONG)}, "F1",
                                    focus="strong")
    assert better.loc["strong - weak", "share > 0"] == 1.0 and better.loc["strong - weak", "low"] > 0, \
        "better on every scene of every seed must be better on every draw"


def test_paired_seeds_take_out_the_noise_two_models_share():
    # Seeds far apart, and the second model a little better than the first at every seed:
    # resampled independently, the seed spread swamps the gap; resampled together, every
    # draw keeps the gap.
    scenes = "abcdef"
    first = [{s: (tp, 40 - tp, 40 - tp, 900) for s in scenes} for tp in (5, 20, 35)]
    second = [{s: (tp + 2, 38 - tp, 38 - tp, 902) for s in scenes} for tp in (5, 20, 35)]
    data = {"better": seeds(*second), "base": seeds(*first)}
    apart = hierarchical_bootstrap(data, "lIoU", focus="better")
    together = hierarchical_bootstrap(data, "lIoU", focus="better", paired_seeds=True)
    assert apart.loc["better - base", "low"] < 0 < apart.loc["better - base", "high"], \
        f"independent seeds: the seed spread must hold 0, got {apart.loc['better - base']}"
    assert together.loc["better - base", "low"] > 0 and together.loc["better - base", "share > 0"] == 1, \
        f"paired seeds: better at every seed must be better on every draw, got {together.loc['better - base']}"
    assert together.loc["better - base", "mean"] == apart.loc["better - base", "mean"], "pairing moves no mean"
    alone = {"base": data["base"]}
    assert hierarchical_bootstrap(alone, paired_seeds=True).equals(hierarchical_bootstrap(alone)), \
        "one model: pairing its seeds with nobody changes nothing"
    with pytest.raises(ValueError, match=r"same seeds for every model.*base: \[0, 1\]"):
        hierarchical_bootstrap({"better": data["better"], "base": seeds(*first[:2])}, paired_seeds=True)


def test_hierarchical_is_seeded_and_checks_its_input():
    data = {"weak": seeds(WEAK, STRONG), "strong": seeds(STRONG)}
    a = hierarchical_bootstrap(data, focus="strong", seed=3, draws=200)
    assert a.equals(hierarchical_bootstrap(data, focus="strong", seed=3, draws=200)), "same seed, same draws expected"
    with pytest.raises(ValueError, match="same test scenes"):
        hierarchical_bootstrap({"weak": seeds(WEAK, {"a": WEAK["a"]})})
    with pytest.raises(ValueError, match="no seed"):
        hierarchical_bootstrap({"weak": {}})
    with pytest.raises(KeyError, match="unknown metric"):
        hierarchical_bootstrap(data, "IoU")
    with pytest.raises(KeyError, match="focus"):
        hierarchical_bootstrap(data, focus="nope")
    with pytest.raises(ValueError, match="level"):
        hierarchical_bootstrap(data, level=90)


def test_average_precision_is_scikit_learns_on_pixels_with_ties_and_ignored_ones():
    from sklearn.metrics import average_precision_score

    g = torch.Generator().manual_seed(0)
    target = (torch.rand(3, 20, 20, generator=g) < 0.3).long()
    target[0, :2] = IGNORE  # padding is not scored
    probability = (torch.rand(3, 20, 20, generator=g) * 0.6 + target.clamp(max=1) * 0.3).clamp(0, 1)
    probability[1] = (probability[1] * 4).round() / 4  # a scene of tied scores: 5 values
    # on the bins' values, so that scikit-learn ties exactly the pixels the histogram ties
    bins = ScoreHistogram.bins - 1
    probability = (probability.double() * bins).round() / bins
    valid = target != IGNORE
    expected = average_precision_score(target[valid].numpy(), probability[valid].numpy())
    whole, halves = ScoreHistogram(), [ScoreHistogram(), ScoreHistogram()]
    whole.update(probability, target)
    halves[0].update(probability[:1], target[:1])
    halves[1].update(probability[1:], target[1:])
    assert whole.average_precision() == pytest.approx(expected, abs=1e-12)
    assert halves[0].merge(halves[1]).average_precision() == pytest.approx(expected, abs=1e-12), \
        "histograms of two parts add up to the whole's"
    logits = torch.stack([torch.zeros_like(probability), torch.logit(probability.clamp(1e-6, 1 - 1e-6))], 1)
    from_logits = ScoreHistogram()
    from_logits.update(logits, target)
    assert from_logits.average_precision() == pytest.approx(expected, abs=1e-4), "softmax of the logits"
    continuous = torch.rand(400, generator=g)
    labels = (torch.rand(400, generator=g) < continuous).long()
    binned = ScoreHistogram()
    binned.update(continuous, labels)
    assert binned.average_precision() == pytest.approx(
        average_precision_score(labels.numpy(), continuous.numpy()), abs=1e-4), "within a bin, scores tie"
    diverged = ScoreHistogram()
    diverged.update(torch.full((4,), float("nan")), torch.tensor([0, 1, 0, 1]))
    assert diverged.average_precision() == 0.5, "NaN scores rank last, tied"


def test_average_precision_tells_a_ranking_apart_from_all_background():
    target = torch.tensor([[0, 0, 1, 1]])
    ranked, blind, empty = ScoreHistogram(), ScoreHistogram(), ScoreHistogram()
    ranked.update(torch.tensor([[0.1, 0.2, 0.3, 0.4]]), target)  # every pixel below 0.5: lIoU 0, AP 1
    blind.update(torch.full((1, 4), 0.2), target)  # one score for all: AP is the landslide share
    empty.update(torch.full((1, 4), 0.2), torch.zeros(1, 4, dtype=torch.long))
    assert ranked.average_precision() == 1.0
    assert blind.average_precision() == 0.5
    assert math.isnan(empty.average_precision()), "no landslide pixel: AP is undefined"
