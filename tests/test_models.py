"""Tests of mrife.models: one shared tester over every model, then MRIFE specifics.

resnet18 and tiny inputs (batch 2, 64 x 64 or so) keep the file fast on a 2-core CPU.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import timm
import torch

from mrife.config import ModelConfig, RunConfig, load_profile
from mrife.models import (
    ICSSN,
    MODEL_BUILDERS,
    MODEL_NAMES,
    MRIFE,
    DeepLabV3Plus,
    Decoder,
    Encoder,
    EncoderSpec,
    MRIFEOutput,
    SegBranch,
    SegmentationModel,
    build_model,
    build_segbranch,
)
from mrife.models import encoder as encoder_module
from mrife.models.encoder import OUTPUT_STRIDES as STRIDES


def make(name: str, stride: int = 8, **kw) -> torch.nn.Module:
    """Build `name` at output stride (= MRIFE's masked block size) `stride` with a fixed seed."""
    torch.manual_seed(0)
    return build_model(name, output_stride=stride, **kw)


def forward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of any model in its current mode (MRIFE in train mode needs a masked image)."""
    if isinstance(model, MRIFE) and model.training:
        masked = x.clone()
        masked[..., :8, :8] = 0.0  # one masked 8 x 8 block
        return model(x, masked).logits
    return model(x)


def images(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- shared model tester


@pytest.mark.parametrize("stride", STRIDES)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_eval_logits_have_input_size(name, stride):
    model = make(name, stride).eval()
    for h, w in [(64, 96), (128, 64)]:  # not square; divisible by 16 as output stride 16 needs
        with torch.no_grad():
            y = model(images(2, h, w))
        expected = (2, 2, h, w)
        assert y.shape == expected, f"{name} at stride {stride}: expected logits {expected}, got {tuple(y.shape)}"
        assert torch.isfinite(y).all(), f"{name}: expected finite logits"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_backward_reaches_every_trainable_parameter(name):
    model = make(name).train()
    target = torch.randint(0, 2, (2, 64, 64), generator=torch.Generator().manual_seed(1))
    x = images(2, 64, 64)
    loss = torch.nn.functional.cross_entropy(forward(model, x), target)
    if isinstance(model, ICSSN):  # the object head learns in the classification phase
        # (step 0), the point head in the segmentation phase (step cls_steps)
        for step in (0, model.cls_steps):
            loss = loss + model.training_losses(x, target, step, torch.Generator().manual_seed(0))["loss"]
    loss.backward()
    trainable_ids = {id(p) for p in model.trainable_parameters()}
    for n, p in model.named_parameters():
        if id(p) in trainable_ids:
            assert p.grad is not None, f"{name}: expected a gradient for trainable parameter {n}"
            assert torch.isfinite(p.grad).all(), f"{name}: expected a finite gradient for {n}"


@pytest.mark.parametrize("bands", [1, 3, 4])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_trains_through_the_contract_on_any_band_count(name, bands):
    """What the loop calls (mrife/models/base.py), on images of 1, 3 or 4 bands: every
    loss term a finite scalar, a gradient for every trainable parameter, after_step, then
    logits of the input's size in eval mode."""
    model = make(name, bands=bands).train()
    x = torch.randn(2, bands, 64, 64, generator=torch.Generator().manual_seed(bands))
    target = torch.zeros(2, 64, 64, dtype=torch.long)
    target[:, 16:40, 20:48] = 1  # a landslide with edges, for MRIFE's edge blocks
    losses = model.training_losses(x, target, 0, torch.Generator().manual_seed(0))
    assert {"loss", "ce"} <= set(losses), f"{name}: loss terms {sorted(losses)}"
    for term, value in losses.items():
        assert value.ndim == 0 and torch.isfinite(value), f"{name}, {bands} bands: {term} = {value}"
    losses["loss"].backward()
    reached = [p.grad is not None and torch.isfinite(p.grad).all() for p in model.trainable_parameters()]
    assert any(reached), f"{name}, {bands} bands: no trainable parameter took a gradient"
    model.after_step()
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 2, 64, 64)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_size_not_divisible_by_stride_names_the_padded_size(name):
    model = make(name).eval()
    with pytest.raises(ValueError, match=r"60 x 64.*pad the input to 64 x 64"):
        model(images(1, 60, 64))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_stride_16_rejects_sizes_only_divisible_by_8(name):
    model = make(name, 16).eval()
    with pytest.raises(ValueError, match=r"40 x 64.*48 x 64"):
        model(images(1, 40, 64))


# ---------------------------------------------------------------- parts


@pytest.mark.parametrize("stride, rate", [(8, 12), (16, 6)])
def test_encoder_output_shape_and_aspp_rates(stride, rate):
    enc = EncoderSpec("resnet18", output_stride=stride).build().eval()
    with torch.no_grad():
        f = enc(images(2, 64, 96))
    expected = (2, 256, 64 // stride, 96 // stride)
    assert f.shape == expected, f"expected features {expected}, got {tuple(f.shape)}"
    assert enc.out_channels == 256 and enc.output_stride == stride, "expected out_channels 256 and the given stride"
    dilation = enc.aspp.branches[1][0].dilation
    assert dilation == (rate, rate), f"expected the first atrous rate {rate} at OS {stride}, got {dilation}"


@pytest.mark.parametrize("stride", STRIDES)
def test_decoder_upsamples_by_exactly_the_stride(stride):
    y = Decoder(256, 2, stride).eval()(torch.randn(2, 256, 3, 5))
    expected = (2, 2, 3 * stride, 5 * stride)
    assert y.shape == expected, f"expected logits {expected}, got {tuple(y.shape)}"


def test_segbranch_rejects_mismatched_strides():
    with pytest.raises(ValueError, match="output stride"):
        SegBranch(EncoderSpec(output_stride=8).build(), Decoder(output_stride=16))


def test_an_encoder_from_a_backbone_name_is_the_default_spec_with_that_backbone():
    torch.manual_seed(0)
    by_name = Encoder("resnet10t")
    torch.manual_seed(0)
    by_spec = EncoderSpec("resnet10t").build()
    assert by_name.spec == by_spec.spec == EncoderSpec(backbone="resnet10t"), "expected the default spec"
    for (key, a), b in zip(by_name.state_dict().items(), by_spec.state_dict().values()):
        assert torch.equal(a, b), f"{key}: expected the same encoder for the same seed"


# ---------------------------------------------------------------- the encoder contract


def test_the_encoder_spec_is_read_from_a_config():
    cfg = load_profile("smoke", ["data.bands=4", "model.output_stride=16", "model.aspp_rates=[2, 4, 7]"])
    expected = EncoderSpec(cfg.model.backbone, 16, cfg.model.channels, (2, 4, 7), 4, cfg.model.pretrained, None)
    assert EncoderSpec.from_config(cfg) == expected, "expected every encoder setting from model.* and data.bands"
    assert EncoderSpec.from_config(cfg.model).bands == 3, "expected a model section alone to mean RGB"
    assert EncoderSpec(aspp_rates=[2, 4, 7]).atrous_rates == (2, 4, 7), "expected a list of rates taken as a tuple"
    assert EncoderSpec(output_stride=16).atrous_rates == (6, 12, 18), "expected the rates halved at stride 16"


def test_no_model_constructor_repeats_the_encoders_arguments():
    encoder_arguments = {f.name for f in dataclasses.fields(EncoderSpec)}
    for build in (MRIFE, DeepLabV3Plus, ICSSN, build_segbranch):
        parameters = set(inspect.signature(build).parameters)
        assert "encoder" in parameters, f"{build.__name__}: expected the encoder's settings as one EncoderSpec"
        repeated = sorted(parameters & encoder_arguments)
        assert not repeated, f"{build.__name__} repeats the encoder's arguments {repeated}: take them from the spec"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_reads_existing_config_keys_and_its_encoders(name):
    model, run = MODEL_BUILDERS[name], RunConfig()
    for key in model.config_keys:
        section, field = key.split(".")
        assert hasattr(getattr(run, section, None), field), f"{name} reads {key}, which no configuration holds"
    missing = set(EncoderSpec.config_keys.values()) - set(model.config_keys)
    assert not missing, f"{name}: expected its encoder's keys among those it reads, missing {sorted(missing)}"


# ---------------------------------------------------------------- MRIFE teacher and EMA


def test_teacher_is_not_trainable_and_stays_in_eval_mode():
    model = make("mrife").train()
    teacher_ids = {id(p) for p in model.teacher.parameters()}
    assert teacher_ids, "expected the teacher to have parameters"
    trainable_ids = {id(p) for p in model.trainable_parameters()}
    assert not teacher_ids & trainable_ids, "expected no teacher parameter among trainable_parameters()"
    assert not any(p.requires_grad for p in model.teacher.parameters()), "expected teacher requires_grad=False"
    assert not any(m.training for m in model.teacher.modules()), "expected the teacher in eval mode after model.train()"
    assert model.student.training and model.seg_encoder.training, "expected student and seg encoder in train mode"
    n_student = sum(p.numel() for p in model.student.parameters())
    n_teacher = sum(p.numel() for p in model.teacher.parameters())
    assert n_student == n_teacher, "expected the teacher to have the student's architecture"


def test_ema_update_follows_equation_one_for_weights_and_buffers():
    model = make("mrife")
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():  # perturb the student so it differs from the teacher
        for t in list(model.student.parameters()) + [b for b in model.student.buffers() if b.is_floating_point()]:
            t.add_(torch.rand(t.shape, generator=gen))
    before_t = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    student = {k: v.clone() for k, v in model.student.state_dict().items()}
    model.after_step()
    after = model.teacher.state_dict()
    named = ["backbone.conv1.weight", "backbone.bn1.running_mean", "backbone.layer4.1.bn2.running_var", "se.fc1.bias"]
    for key in named:
        expected = 0.996 * before_t[key] + 0.004 * student[key]
        torch.testing.assert_close(
            after[key], expected, rtol=0, atol=1e-6, msg=lambda m: f"{key}: expected 0.996 t + 0.004 s; {m}"
        )
        assert not torch.equal(after[key], before_t[key]), f"{key}: expected the teacher to move towards the student"
    for key, value in after.items():
        if value.is_floating_point():
            expected = 0.996 * before_t[key] + 0.004 * student[key]
            torch.testing.assert_close(value, expected, rtol=0, atol=1e-5, msg=lambda m: f"{key}: Eq. (1); {m}")


# ---------------------------------------------------------------- MRIFE forward modes


def test_train_mode_returns_student_and_teacher_features():
    model = make("mrife").train()
    x = images(2, 64, 64)
    out = model(x, torch.zeros_like(x))
    assert isinstance(out, MRIFEOutput), f"expected MRIFEOutput in train mode, got {type(out).__name__}"
    assert out.logits.shape == (2, 2, 64, 64), f"expected logits [2, 2, 64, 64], got {tuple(out.logits.shape)}"
    for field in ("student", "teacher"):
        shape = tuple(getattr(out, field).shape)
        assert shape == (2, 256, 8, 8), f"expected {field} features [2, 256, 8, 8], got {shape}"
    assert not out.teacher.requires_grad and out.student.requires_grad, "expected gradients through the student only"
    with pytest.raises(ValueError, match="masked"):
        model(x)


def test_fuse_train_teacher_keeps_the_student_out_of_the_logits():
    model = make("mrife", fuse_train="teacher").train()
    x = images(2, 64, 64)
    model(x, torch.zeros_like(x)).logits.sum().backward()
    assert all(p.grad is None for p in model.student.parameters()), "expected no logits gradient into the student"
    assert model.seg_encoder.se.fc1.weight.grad is not None, "expected a gradient into the segmentation encoder"


def test_eval_mode_fuses_segmentation_and_teacher_features():
    model = make("mrife").eval()
    x = images(2, 64, 64)
    with torch.no_grad():
        seg, teacher = model.features(x)
        expected = model.decoder(seg + teacher)
        got = model(x)
    torch.testing.assert_close(got, expected, msg=lambda m: f"expected decoder(seg(x) + teacher(x)); {m}")


@pytest.mark.parametrize("stride", STRIDES)
def test_concat_fusion_shapes_and_gradient(stride):
    model = make("mrife", stride, fusion="concat")
    x = images(2, 64, 64)
    model.train()
    out = model(x, torch.zeros_like(x))
    assert out.logits.shape == (2, 2, 64, 64), f"expected logits [2, 2, 64, 64], got {tuple(out.logits.shape)}"
    out.logits.sum().backward()
    assert model.fuse.conv.weight.grad is not None, "expected a gradient into the 1x1 fusion conv"
    with torch.no_grad():
        y = model.eval()(x)
    assert y.shape == (2, 2, 64, 64), f"expected eval logits [2, 2, 64, 64], got {tuple(y.shape)}"


# ---------------------------------------------------------------- weights


def test_weights_path_loads_a_backbone_state_dict(tmp_path):
    torch.manual_seed(5)
    state = timm.create_model("resnet18", features_only=True).state_dict()
    path = tmp_path / "resnet18-backbone.pth"
    torch.save(state, path)
    enc = EncoderSpec("resnet18", weights_path=path).build()
    assert torch.equal(enc.backbone.conv1.weight, state["conv1.weight"]), "expected conv1.weight from the file"
    running_var = enc.backbone.layer4[1].bn2.running_var
    assert torch.equal(running_var, state["layer4.1.bn2.running_var"]), "expected BN buffers from the file"
    model = MRIFE(EncoderSpec("resnet18", weights_path=path))
    for part in ("seg_encoder", "student", "teacher"):
        w = getattr(model, part).backbone.conv1.weight
        assert torch.equal(w, state["conv1.weight"]), f"expected the {part} backbone loaded from the file"


def test_weights_path_accepts_a_full_classifier_checkpoint(tmp_path):
    torch.manual_seed(6)
    state = timm.create_model("resnet18").state_dict()  # has the fc classifier
    path = tmp_path / "resnet18-full.pth"
    torch.save({"state_dict": state}, path)
    model = DeepLabV3Plus(EncoderSpec("resnet18", weights_path=path))
    weight = model.net.encoder.model.layer1[0].conv1.weight  # the timm ResNet inside smp's encoder
    assert torch.equal(weight, state["layer1.0.conv1.weight"]), "expected layer1 weights from the file"
    assert model.pretrained_loaded, "expected pretrained_loaded=True after loading weights_path"


@pytest.mark.parametrize("stride, rates", [(8, (12, 24, 36)), (16, (6, 12, 18))])
def test_deeplabv3plus_is_smp_at_the_runs_output_stride(stride, rates):
    import segmentation_models_pytorch as smp

    model = make("deeplabv3plus", stride)
    nets = [m for m in model.modules() if isinstance(m, smp.DeepLabV3Plus)]
    assert len(nets) == 1, f"expected one smp DeepLabV3Plus inside, got {len(nets)}"
    features = nets[0].encoder.model  # the timm ResNet in smp's encoder: dilated to the run's stride
    assert max(features.feature_info.reduction()) == stride, f"expected a timm backbone at stride {stride}"
    reference, _ = encoder_module.create_backbone(EncoderSpec("resnet18", stride), (0, 1, 2, 3, 4))
    assert features.state_dict().keys() == reference.state_dict().keys(), "expected the project's timm ResNet"
    dilations = tuple(branch[0][0].dilation[0] for branch in nets[0].decoder.aspp[0].convs[1:4])
    assert dilations == rates, f"expected DeepLab's ASPP rates {rates} at stride {stride}, got {dilations}"
    with torch.no_grad():
        y = model.eval()(images(2, 64, 96))
    assert y.shape == (2, 2, 64, 96), f"expected logits [2, 2, 64, 96] at stride {stride}, got {tuple(y.shape)}"
    model.train()
    x = images(2, 64, 64)
    masks = torch.randint(0, 2, (2, 64, 64), generator=torch.Generator().manual_seed(2))
    optimizer = torch.optim.SGD(model.trainable_parameters(), lr=0.01)
    before = [p.detach().clone() for p in model.trainable_parameters()]
    losses = model.training_losses(x, masks, 0, torch.Generator())
    assert torch.isfinite(losses["loss"]), f"expected a finite loss, got {losses['loss']}"
    losses["loss"].backward()
    optimizer.step()
    after = list(model.trainable_parameters())
    assert all(torch.isfinite(p).all() for p in after), "expected no NaN parameter after one SGD step"
    assert any(not torch.equal(a, b) for a, b in zip(after, before)), "expected the step to change parameters"


def test_bad_weights_file_is_named_in_the_error(tmp_path):
    state = timm.create_model("resnet18", features_only=True).state_dict()
    state.pop("layer2.0.conv1.weight")
    state["head.weight"] = torch.zeros(1)
    path = tmp_path / "wrong-backbone.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"wrong-backbone\.pth.*1 missing.*1 unexpected"):
        EncoderSpec("resnet18", weights_path=path).build()
    with pytest.raises(FileNotFoundError, match="no-such-file.pth"):
        EncoderSpec("resnet18", weights_path=tmp_path / "no-such-file.pth").build()
    with pytest.raises(ValueError, match="RGB weights; with data.bands = 4"):
        EncoderSpec("resnet18", bands=4, weights_path=path)


def test_pretrained_offline_warns_once_and_keeps_random_init(monkeypatch):
    real = timm.create_model
    asked = []

    def offline(name, pretrained=False, **kw):
        asked.append(pretrained)
        if pretrained:
            raise OSError("Name or service not known")
        return real(name, pretrained=False, **kw)

    monkeypatch.setattr(encoder_module.timm, "create_model", offline)
    with pytest.warns(RuntimeWarning, match="RANDOMLY INITIALIZED") as record:
        model = MRIFE(EncoderSpec("resnet18", pretrained=True))
    attempts = asked.count(True)
    assert len(record) == 1 and attempts == 1, f"expected one download and one warning, got {attempts}, {len(record)}"
    assert not model.seg_encoder.pretrained_loaded, "expected pretrained_loaded=False after a failed download"


# ---------------------------------------------------------------- registry


def test_build_model_unknown_name_lists_the_valid_ones():
    with pytest.raises(KeyError, match="mrife, deeplabv3plus, segbranch"):
        build_model("unet")


def test_build_model_unknown_keyword_lists_the_valid_ones():
    with pytest.raises(TypeError, match=r"fusion.*valid keywords:.*output_stride"):
        build_model("deeplabv3plus", fusion="add")


def test_build_model_from_a_config():
    cfg = ModelConfig(name="mrife", backbone="resnet18", pretrained=False, fusion="concat")
    model = build_model(cfg, output_stride=16)
    assert isinstance(model, MRIFE), "expected the model the config names"
    assert model.fuse.mode == "concat" and model.output_stride == 16, "expected config fields, overridden by keywords"
    run = load_profile("smoke", ["mask.strategy=all", "mask.ratio=0.25", "loss.beta=0.5", "loss.temperature=0.1"])
    model = build_model(run)
    assert (model.masker.strategy, model.masker.ratio) == ("all", 0.25), "expected MRIFE's masker from mask.*"
    assert (model.weights.beta, model.temperature) == (0.5, 0.1), "expected MRIFE's loss weights from loss.*"
    with pytest.raises(TypeError, match="belong to no model|takes no keyword"):
        build_model("mrife", colour="red")
    model = build_model("mrife", backbone="resnet18", output_stride=16, mask_ratio=0.3, alpha=0.5, bands=4)
    assert (model.masker.ratio, model.weights.alpha) == (0.3, 0.5), "expected the mask and loss keywords"
    assert (model.output_stride, model.seg_encoder.bands) == (16, 4), "expected the encoder keywords"


@pytest.mark.parametrize("name, override", [("deeplabv3plus", "model.fusion=concat"),
                                            ("segbranch", "loss.beta=0"),
                                            ("icssn", "model.ema_decay=0"),
                                            ("mrife", "model.cls_steps=2")])
def test_a_setting_the_model_does_not_use_is_an_error(name, override):
    with pytest.raises(ValueError, match=rf"{override.split('=')[0]}=.* is not used by model '{name}'"):
        build_model(load_profile("smoke", [f"model.name={name}", override]))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_build_model_from_the_project_model_config(name):
    cfg = ModelConfig(name=name, backbone="resnet18", pretrained=False, output_stride=16)
    model = build_model(cfg).eval()
    assert model.output_stride == 16, f"{name}: expected model.output_stride=16 to set the output stride"
    with torch.no_grad():
        y = model(images(1, 64, 64))
    assert y.shape == (1, 2, 64, 64), f"{name}: expected logits [1, 2, 64, 64], got {tuple(y.shape)}"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_channels_set_the_width_of_every_aspp(name):
    from segmentation_models_pytorch.decoders.deeplabv3.decoder import ASPP as SmpASPP

    from mrife.models.encoder import ASPP

    model = build_model(ModelConfig(name=name, backbone="resnet18", pretrained=False, channels=32)).eval()
    if name == "deeplabv3plus":  # smp's ASPP: every branch and the 1x1 projection (Conv2d first)
        aspps = [m for m in model.modules() if isinstance(m, SmpASPP)]
        assert aspps and not any(isinstance(m, ASPP) for m in model.modules()), "expected smp's ASPP alone"
        widths = {m.project[0].out_channels for m in aspps}
        widths |= {branch[-2].num_features for m in aspps for branch in m.convs}  # each branch's BatchNorm
    else:
        widths = {m.project[0][0].out_channels for m in model.modules() if isinstance(m, ASPP)}
    assert widths == {32}, f"{name}: expected every ASPP to output 32 channels, got {widths}"
    with torch.no_grad():
        assert model(images(1, 64, 64)).shape == (1, 2, 64, 64)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_too_few_channels_are_named_in_the_error(name):
    with pytest.raises(ValueError, match="model.channels"):
        build_model(name, backbone="resnet18", channels=4)


def test_16_pixel_blocks_at_output_stride_8_pool_2x2_feature_points():
    # Table V with the block size alone changed: the encoders stay at output stride 8 and
    # each masked 16 x 16 block is the mean of its 2 x 2 feature points in MFM and SFCE.
    cfg = load_profile("smoke", ["mask.block=16", "data.input_size=64"])
    torch.manual_seed(0)
    model = build_model(cfg).train()
    assert (model.output_stride, model.masker.block) == (8, 16), "expected OS 8 and 16-px blocks"
    x = images(2, 64, 64)
    masks = torch.zeros(2, 64, 64, dtype=torch.long)
    masks[:, 8:40, 8:40] = 1
    terms = model.training_losses(x, masks, 1, torch.Generator().manual_seed(0))
    assert terms["reconst"] > 0 and torch.isfinite(terms["loss"]), f"expected active, finite terms: {terms}"
    masked = model.masker(x, masks, torch.Generator().manual_seed(0))
    assert int(masked.idx_pos.max()) < 2 * 4 * 4, "indices address the 4 x 4 grid of 16-px blocks"
    with pytest.raises(ValueError, match="multiple of the output stride"):
        build_model(load_profile("smoke", ["mask.block=12"]))
    with pytest.raises(ValueError, match="mask.block=16 is not used by model 'icssn'"):
        build_model(load_profile("smoke", ["model.name=icssn", "mask.block=16"]))


def test_teacher_bn_batch_keeps_the_teachers_own_statistics():
    # teacher_bn="batch": batch norm of the teacher normalizes with batch statistics in
    # training, and its running statistics follow its own features (not the EMA of the
    # student's), so its eval output comes to match its training output on the same data.
    x = images(4, 64, 64)
    masks = torch.zeros(4, 64, 64, dtype=torch.long)
    masks[:, 16:48, 16:48] = 1
    for teacher_bn in ("ema", "batch"):
        model = make("mrife", teacher_bn=teacher_bn).train()
        bn = model.teacher.aspp.project[0][1]
        assert bn.training == (teacher_bn == "batch"), f"{teacher_bn}: teacher BN mode in training"
        assert not model.teacher.aspp.project[1].training, "the teacher's dropout stays off"
        before = bn.running_var.clone()
        with torch.no_grad():
            for _ in range(40):  # the teacher sees the same batch; the EMA step changes nothing else
                model.teacher(x)
                model.after_step()
        moved = not torch.equal(bn.running_var, before)
        assert moved == (teacher_bn == "batch"), f"{teacher_bn}: running statistics moved = {moved}"
        rms = model.feature_rms(x, masks)
        assert set(rms) == {"seg", "enhanced", "fused"} and all(
            set(r) == {"train", "eval"} and min(r.values()) > 0 for r in rms.values()), f"{teacher_bn}: {rms}"
    with torch.no_grad():
        model.train()
        train_rms = model.teacher(x).pow(2).mean().sqrt()
        model.eval()
        eval_rms = model.teacher(x).pow(2).mean().sqrt()
    assert 1 / 1.5 < float(eval_rms / train_rms) < 1.5, (
        f"teacher_bn=batch: eval RMS {eval_rms:.3f} should be near its training RMS {train_rms:.3f}")
    with pytest.raises(ValueError, match="teacher_bn"):
        make("mrife", teacher_bn="frozen")


def test_a_registered_model_without_from_config_is_a_clear_error(monkeypatch):
    class NoBuilder(SegmentationModel):
        """Registered, but says nothing of how to build it from a configuration."""

    monkeypatch.setitem(MODEL_BUILDERS, "nobuilder", NoBuilder)
    with pytest.raises(TypeError, match="'nobuilder' \\(NoBuilder\\) does not say how to build it"):
        build_model("nobuilder")
