"""Tests of mrife.cam: Grad-CAM maps of every model and layer, and the teacher left as it was;
a model outside the registry that names its layers (``cam_layers()``) is explained too.

resnet18 at 32 x 32, batch 2, one model per name. A randomly initialized model's
Grad-CAM is often all negative, a blank map after the ReLU. Negating the landslide
logit (its row of the final classifier) negates every gradient upstream, so each layer
is compared with the definition under whichever sign gives it a positive part.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mrife.masking
from mrife import figure_data
from mrife.cam import cam, gradients_enabled, heat_by_block_class, target_layer
from mrife.config import load_profile
from mrife.models import MODEL_NAMES, DeepLabV3Plus, SegmentationModel, build_model

B, H, W = 2, 32, 32


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors (conftest.py)


def label() -> torch.Tensor:
    """A landslide rectangle in each image."""
    mask = torch.zeros(B, H, W, dtype=torch.long)
    mask[:, 8:24, 4:20] = 1
    return mask


def reference_cams(model, x, modules: dict, mask) -> dict[str, torch.Tensor]:
    """Grad-CAM by its definition, for each named module, from one backward pass:
    relu(sum_c mean(dS/dA_c) A_c), min-max scaled, upsampled bilinearly, scaled again
    (pytorch-grad-cam's order); S = the landslide logit summed over `mask`."""
    acts = {}
    hooks = [m.register_forward_hook(lambda _module, _inputs, out, name=name: acts.__setitem__(name, out))
             for name, m in modules.items()]
    try:
        with gradients_enabled(model):
            score = (model.eval()(x)[:, 1] * mask).sum()
            grads = torch.autograd.grad(score, [acts[name] for name in modules])
    finally:
        for hook in hooks:
            hook.remove()
    refs = {}
    for name, grad in zip(modules, grads):
        raw = (grad.mean((2, 3), keepdim=True) * acts[name].detach()).sum(1).relu()  # [B, C, h, w] -> [B, h, w]
        up = F.interpolate(_minmax(raw)[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)
        refs[name] = _minmax(up[:, 0])
    return refs


def _minmax(t: torch.Tensor) -> torch.Tensor:
    t = t - t.amin((1, 2), keepdim=True)
    return t / (t.amax((1, 2), keepdim=True) + 1e-7)


@contextmanager
def landslide_logit_negated(model, negate: bool = True):
    """Inside the block the model's landslide logit is negated (and so every gradient of it)."""
    conv = model.classifier if isinstance(model, DeepLabV3Plus) else model.decoder.classifier
    sign = -1.0 if negate else 1.0

    def flip():
        with torch.no_grad():
            conv.weight[1].mul_(sign)
            conv.bias[1].mul_(sign)

    flip()
    try:
        yield
    finally:
        flip()


def not_blank(heat: torch.Tensor) -> bool:
    return bool(heat.amax((1, 2)).gt(0.99).all())


@functools.cache
def case(name: str):
    """(model, images, {layer: (negated, reference map)}), each reference map not blank."""
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(B, 3, H, W, generator=torch.Generator().manual_seed(0))
    refs = {}
    for negate in (False, True):
        with landslide_logit_negated(model, negate):
            for layer, ref in reference_cams(model, x, model.cam_layers(), label()).items():
                if layer not in refs and not_blank(ref):
                    refs[layer] = (negate, ref)
    blank = sorted(set(model.cam_layers()) - set(refs))
    assert not blank, f"{name}: expected a non-blank Grad-CAM of {blank} under one sign of the landslide logit"
    return model, x, refs


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_names_layers_of_its_own(name):
    model = case(name)[0]
    named = model.cam_layers()
    own = {id(m) for m in model.modules()}
    assert named and all(id(m) in own for m in named.values()), f"{name}: expected layers of the model, got {named}"
    assert target_layer(model) is next(iter(named.values())), f"{name}: expected the first layer as the default"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_cam_matches_the_definition_for_every_layer(name):
    model, x, refs = case(name)
    for layer, (negate, ref) in refs.items():
        with landslide_logit_negated(model, negate):
            heat = cam(model, x, layer, target_mask=label())
        assert heat.shape == (B, H, W), f"{name}/{layer}: expected heat map {(B, H, W)}, got {tuple(heat.shape)}"
        assert heat.dtype == torch.float32, f"{name}/{layer}: expected float32, got {heat.dtype}"
        assert heat.min() >= 0 and heat.max() <= 1, f"{name}/{layer}: expected values in [0, 1]"
        err = float((heat - ref).abs().max())
        assert err < 1e-3, f"{name}/{layer}: expected the Grad-CAM of its definition, max difference {err:.2e}"


def test_mrife_layer_map():
    model = case("mrife")[0]
    assert target_layer(model) is model.fuse, "expected MRIFE's default layer to be the fusion module"
    assert target_layer(model, "segmentation") is model.seg_encoder, "expected 'segmentation' = seg_encoder"
    assert target_layer(model, "enhancement") is model.teacher, "expected 'enhancement' = the teacher encoder"


def test_teacher_requires_grad_restored_and_no_grads_left():
    model, x, _ = case("mrife")
    model.train()
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    assert not any(before[n] for n in before if n.startswith("teacher_ema.")), "precondition: teacher frozen"
    cam(model, x, "enhancement", target_mask=label())
    after = {n: p.requires_grad for n, p in model.named_parameters()}
    assert after == before, "expected every requires_grad flag restored after Grad-CAM"
    assert all(p.grad is None for p in model.parameters()), "expected no gradient left on any parameter"
    assert model.training and not model.teacher.training, "expected train mode restored (teacher stays in eval)"
    model.eval()


def test_flags_restored_when_the_block_raises():
    model = case("mrife")[0]
    with pytest.raises(RuntimeError, match="inside"):
        with gradients_enabled(model):
            assert all(p.requires_grad for p in model.teacher.parameters()), "expected the teacher unfrozen inside"
            raise RuntimeError("raised inside")
    assert not any(p.requires_grad for p in model.teacher.parameters()), "expected the teacher frozen again"


def test_predicted_target_and_empty_mask():
    model, x, _ = case("segbranch")
    predicted = (model(x).argmax(1) == 1).long()
    expected = cam(model, x, target_mask=predicted)
    assert torch.equal(cam(model, x, target_mask=None), expected), "expected None to score the predicted pixels"
    empty = cam(model, x, target_mask=torch.zeros(B, H, W, dtype=torch.long))
    assert torch.count_nonzero(empty) == 0, "expected a blank map when no pixel is scored"


def test_cam_works_under_no_grad():
    model, x, refs = case("icssn")
    negate, ref = refs["encoder"]
    with torch.no_grad(), landslide_logit_negated(model, negate):
        heat = cam(model, x, "encoder", target_mask=label())
    assert torch.allclose(heat, ref, atol=1e-3), "expected Grad-CAM to enable gradients inside no_grad()"


def test_errors_name_the_valid_choices():
    model, x, _ = case("deeplabv3plus")
    with pytest.raises(KeyError, match="aspp, decoder"):
        cam(model, x, "fused", target_mask=label())
    with pytest.raises(ValueError, match=r"\[B, H, W\]"):
        cam(model, x, target_mask=label()[0])
    with pytest.raises(TypeError, match="names no Grad-CAM layers"):
        cam(torch.nn.Conv2d(3, 2, 1), x, target_mask=label())


def test_mode_restored_after_an_error():
    model, x, _ = case("segbranch")
    model.train()
    with pytest.raises(ValueError):
        cam(model, x, target_mask=label()[:1])  # one mask for two images
    assert model.training, "expected the model's train mode restored after an error"
    model.eval()


def test_heat_by_block_class_averages_each_class_of_pixels():
    masks = torch.zeros(1, 32, 32, dtype=torch.long)
    masks[0, 6:26, 6:26] = 1  # 8-px blocks: interior in the middle, edge around it, background at the corners
    classes = mrife.masking.classify_blocks(masks, 8).repeat_interleave(8, 1).repeat_interleave(8, 2)
    hot_edges = (classes == mrife.masking.EDGE).float()  # heat 1 on edge blocks, 0 elsewhere
    table = heat_by_block_class({"edges": hot_edges, "flat": torch.full_like(hot_edges, 0.25)}, masks, 8)
    assert table.loc["edges"].tolist() == [0.0, 1.0, 0.0], f"all of the heat should be on edge blocks: {table}"
    assert table.loc["flat"].tolist() == [0.25, 0.25, 0.25]
    assert table.columns.tolist() == ["background", "edge", "interior"]


class TwoConvs(SegmentationModel):
    """A model outside the registry: images ``[B, 3, H, W]`` -> features ``[B, 4, H, W]``
    (3 x 3 conv, ReLU) -> logits ``[B, 2, H, W]`` (1 x 1 conv)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.classifier = nn.Conv2d(4, 2, 1)
        with torch.no_grad():  # a positive landslide row: every feature raises the score, no blank map
            self.classifier.weight[1].abs_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def cam_layers(self) -> dict[str, nn.Module]:
        return {"features": self.features}


def test_a_model_that_names_its_layers_gets_grad_cam_and_figure_data():
    torch.manual_seed(0)
    model = TwoConvs().eval()
    x = torch.randn(B, 3, H, W, generator=torch.Generator().manual_seed(0))
    ref = reference_cams(model, x, model.cam_layers(), label())["features"]
    assert not_blank(ref), "precondition: the reference map has a positive part"
    heat = cam(model, x, target_mask=label())
    assert float((heat - ref).abs().max()) < 1e-3, "expected the Grad-CAM of its definition on the named layer"
    cfg = load_profile("smoke", ["data.synthetic_scenes=6", "data.synthetic_size=64", "data.tile_size=32",
                                 "data.tile_stride=32", "data.input_size=32"])
    arrays = figure_data.compute(cfg, model)
    stored = [k for k in arrays if k.startswith("cam/")]
    assert stored == ["cam/features"], f"expected the figure data of the named layer, got {stored}"
    assert arrays["cam/features"].shape == arrays["prediction"].shape == (figure_data.N_TILES, 32, 32)


class Unnamed(SegmentationModel):
    """A mrife model that names no Grad-CAM layers: images -> logits by one 1 x 1 conv."""

    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


def test_a_model_that_names_no_layers_gets_a_clear_error_before_any_work():
    model = Unnamed().eval()
    x = torch.randn(B, 3, H, W, generator=torch.Generator().manual_seed(0))
    with pytest.raises(TypeError, match="Unnamed names no Grad-CAM layers"):
        cam(model, x, target_mask=label())
    assert cam(model, x, model.head, target_mask=label()).shape == (B, H, W), "a module passed as layer works"
    with pytest.raises(TypeError, match="Unnamed names no Grad-CAM layers"):
        figure_data.compute(load_profile("smoke"), model)  # before the test split is built
