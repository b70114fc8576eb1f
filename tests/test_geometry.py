"""The ASPP reads its feature map as the paper's does: its atrous rates follow the input
size (``model.aspp_rates``, :func:`mrife.config.aspp_rates_for`), in our encoders and in
smp's DeepLabv3+ alike, and the paper's profile keeps DeepLab's (12, 24, 36)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import segmentation_models_pytorch as smp

from mrife.config import PAPER_ASPP_RATES, aspp_rates_for, config_hash, load_profile
from mrife.models import build_model
from mrife.models.encoder import ASPP

MODELS = ("mrife", "segbranch", "deeplabv3plus", "icssn")
RESULTS = Path(__file__).resolve().parents[1] / "results"


def atrous_rates(model) -> list[tuple[int, ...]]:
    """The rates of the three atrous branches of every ASPP in ``model`` (one per encoder)."""
    ours = [tuple(branch[0].dilation[0] for branch in m.branches[1:]) for m in model.modules() if isinstance(m, ASPP)]
    theirs = [tuple(conv[0][0].dilation[0] for conv in m.decoder.aspp[0].convs[1:4])
              for m in model.modules() if isinstance(m, smp.DeepLabV3Plus)]
    return ours + theirs


def inside_share(side: int, rate: int) -> float:
    """The share of a 3 x 3 atrous conv's 8 off-centre taps, over every position of a side x
    side map, that read inside the map (the rest read the zero padding)."""
    taps = [(dy, dx) for dy, dx in itertools.product((-rate, 0, rate), repeat=2) if (dy, dx) != (0, 0)]
    inside = sum(0 <= y + dy < side and 0 <= x + dx < side
                 for y in range(side) for x in range(side) for dy, dx in taps)
    return inside / (len(taps) * side * side)


def test_the_scaled_rates_round_as_documented():
    assert aspp_rates_for(512) == PAPER_ASPP_RATES == (12, 24, 36)
    assert aspp_rates_for(96) == (2, 4, 7), "2.25, 4.5 and 6.75: a half rounds down"
    assert aspp_rates_for(16) == (1, 1, 1), "at least 1"
    with pytest.raises(ValueError, match="positive"):
        aspp_rates_for(0)


@pytest.mark.parametrize("profile", ["cpu-sizing", "cpu"])
@pytest.mark.parametrize("name", MODELS)
def test_at_the_plateau_geometry_every_atrous_branch_reads_inside_the_map_as_the_papers_does(name, profile):
    cfg = load_profile(profile, [f"model.name={name}"])
    side = cfg.data.input_size // cfg.model.output_stride  # 12 feature points
    paper_side = 512 // 8
    for rates in atrous_rates(build_model(cfg)):
        assert rates == (2, 4, 7), f"{name}: expected the scaled rates (2, 4, 7), got {rates}"
        for rate, paper_rate in zip(rates, PAPER_ASPP_RATES):
            ours, paper = inside_share(side, rate), inside_share(paper_side, paper_rate)
            assert ours > 0 and abs(ours - paper) < 0.06, (
                f"{name}: rate {rate} on a {side}-point map reads {ours:.0%} of its off-centre taps inside the "
                f"map; the paper's rate {paper_rate} on {paper_side} points reads {paper:.0%}")


@pytest.mark.parametrize("name", MODELS)
def test_the_7_epoch_cpu_profile_kept_the_papers_rates_which_read_only_padding(name):
    """What the committed cpu-7ep runs computed: every off-centre tap outside the 12 x 12
    map, so each atrous branch was a 1 x 1 convolution."""
    cfg = load_profile("cpu-7ep", [f"model.name={name}"])
    side = cfg.data.input_size // cfg.model.output_stride
    for rates in atrous_rates(build_model(cfg)):
        assert rates == PAPER_ASPP_RATES
        assert all(inside_share(side, rate) == 0 for rate in rates), f"{name}: {rates} on a {side}-point map"


@pytest.mark.parametrize("stride, rates", [(8, (12, 24, 36)), (16, (6, 12, 18))])
def test_the_paper_profile_keeps_deeplabs_rates(stride, rates):
    cfg = load_profile("paper", ["model.backbone=resnet18", "model.pretrained=false", "model.channels=32",
                                 f"model.output_stride={stride}"])
    assert cfg.model.aspp_rates == PAPER_ASPP_RATES
    for name in ("segbranch", "deeplabv3plus"):
        cfg.model.name = name
        assert atrous_rates(build_model(cfg)) == [rates], f"{name} at output stride {stride}"


@pytest.mark.audit
def test_the_field_leaves_the_committed_runs_names_alone():
    """``model.aspp_rates`` at the paper's value is left out of the hash (the code computed
    that before the field existed), so every committed run keeps its folder."""
    index = json.loads((RESULTS / "cpu-7ep" / "index.json").read_text())
    assert f"mrife-{config_hash(load_profile('cpu-7ep', ['model.name=mrife']))}" == index["mrife"]["0"]
    scaled = load_profile("cpu-7ep", ["model.name=mrife", "model.aspp_rates=[2, 4, 7]"])
    assert config_hash(scaled) != config_hash(load_profile("cpu-7ep", ["model.name=mrife"])), \
        "another geometry, another run"
    assert scaled.model.aspp_rates == (2, 4, 7) and all(isinstance(r, int) for r in scaled.model.aspp_rates)
    with pytest.raises(TypeError, match="aspp_rates"):
        load_profile("cpu", ["model.aspp_rates=[2.5, 4, 7]"])
