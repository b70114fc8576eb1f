"""The figure data a run keeps so that the book draws Figs. 4, 5, 7 and 8 without a checkpoint."""

import pytest
import torch

from mrife import figure_data
from mrife.cam import cam
from mrife.config import load_profile
from mrife.models import MODEL_NAMES, build_model
from mrife.reproduce import reproduce
from mrife.runs import load_run

FIGURE_TILES = ["data.synthetic_scenes=6", "data.tile_size=32", "data.tile_stride=32"]  # beside conftest's tiny


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_compute_stores_the_prediction_and_every_layer_of_each_model(name, tiny):
    cfg = load_profile("smoke", [f"model.name={name}", *tiny, *FIGURE_TILES])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    arrays = figure_data.compute(cfg, model)
    batch = figure_data.tile_batch(cfg)
    n, h, w = batch["mask"].shape
    assert n == figure_data.N_TILES and arrays["tiles"].tolist() == figure_data.figure_tiles(figure_data.test_split(cfg))
    assert arrays["scenes"].tolist() == list(batch["scene"])
    with torch.no_grad():
        expected = model(batch["image"]).argmax(1)
    assert torch.equal(torch.from_numpy(arrays["prediction"]).long(), expected), "prediction: the model's argmax"
    assert [k.removeprefix("cam/") for k in arrays if k.startswith("cam/")] == list(model.cam_layers())
    for layer in model.cam_layers():
        stored = torch.from_numpy(arrays[f"cam/{layer}"]).float() / 255
        assert stored.shape == (n, h, w)
        assert torch.allclose(stored, cam(model, batch["image"], layer, target_mask=batch["mask"]), atol=0.5 / 255), \
            f"{layer}: the stored map must be Grad-CAM of the labelled pixels to within its 1/255 steps"


def test_reproduce_writes_figure_data_and_adds_it_to_finished_runs(tmp_path, monkeypatch, capsys, tiny):
    from mrife import config

    monkeypatch.setitem(config.PROFILES, "smoke", [*config.PROFILES["smoke"], *tiny, *FIGURE_TILES])
    run = reproduce("smoke", tmp_path, ["segbranch"], progress=False)["segbranch"][0]
    data = figure_data.read(run)
    cfg, model = load_run(run)
    batch = figure_data.tile_batch(cfg, data.tiles)
    with torch.no_grad():
        assert torch.equal(data.prediction, model(batch["image"]).argmax(1)), "read() must give the best model's argmax"
    assert list(data.heat) == ["encoder"] and data.heat["encoder"].dtype == torch.float32
    assert 0 <= float(data.heat["encoder"].min()) and float(data.heat["encoder"].max()) <= 1

    first = (run / figure_data.FILE).read_bytes()
    (run / figure_data.FILE).unlink()
    reproduce("smoke", tmp_path, ["segbranch"], progress=False)  # finished: skipped, its figure data added
    assert (run / figure_data.FILE).read_bytes() == first, "the added figure data must be what training wrote"

    (run / figure_data.FILE).unlink()
    (run / "best.pt").unlink()  # as a committed run on a fresh clone: no checkpoint
    capsys.readouterr()
    reproduce("smoke", tmp_path, ["segbranch"], progress=False)
    assert "no checkpoint to make it from" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="figures.npz is missing"):
        figure_data.read(run)


def test_tile_batch_refuses_tiles_of_other_data(tiny):
    cfg = load_profile("smoke", [*tiny, *FIGURE_TILES])
    tiles = figure_data.figure_tiles(figure_data.test_split(cfg))
    with pytest.raises(ValueError, match="data or its tiling changed"):
        figure_data.tile_batch(cfg, [t + 1 for t in tiles])


def test_drawn_takes_the_lowest_seed_with_figure_data(tmp_path, monkeypatch, capsys, tiny):
    from mrife import config
    from mrife.results import drawn

    monkeypatch.setitem(config.PROFILES, "smoke", [*config.PROFILES["smoke"], *tiny, *FIGURE_TILES])
    runs = reproduce("smoke", tmp_path, ["segbranch"], progress=False, seeds=[0, 1])["segbranch"]
    (runs[0] / figure_data.FILE).unlink()  # seed 0 as a run trained before figure data existed
    capsys.readouterr()
    stored = drawn("smoke", {"B": "segbranch"}, root=tmp_path)
    assert "B seed 1" in capsys.readouterr().out, "the seed drawn must be said"
    assert torch.equal(stored["B"].prediction, figure_data.read(runs[1]).prediction)
    (runs[1] / figure_data.FILE).unlink()
    assert drawn("smoke", ["segbranch"], root=tmp_path) == {}
    assert "none of its finished seeds (0, 1) has figures.npz" in capsys.readouterr().out
