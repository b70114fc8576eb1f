"""Tests of mrife.models.icssn: the ICSSN re-implementation (shapes, loss terms, phases, metrics).

resnet18, 64 x 64 synthetic tiles and batches of 4 keep the file fast on a 2-core CPU.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, default_collate

from mrife import data
from mrife.config import MaskConfig
from mrife.kernels import gather_rows, supervised_contrastive
from mrife.losses import object_contrast, sub_object_contrast
from mrife.models import ICSSN, EncoderSpec, build_model
from mrife.models.icssn import LOSS_TERMS, random_view

SIZE = 64
PHASE_TERMS = {"cls": ("cls", "obj_con"), "seg": ("ce", "sub_con")}


@pytest.fixture(scope="module")
def tiles():
    """TileDataset over 16 synthetic 64 x 64 tiles, with and without landslides."""
    scenes = data.synthetic.make_scenes(4, size=128, seed=0)
    cut = data.tile_scenes(scenes, SIZE, SIZE)
    return data.TileDataset(cut, SIZE), [t.has_slide for t in cut]


def batch_of(tiles, slides: int, free: int) -> dict:
    """A batch of `slides` tiles with landslide pixels then `free` tiles without."""
    dataset, has_slide = tiles
    with_slide = [i for i, s in enumerate(has_slide) if s][:slides]
    without = [i for i, s in enumerate(has_slide) if not s][:free]
    assert len(with_slide) == slides and len(without) == free, "the synthetic tiles should hold both kinds"
    return default_collate([dataset[i] for i in with_slide + without])


def make(**kw) -> ICSSN:
    torch.manual_seed(0)
    return ICSSN(**kw)


def test_eval_logits_and_classify_shapes():
    model = make().eval()
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits, cls = model(x), model.classify(x)
    assert logits.shape == (2, 2, 64, 96), f"expected segmentation logits (2, 2, 64, 96), got {tuple(logits.shape)}"
    assert cls.shape == (2, 2), f"expected object logits (2, 2), got {tuple(cls.shape)}"
    assert torch.isfinite(logits).all() and torch.isfinite(cls).all(), "expected finite logits"


def test_build_model_by_name_and_bad_arguments():
    model = build_model("icssn", cls_steps=2, seg_steps=3)
    assert isinstance(model, ICSSN), f"build_model('icssn') should give an ICSSN, got {type(model).__name__}"
    assert (model.cls_steps, model.seg_steps) == (2, 3), "build_model should pass the phase lengths"
    with pytest.raises(ValueError, match="seg_steps"):
        ICSSN(seg_steps=0)
    with pytest.raises(ValueError, match="output_stride"):
        ICSSN(EncoderSpec(output_stride=4))
    with pytest.raises(ValueError, match="mask.block 16 is not ICSSN's"):
        ICSSN(mask=MaskConfig(block=16))


def test_phase_schedule():
    model = make(cls_steps=2, seg_steps=3)
    phases = [model.phase(step) for step in range(7)]
    expected = ["cls", "cls", "seg", "seg", "seg", "cls", "cls"]
    assert phases == expected, f"cycles of 2 classification then 3 segmentation steps expected, got {phases}"
    seg_only = make(cls_steps=0, seg_steps=1)
    assert {seg_only.phase(s) for s in range(5)} == {"seg"}, "cls_steps=0 should train segmentation only"


@pytest.mark.parametrize("slides", [2, 0], ids=["with-landslides", "without-landslides"])
def test_each_term_finite_and_only_the_phase_terms_active(tiles, slides):
    batch = batch_of(tiles, slides, 4 - slides)
    model = make(cls_steps=1, seg_steps=1).train()
    for step, phase in ((0, "cls"), (1, "seg")):
        out = model.training_losses(batch["image"], batch["mask"], step, torch.Generator().manual_seed(0))
        assert set(out) == set(LOSS_TERMS), f"expected the terms {LOSS_TERMS}, got {sorted(out)}"
        for name, value in out.items():
            assert value.dim() == 0 and torch.isfinite(value), (
                f"{phase} phase: {name} should be a finite scalar, got {value}"
            )
        for name in ("cls", "obj_con", "ce", "sub_con"):
            active = name in PHASE_TERMS[phase] and (slides > 0 or name in ("cls", "ce"))
            assert (out[name].item() > 0) == active, (
                f"{phase} phase, {slides} landslide tiles: {name}={out[name].item()} should be "
                f"{'> 0' if active else '0'}"
            )
        out["loss"].backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        assert all(torch.isfinite(g).all() for g in grads.values() if g is not None), f"{phase}: non-finite gradient"
        idle = ("decoder.", "point_head.") if phase == "cls" else ("object_head.",)
        assert all(g is None for n, g in grads.items() if n.startswith(idle)), f"{phase} phase should not touch {idle}"
        if phase == "seg" and slides > 0:
            assert grads["point_head.2.weight"] is not None, "the sub-object contrast should train the point head"
        assert grads["encoder.aspp.project.0.0.weight"] is not None, f"{phase} phase should update the shared encoder"
        model.zero_grad(set_to_none=True)


def test_random_view_is_seeded_and_keeps_the_shape():
    x = torch.randn(4, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    a = random_view(x, torch.Generator().manual_seed(3))
    b = random_view(x, torch.Generator().manual_seed(3))
    c = random_view(x, torch.Generator().manual_seed(4))
    assert a.shape == x.shape, f"a non-square view should keep the shape {tuple(x.shape)}, got {tuple(a.shape)}"
    assert torch.equal(a, b), "the same generator seed should give the same view"
    assert not torch.equal(a, c), "another seed should give another view"


def test_object_contrast_rewards_agreeing_views_and_separated_classes():
    labels = torch.tensor([1, 1, 0, 0])
    e = torch.eye(4)
    good = object_contrast(e, e, labels)  # views agree, images orthogonal
    bad = object_contrast(e, e[[2, 3, 0, 1]], labels)  # view 2 of an image = view of the other class
    assert good < bad, f"agreeing views should cost less than swapped ones: {good} vs {bad}"
    one_class = object_contrast(e, e, torch.ones(4, dtype=torch.long))
    assert one_class.item() == 0.0, f"a single-class batch has no negative, expected 0, got {one_class}"


def test_sub_object_contrast_is_the_mean_supervised_contrastive_over_all_rows():
    feat = torch.randn(2, 16, 4, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    idx_pos, idx_neg = torch.tensor([0, 1, 5, 17, 20]), torch.tensor([3, 9, 30, 31])  # both images
    ours = sub_object_contrast(feat, idx_pos, idx_neg)
    (grad,) = torch.autograd.grad(ours, feat)
    ref = supervised_contrastive(gather_rows(feat, idx_pos), gather_rows(feat, idx_neg)) / len(idx_pos)
    (ref_grad,) = torch.autograd.grad(ref, feat)
    assert torch.allclose(ours, ref), f"expected supervised_contrastive / N = {ref.item()}, got {ours.item()}"
    assert torch.allclose(grad, ref_grad, atol=1e-6), "every edge and background row should get the reference gradient"
    lone = sub_object_contrast(feat, idx_pos[:1], idx_neg)
    assert lone.item() == 0.0, f"one edge point has no positive: expected 0, got {lone.item()}"


def test_iterative_steps_lower_each_phase_loss(tiles):
    batch = batch_of(tiles, 2, 2)
    model = make(cls_steps=1, seg_steps=1).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    seen = {"cls": [], "seg": []}
    for step in range(4):  # cls, seg, cls, seg
        draws = torch.Generator().manual_seed(0)  # the same sub-object points at every step
        # Steps 0 and 1 stand for every step of their phase: the same siamese views each
        # time, so that the change of the loss comes from training alone.
        out = model.training_losses(batch["image"], batch["mask"], step % 2, draws)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        seen[model.phase(step)].append(out["loss"].item())
    for phase, losses in seen.items():
        assert losses[-1] < losses[0], f"{phase}-phase loss should fall from one cycle to the next: {losses}"


def test_object_metrics_in_unit_range(tiles):
    dataset, has_slide = tiles
    model = make().train()
    metrics = model.test_metrics(DataLoader(dataset, batch_size=8))
    assert set(metrics) == {"cls_accuracy", "cls_F1"}, f"expected cls_accuracy and cls_F1, got {sorted(metrics)}"
    assert all(0.0 <= v <= 1.0 for v in metrics.values()), f"metrics should lie in [0, 1]: {metrics}"
    assert model.training, "object_metrics should restore the training mode"
    # With a classifier that always says "landslide", accuracy is the landslide share.
    model.classify = lambda x: torch.tensor([[0.0, 1.0]]).expand(len(x), 2)
    always = model.test_metrics(DataLoader(dataset, batch_size=8))
    share = sum(has_slide) / len(has_slide)
    assert always["cls_accuracy"] == pytest.approx(share), f"expected accuracy {share}, got {always}"
    assert always["cls_F1"] == pytest.approx(2 * share / (1 + share)), f"expected F1 2p/(1+p), got {always}"
