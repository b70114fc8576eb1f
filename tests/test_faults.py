"""Runs survive faults: a SIGKILL at any point, a disk that fills up during a checkpoint write."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

import mrife.runs as runs_module
from mrife.config import load_profile
from mrife.runs import load_checkpoint, run_dir_for
from mrife.train import fit

# A smoke MRIFE run of three short epochs, trained in child processes of one thread each.
SETTINGS = ["data.synthetic_scenes=6", "data.synthetic_size=64", "data.tile_size=64", "data.input_size=32",
            "train.batch_size=2", "train.epochs=3", "train.threads=1"]

# The child announces each checkpoint write after the temporary file is complete and
# before it is renamed into place, and pauses there, so that the parent can kill it
# inside the write.
CHILD = """
import sys, time
import mrife.runs as runs
from mrife.cli import main

real_atomic_write = runs.atomic_write

def announced(path, write):
    def write_and_pause(tmp):
        write(tmp)
        print("checkpoint-write", path.name, flush=True)
        time.sleep(0.3)
    real_atomic_write(path, write_and_pause)

runs.atomic_write = announced
sys.exit(main(sys.argv[1:]))
"""


def train_in_child(out, kill_after=None):
    """Run ``mrife train`` in a child process; with ``kill_after = ("write", n)`` SIGKILL it
    inside its n-th checkpoint write, with ``("time", s)`` after s seconds. Returns the
    exit status and the names of the files whose writes it announced."""
    args = ["train", "--profile", "smoke", "--out", str(out), "--no-progress", *sum((["--set", s] for s in SETTINGS), [])]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, text=True, env=env)
    writes = []
    if kill_after is not None and kill_after[0] == "write":
        for line in child.stdout:
            if line.startswith("checkpoint-write"):
                writes.append(line.split()[1])
            if len(writes) == kill_after[1]:
                child.send_signal(signal.SIGKILL)
                break
    elif kill_after is not None:
        try:
            child.wait(timeout=kill_after[1])
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
    rest = child.stdout.read()  # what it printed after, so that it never blocks on a full pipe
    writes += [line.split()[1] for line in rest.splitlines() if line.startswith("checkpoint-write")]
    return child.wait(), writes


def outcome(run):
    history = [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads((run / "history.json").read_text())]
    return history, json.loads((run / "test_metrics.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The run trained without a kill: its outcome, the files its writes announced and
    its wall time in seconds."""
    out = tmp_path_factory.mktemp("whole")
    tic = time.perf_counter()
    status, writes = train_in_child(out)
    assert status == 0
    return outcome(out / run_dir_for(load_profile("smoke", SETTINGS)).name), writes, time.perf_counter() - tic


def resumed_outcome(out, plan):
    """Kill a run at each point of ``plan`` in turn, then let it finish; returns its
    outcome and how many tries were killed."""
    killed = 0
    for kill_after in plan:
        status, _ = train_in_child(out, kill_after)
        killed += status == -signal.SIGKILL
        if status == 0:
            break
    while train_in_child(out)[0] != 0:  # the last try runs to the end
        pass
    run = out / run_dir_for(load_profile("smoke", SETTINGS)).name
    assert not [p.name for p in run.glob(".*")], "partial writes were left behind"
    return outcome(run), killed


@pytest.mark.slow
def test_a_run_killed_at_random_points_ends_as_an_uninterrupted_one(tmp_path, uninterrupted):
    expected, writes, seconds = uninterrupted
    # The kill points: inside checkpoint writes, and at random times scaled to this
    # machine's run (fixed seconds killed nothing on a CPU twice as fast). A resumed try
    # spends much of its time starting up, so a kill in its first 40 % lands in it.
    rng = random.Random(0)
    plan = [("write", rng.randint(1, len(writes))), ("time", rng.uniform(0.1, 0.4) * seconds),
            ("write", rng.randint(1, len(writes))), ("time", rng.uniform(0.1, 0.4) * seconds)]
    result, killed = resumed_outcome(tmp_path, plan)
    assert killed >= 2, f"the plan {plan} should have killed the run at least twice"
    assert result == expected, "the killed and resumed run ended differently"


@pytest.mark.slow
def test_a_kill_inside_the_last_epochs_history_write_keeps_the_whole_history(tmp_path, uninterrupted):
    # The last epoch's history.json is written after its last.pt: a resumed try then has
    # no epoch left to train (this once ended with a history one epoch short).
    expected, writes, _ = uninterrupted
    last_history = len(writes) - writes[::-1].index("history.json")
    result, killed = resumed_outcome(tmp_path, [("write", last_history)])
    assert killed == 1
    assert result == expected


def test_a_full_disk_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    cfg = load_profile("smoke", SETTINGS)
    whole = outcome(fit(cfg, tmp_path / "whole", progress=False))

    real_save = torch.save

    def disk_fills_up(obj, path, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("epoch") == 1:  # the resume checkpoint of epoch 1
            with open(path, "wb") as f:
                f.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(runs_module.torch, "save", disk_fills_up)
    with pytest.raises(OSError, match="No space left"):
        fit(cfg, tmp_path / "full", progress=False)
    run = tmp_path / "full" / run_dir_for(cfg).name
    assert load_checkpoint(run / "last.pt")["epoch"] == 0, "the previous checkpoint should be intact"
    assert not list(run.glob(".*")), "the partial file should be removed"
    monkeypatch.setattr(runs_module.torch, "save", real_save)
    assert outcome(fit(cfg, tmp_path / "full", progress=False)) == whole, "the rerun should resume and end alike"


def test_a_claimed_run_is_left_to_the_process_that_holds_it(tmp_path, capsys):
    run = tmp_path / "smoke" / "segbranch-x"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with runs_module.claim(run) as holder:
            assert holder is None and (tmp_path / "smoke" / ".segbranch-x.claim").exists(), "a free run is claimed"
            claimed = json.loads((tmp_path / "smoke" / ".segbranch-x.claim").read_text())
            assert claimed["pid"] == os.getpid()
        assert not (tmp_path / "smoke" / ".segbranch-x.claim").exists(), "the claim ends with the block"

        path = tmp_path / "smoke" / ".segbranch-x.claim"
        for holder, expected in (({"host": runs_module.socket.gethostname(), "pid": other.pid}, "respected"),
                                 ({"host": "another-machine", "pid": 1}, "respected"),
                                 ({"host": runs_module.socket.gethostname(), "pid": _dead_pid()}, "taken over")):
            path.write_text(json.dumps(holder))
            with runs_module.claim(run) as found:
                assert (found == holder) == (expected == "respected"), f"{holder}: expected the claim {expected}"
            assert path.exists() == (expected == "respected"), "a respected claim is not removed"
        assert not list(path.parent.glob(".claim-*")), "no temporary claim is left behind"

        from mrife.experiments import experiment_config
        from mrife.reproduce import reproduce
        run = run_dir_for(experiment_config("smoke", "segbranch", seed=0), tmp_path / "smoke")
        (tmp_path / "smoke" / f".{run.name}.claim").write_text(
            json.dumps({"host": runs_module.socket.gethostname(), "pid": other.pid}))
        assert reproduce("smoke", tmp_path, ["segbranch"], progress=False) == {}, "nothing trained"
        assert f"being trained by process {other.pid}" in capsys.readouterr().out and not run.exists()
    finally:
        other.kill()
        other.wait()


def _dead_pid() -> int:
    """The pid of a process that has ended (reaped, so no process holds it now)."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_a_locked_read_modify_write_loses_no_update(tmp_path):
    """Four threads add 1 to a shared file 200 times each, through ``locked``, as
    processes sharing a results folder update its index.json."""
    path = tmp_path / "index.json"
    runs_module.write_json(path, 0)

    def add_ones():
        for _ in range(200):
            with runs_module.locked(path):
                runs_module.write_json(path, json.loads(path.read_text()) + 1)

    threads = [threading.Thread(target=add_ones) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert json.loads(path.read_text()) == 800


@pytest.mark.slow
def test_two_reproductions_sharing_a_folder_train_each_run_once(tmp_path):
    command = [sys.executable, "-m", "mrife", "reproduce", "--profile", "smoke", "--only", "segbranch",
               "deeplabv3plus", "--out", str(tmp_path), "--no-progress", "--set", "train.threads=1"]
    jobs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [job.communicate(timeout=600)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], outs
    for name in ("segbranch", "deeplabv3plus"):
        trained = sum(f"{name} seed 0: training" in out for out in outs)
        assert trained == 1, f"{name} trained by {trained} of the 2 processes: {outs}"
    assert not list((tmp_path / "smoke").glob(".*claim*")), "every claim is released"
    assert set(json.loads((tmp_path / "smoke" / "index.json").read_text())) == {"segbranch", "deeplabv3plus"}
