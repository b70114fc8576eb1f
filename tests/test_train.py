"""Training: a few steps lower the loss, runs are deterministic, resumable and atomic."""

import json
import pickle

import pytest
import torch

import mrife.train as train_module
from mrife.cli import main
from mrife.compute import Compute
from mrife.config import load_profile
import mrife.runs as runs_module
from mrife.loaders import build_loaders, build_splits
from mrife.migrate import rename_runs
from mrife.models import build_model
from mrife.runs import load_run
from mrife.train import fit

MORE = ["data.synthetic_scenes=6", "train.epochs=2"]  # beside conftest's tiny: two epochs, to resume between


def test_mrife_steps_lower_the_loss():
    cfg = load_profile("smoke", ["data.input_size=64", "train.lr=0.01"])
    torch.manual_seed(0)
    batch = next(iter(build_loaders(cfg, build_splits(cfg))["train"]))
    assert batch["mask"].sum() > 0, "the batch should hold landslide pixels"
    model = build_model(cfg).train()
    opt = torch.optim.SGD(model.trainable_parameters(), lr=0.01, momentum=0.9)
    losses = []
    for step in range(6):
        draws = torch.Generator().manual_seed(0)  # the same masked blocks at every step
        out = model.training_losses(batch["image"], batch["mask"], step, draws)
        assert all(torch.isfinite(v) for v in out.values()), f"non-finite term in {out}"
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        model.after_step()
        losses.append(out["loss"].item())
    assert out["reconst"].item() > 0 and out["cons"].item() > 0, "auxiliary terms should be active"
    assert losses[-1] < losses[0], f"the loss should fall over 6 steps on one batch: {losses}"


@pytest.mark.parametrize("name", ["mrife", "segbranch"])
def test_same_seed_same_history(tmp_path, name, tiny):
    cfg = load_profile("smoke", [*tiny, *MORE, f"model.name={name}"])
    a = fit(cfg, tmp_path / "a", progress=False)
    b = fit(cfg, tmp_path / "b", progress=False)
    ha = json.loads((a / "history.json").read_text())
    hb = json.loads((b / "history.json").read_text())
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(ha) == strip(hb), "two runs with one seed and config gave different histories"
    assert (a / "test_metrics.json").read_text() == (b / "test_metrics.json").read_text()
    c = fit(load_profile("smoke", [*tiny, *MORE, f"model.name={name}", "seed=1"]), tmp_path / "c", progress=False)
    assert strip(json.loads((c / "history.json").read_text())) != strip(ha), "the seed changed nothing"


def test_run_directory_contents_and_resume(tmp_path, monkeypatch, tiny):
    cfg = load_profile("smoke", [*tiny, *MORE])
    full = fit(cfg, tmp_path / "full", progress=False)
    for name in ("config.yaml", "history.json", "best.pt", "test_metrics.json", "provenance.json"):
        assert (full / name).exists(), f"{name} missing from the run directory"
    assert not (full / "last.pt").exists(), "a finished run keeps no resume checkpoint"
    prov = json.loads((full / "provenance.json").read_text())
    assert prov["seed"] == 0 and prov["packages"]["torch"].startswith("2.14")
    assert not list(full.glob(".*")), "temporary files were left behind"

    # Interrupt during the second epoch, then run again: it resumes and ends as an
    # uninterrupted run does.
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train_epoch(*args, **kwargs)

    real_train_epoch = train_module.train_epoch
    monkeypatch.setattr(train_module, "train_epoch", interrupted)
    commit = {"rev-parse": "aaaa1111", "status": ""}
    monkeypatch.setattr(runs_module, "_git", lambda *args: commit[args[0]])
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, tmp_path / "resumed", progress=False)
    monkeypatch.setattr(train_module, "train_epoch", real_train_epoch)
    run = tmp_path / "resumed" / full.name
    assert len(json.loads((run / "history.json").read_text())) == 1, "epoch 0 should be on disk"
    assert not (run / "test_metrics.json").exists()
    commit.update({"rev-parse": "bbbb2222", "status": " M mrife/train.py"})  # the checkout moved on
    fit(cfg, tmp_path / "resumed", progress=False)
    prov = json.loads((run / "provenance.json").read_text())
    assert [t["git_commit"] for t in prov["tries"]] == ["aaaa1111", "bbbb2222"]
    assert prov["git_commit"] == "aaaa1111" and prov["git_dirty"] is True, "the commit a run started on is its commit"
    strip = lambda d: [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads((d / "history.json").read_text())]
    assert strip(run) == strip(full), "the resumed run differs from the uninterrupted one"
    mtime = (run / "test_metrics.json").stat().st_mtime_ns
    fit(cfg, tmp_path / "resumed", progress=False)
    assert (run / "test_metrics.json").stat().st_mtime_ns == mtime, "a finished run was trained again"


@pytest.mark.parametrize("status, dirty", [(" M mrife/models/icssn.py", True), ("", False)])
def test_provenance_says_whether_the_code_had_uncommitted_changes(monkeypatch, status, dirty):
    answers = {"rev-parse": "0691917f", "status": status}
    monkeypatch.setattr(runs_module, "_git", lambda *args: answers[args[0]])
    prov = runs_module.provenance(load_profile("smoke"), Compute(torch.device("cpu")), 1.0,
                                  [runs_module.code_version()])
    assert prov["git_commit"] == "0691917f" and prov["git_dirty"] is dirty


@pytest.mark.parametrize("dirty, why", [(False, None), (True, "trained from a changed tree at commit 0691917fab"),
                                        (None, "trained outside a git checkout")])
def test_a_run_from_a_changed_tree_is_named_as_such(tmp_path, dirty, why):
    (tmp_path / "provenance.json").write_text(json.dumps({"git_commit": "0691917fab12", "git_dirty": dirty}))
    assert runs_module.changed_tree(tmp_path) == why


def test_provenance_names_the_processor_and_its_bf16(monkeypatch):
    monkeypatch.setattr(runs_module, "processor", lambda: "Example CPU 9000")
    monkeypatch.setattr(runs_module, "native_bf16", lambda device: True)
    prov = runs_module.provenance(load_profile("smoke"), Compute(torch.device("cpu"), "bf16"), 1.0, [])
    assert (prov["processor"], prov["native_bf16"], prov["precision"]) == ("Example CPU 9000", True, "bf16"), \
        "provenance must say which CPU ran the run and whether it computes bf16 natively"


def test_provenance_outside_a_checkout(monkeypatch):
    monkeypatch.setattr(runs_module, "_git", lambda *args: "")
    prov = runs_module.provenance(load_profile("smoke"), Compute(torch.device("cpu")), 1.0,
                                  [runs_module.code_version()])
    assert prov["git_commit"] == "unknown" and prov["git_dirty"] is None


def test_non_finite_loss_stops_with_clear_error(tmp_path, tiny):
    cfg = load_profile("smoke", [*tiny, *MORE, "train.lr=1e30", "model.name=segbranch"])
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        fit(cfg, tmp_path, progress=False)


def test_cli_train_evaluate_info(tmp_path, capsys, tiny):
    args = ["train", "--profile", "smoke", "--out", str(tmp_path), "--no-progress"]
    assert main([*args, *sum((["--set", o] for o in [*tiny, *MORE]), [])]) == 0
    assert "2 epochs to train" in capsys.readouterr().out, "without bars, the expected time is a log line"
    run = next(tmp_path.iterdir())
    assert main(["evaluate", str(run), "--split", "val"]) == 0
    assert '"lIoU"' in capsys.readouterr().out
    assert main(["info"]) == 0
    assert main(["train", "--profile", "smoke", "--set", "train.nope=1"]) == 2
    assert "unknown config key" in capsys.readouterr().err
    cfg, model = load_run(run)
    assert not model.training and cfg.model.name == "mrife"

    # --force trains the finished run again, in place
    before = (run / "test_metrics.json").stat().st_mtime_ns
    assert main([*args, *sum((["--set", o] for o in [*tiny, *MORE]), []), "--force"]) == 0
    assert (run / "test_metrics.json").stat().st_mtime_ns != before, "--force did not train again"
    assert sorted(p.name for p in tmp_path.iterdir()) == [run.name], "--force should retrain in place"


def test_editing_a_data_folder_makes_a_new_run(tmp_path):
    from test_data import make_folder

    root = make_folder(tmp_path / "data", n=3)
    cfg = load_profile("smoke", [f"data.source={root}"])
    first = runs_module.run_dir_for(cfg, tmp_path)
    assert runs_module.run_dir_for(cfg, tmp_path) == first, "the same folder must give the same run"
    image = root / "images" / "a1.png"
    data = bytearray(image.read_bytes())
    (root / "images" / "a1.png").unlink()
    make_folder(tmp_path / "other", n=3)  # the same names, other pixels
    image.write_bytes((tmp_path / "other" / "images" / "a1.png").read_bytes())
    assert runs_module.run_dir_for(cfg, tmp_path) == first, "identical bytes, identical run"
    data[-20] ^= 0xFF  # one byte of the image data edited
    image.write_bytes(bytes(data))
    assert runs_module.run_dir_for(cfg, tmp_path) != first, "an edited image must make a new run"


class _Payload:
    """Pickles to a call of print: what a malicious checkpoint would make os.system."""

    def __reduce__(self):
        return (print, ("a checkpoint ran code",))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, capsys, tiny):
    run = fit(load_profile("smoke", [*tiny, *MORE, "train.epochs=1", "model.name=segbranch"]), tmp_path, progress=False)
    state = torch.load(run / "best.pt", weights_only=True)
    torch.save({**state, "extra": _Payload()}, run / "best.pt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_run(run)
    assert "a checkpoint ran code" not in capsys.readouterr().out, "the payload must never run"


def test_paper_profile_dry_run_builds_everything_and_projects_the_time(capsys):
    # The paper's model (ResNet101 at output stride 8, three encoders), optimizer and
    # loaders with its 4 workers, on small synthetic tiles so that two steps take seconds.
    argv = ["train", "--profile", "paper", "--dry-run", "--no-progress"]
    for setting in ["data.source=synthetic", "data.synthetic_scenes=6", "data.synthetic_size=128",
                    "data.tile_size=64", "data.input_size=32", "model.pretrained=false"]:
        argv += ["--set", setting]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "mrife, resnet101 at output stride 8, input 32 px, batch 4, 4 loader workers" in out
    assert out.count(" s,") + out.count(" s (") == 2, f"two step times expected: {out}"
    assert "peak memory:" in out and "projected: 100 epochs x" in out


def test_runs_take_the_name_their_config_has_after_a_field_is_added(tmp_path, tiny):
    import yaml

    cfg = load_profile("smoke", [*tiny, *MORE, "model.name=segbranch"])
    run = fit(cfg, tmp_path / "smoke", progress=False)
    # As if the run were trained before `mask.block` existed, under the hash of that time.
    old = run.parent / "segbranch-0123456789"
    run.rename(old)
    saved = yaml.safe_load((old / "config.yaml").read_text())
    del saved["mask"]["block"]
    (old / "config.yaml").write_text(yaml.safe_dump(saved))
    (old.parent / "index.json").write_text(json.dumps({"segbranch": {"0": old.name}}))

    assert rename_runs(tmp_path) == {old.name: run.name}
    assert (run / "best.pt").exists() and not old.exists()
    assert "block" in yaml.safe_load((run / "config.yaml").read_text())["mask"], "config.yaml should list every field"
    assert json.loads((run.parent / "index.json").read_text()) == {"segbranch": {"0": run.name}}
    assert rename_runs(tmp_path) == {}, "a second pass has nothing to rename"


def test_a_teacher_with_batch_statistics_feeds_the_decoder_alike_in_training_and_at_test(tmp_path):
    # After a short smoke training, batch norm's running statistics lag behind the batch
    # statistics in every encoder, the segmentation branch's included (its features are
    # about 9 times smaller at test than in training here), so the yardstick is the
    # segmentation path: the enhancement path must change no more than it does.
    def change(overrides):  # how much more the enhancement path changes than the segmentation path
        cfg, model = load_run(fit(load_profile("smoke", ["model.name=mrife", *overrides]), tmp_path, progress=False))
        batch = next(iter(build_loaders(cfg, build_splits(cfg, progress=False))["val"]))
        rms = model.feature_rms(batch["image"], batch["mask"])
        return (rms["enhanced"]["train"] / rms["enhanced"]["eval"]) / (rms["seg"]["train"] / rms["seg"]["eval"])

    assert 1 / 1.5 < change(["model.teacher_bn=batch"]) < 1.5, \
        "teacher_bn=batch: the enhancement features should change between training and test as the segmentation " \
        "features do (within 1.5x)"
    assert change([]) > 3, "the control: the EMA'd teacher's features at test should be far smaller than the " \
        "student's in training (if not, this test no longer tells the designs apart)"


def test_each_epoch_records_the_validation_ap_and_mrife_its_test_metrics_without_the_branch(tmp_path, tiny):
    from sklearn.metrics import average_precision_score

    from mrife.labels import IGNORE

    cfg = load_profile("smoke", [*tiny, *MORE, "train.epochs=1", "model.name=mrife"])
    run = fit(cfg, tmp_path, progress=False)
    history = json.loads((run / "history.json").read_text())
    test = json.loads((run / "test_metrics.json").read_text())
    # The AP recorded is scikit-learn's over every validation pixel of the best checkpoint.
    _, model = load_run(run)
    probability, labels = [], []
    with torch.no_grad():
        for batch in build_loaders(cfg, build_splits(cfg, progress=False))["val"]:
            probability.append(model(batch["image"]).softmax(1)[:, 1].flatten())
            labels.append(batch["mask"].flatten())
    probability, labels = torch.cat(probability), torch.cat(labels)
    valid = labels != IGNORE
    expected = average_precision_score(labels[valid].numpy(), probability[valid].numpy())
    assert history[0]["val_AP"] == pytest.approx(expected, abs=1e-3), "AP from 2^16 bins, scikit-learn's exact"
    # The test split scored again with the enhancement features zeroed, beside the whole model.
    off = {k: v for k, v in test.items() if k.startswith("enhancement_off_")}
    assert sorted(off) == sorted(f"enhancement_off_{m}" for m in ("PA", "precision", "recall", "F1", "lIoU", "mIoU"))
    segbranch = fit(load_profile("smoke", [*tiny, *MORE, "train.epochs=1", "model.name=segbranch"]), tmp_path,
                    progress=False)
    assert not any(k.startswith("enhancement_off") for k in json.loads((segbranch / "test_metrics.json").read_text()))


def test_the_enhancement_branch_switched_off_feeds_the_decoder_the_segmentation_features():
    model = build_model("mrife", backbone="resnet10t", channels=32).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    seen = []
    model.decoder.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    with torch.no_grad():
        whole = model(x)
        with model.enhancement_off():
            off = model(x)
        again = model(x)
        seg, teacher = model.features(x)
    torch.testing.assert_close(seen[1], seg, msg="switched off: the decoder reads the segmentation features")
    torch.testing.assert_close(seen[0], seg + teacher, msg="whole: segmentation + teacher features (addition)")
    torch.testing.assert_close(again, whole, msg="the branch is back on after the context")
    assert not torch.allclose(off, whole), "the teacher's features changed the logits"
