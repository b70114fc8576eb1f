"""Configuration: profiles, overrides, YAML round trip, provenance of defaults."""

import pytest

from mrife.config import RunConfig, config_hash, describe, load_profile, load_yaml, save_yaml, summary


def test_paper_profile_holds_table_ii():
    t = load_profile("paper").train
    assert (t.batch_size, t.lr, t.momentum, t.weight_decay, t.epochs, t.workers) == (4, 0.007, 0.9, 0.0005, 100, 4)
    m = load_profile("paper").model
    assert (m.backbone, m.output_stride, m.fusion, m.ema_decay) == ("resnet101", 8, "add", 0.996)


def test_every_value_says_where_it_comes_from():
    sources = {key: src for key, _, src in describe(RunConfig())}
    assert sources["train.lr"] == "paper" and sources["loss.temperature"] == "project"
    assert set(sources.values()) == {"paper", "project"}, f"unmarked fields: {sources}"


def test_overrides_parse_types_and_round_trip(tmp_path):
    cfg = load_profile("smoke", ["train.lr=0.01", "data.split=[0.5, 0.25, 0.25]", "model.weights_path=w.pt"])
    assert cfg.train.lr == 0.01 and cfg.data.split == (0.5, 0.25, 0.25) and cfg.model.weights_path == "w.pt"
    save_yaml(cfg, tmp_path / "c.yaml")
    assert load_yaml(tmp_path / "c.yaml") == cfg


@pytest.mark.parametrize("override, error, words", [
    ("train.lrate=1", KeyError, "train.lr"),
    ("trains.lr=1", KeyError, "valid"),
    ("train.epochs=many", TypeError, "expects int"),
    ("model.pretrained=3", TypeError, "expects bool"),
    ("train.lr", ValueError, "key=value"),
])
def test_bad_overrides_name_the_valid_choices(override, error, words):
    with pytest.raises(error, match=words):
        load_profile("smoke", [override])


def test_unknown_profile():
    with pytest.raises(KeyError, match="cpu"):
        load_profile("gpu")


def test_hash_ignores_device_but_not_lr():
    a = load_profile("smoke")
    assert config_hash(a) == config_hash(load_profile("smoke", ["train.device=cpu", "train.workers=2"]))
    assert config_hash(a) != config_hash(load_profile("smoke", ["train.lr=0.1"]))


@pytest.mark.parametrize("override", ["model.channels=64", "model.output_stride=16", "model.cls_steps=2",
                                      "mask.ratio=0.25", "loss.beta=0", "seed=1", "data.tile_size=32"])
def test_every_field_that_changes_a_run_changes_its_hash(override):
    assert config_hash(load_profile("cpu", [override])) != config_hash(load_profile("cpu")), override


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("train: [unclosed")
    with pytest.raises(ValueError, match="broken.yaml"):
        load_yaml(path)


def test_summary_names_data_and_sizes():
    line = summary(load_profile("cpu"))
    assert line.startswith("profile cpu: the Sichuan scenes; tiles of 256 px scaled to 96 px; resnet18 (random init)")
    assert "synthetic scenes" in summary(load_profile("smoke"))
    assert "the folder /data/x" in summary(load_profile("cpu", ["data.source=/data/x"]))
