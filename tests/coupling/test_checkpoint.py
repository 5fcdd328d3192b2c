"""Checkpoints: exact round trip, exact resume, config refusal, survival of SIGKILL mid-write."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from coupling.training.checkpoint import (
    RESUME_KEYS,
    CheckpointError,
    config_hash,
    load_checkpoint,
    save_checkpoint,
)
from coupling.training.resume import (
    CheckpointManager,
    find_latest_checkpoint,
    latest_pointer,
    list_checkpoints,
)

CONFIG = {
    "mesh": {"kind": "rectangle", "size": 0.1},
    "network": {"kind": "vsn", "width": 16, "steps": 4},
    "training": {"steps": 20, "lr": 1e-2, "log_every": 5},
    "output": {"dir": "run"},
}


def make(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
    ).double()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.7)
    return model, opt, sched


X = torch.linspace(-1, 1, 64, dtype=torch.float64).reshape(32, 2)


def step(model, opt, sched):
    # Random mini-batches from torch AND numpy AND python RNGs: resume must restore all three.
    idx = torch.randint(0, 32, (8,))
    idx = idx[np.random.permutation(8)][: random.randint(4, 8)]
    opt.zero_grad()
    loss = ((model(X[idx]) - X[idx, :1] ** 2) ** 2).sum()
    loss.backward()
    opt.step()
    sched.step()


def seed_all(s=123):
    torch.manual_seed(s)
    np.random.seed(s)
    random.seed(s)


def params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_round_trip_restores_everything_exactly(tmp_path):
    seed_all()
    model, opt, sched = make()
    for _ in range(5):
        step(model, opt, sched)
    h = config_hash(CONFIG)
    path = save_checkpoint(
        tmp_path / "c.pt",
        model=model,
        optimizer=opt,
        scheduler=sched,
        step=5,
        config_hash=h,
        metadata={"loss": 0.5, "shape": (2, 8)},
    )
    after = (torch.rand(3), np.random.rand(3), random.random())
    model2, opt2, sched2 = make(seed=99)
    seed_all(7)
    ck = load_checkpoint(path, h, model=model2, optimizer=opt2, scheduler=sched2)
    assert ck["step"] == 5 and ck["metadata"] == {"loss": 0.5, "shape": [2, 8]}
    assert torch.equal(params(model), params(model2))
    s1, s2 = opt.state_dict(), opt2.state_dict()
    for k in s1["state"]:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(s1["state"][k][name], s2["state"][k][name])
    assert sched2.last_epoch == sched.last_epoch and sched2.get_last_lr() == sched.get_last_lr()
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(after[0], again[0]) and np.array_equal(after[1], again[1])
    assert after[2] == again[2]


def test_resume_equals_uninterrupted_run(tmp_path):
    seed_all()
    model, opt, sched = make()
    for _ in range(20):
        step(model, opt, sched)
    reference = params(model)

    seed_all()
    model, opt, sched = make()
    mgr = CheckpointManager(tmp_path, config_hash(CONFIG), keep=2)
    for i in range(10):
        step(model, opt, sched)
        mgr.save(i + 1, model=model, optimizer=opt, scheduler=sched)
    del model, opt, sched
    seed_all(999)  # a fresh process would start from some other RNG state
    model, opt, sched = make(seed=5)
    path, _ = mgr.latest()
    ck = load_checkpoint(path, config_hash(CONFIG), model=model, optimizer=opt, scheduler=sched)
    for _ in range(ck["step"], 20):
        step(model, opt, sched)
    assert (params(model) - reference).abs().max().item() < 1e-12
    # retention: the newest `keep` files and a pointer to the newest
    assert [s for s, _ in list_checkpoints(tmp_path)] == [9, 10]
    assert latest_pointer(tmp_path).name == "ckpt-000000010.pt"


def test_config_hash_ignores_resume_keys_only():
    h = config_hash(CONFIG)
    assert "training.steps" in RESUME_KEYS and "output" in RESUME_KEYS
    longer = {**CONFIG, "training": {**CONFIG["training"], "steps": 5000, "log_every": 50}}
    moved = {**CONFIG, "output": {"dir": "elsewhere"}}
    reordered = dict(reversed(list(CONFIG.items())))
    assert config_hash(longer) == h == config_hash(moved) == config_hash(reordered)
    other_lr = {**CONFIG, "training": {**CONFIG["training"], "lr": 2e-2}}
    other_mesh = {**CONFIG, "mesh": {"kind": "rectangle", "size": 0.05}}
    assert len({h, config_hash(other_lr), config_hash(other_mesh)}) == 3


def test_checkpoint_of_another_config_is_refused(tmp_path):
    model, opt, _ = make()
    h = config_hash(CONFIG)
    path = CheckpointManager(tmp_path, h).save(1, model=model, optimizer=opt)
    other = config_hash({**CONFIG, "mesh": {"kind": "lshape", "size": 0.1}})
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, other, model=model, optimizer=opt)
    message = str(err.value)
    assert isinstance(err.value, ValueError) and "\n" not in message
    assert str(path) in message and h in message and other in message
    with pytest.raises(CheckpointError, match="different config"):
        find_latest_checkpoint(tmp_path, other)


def test_corrupt_newest_checkpoint_is_skipped_with_warning(tmp_path, capsys):
    model, opt, _ = make()
    mgr = CheckpointManager(tmp_path, "h", keep=3)
    for s in (1, 2, 3):
        mgr.save(s, model=model, optimizer=opt)
    newest = tmp_path / "ckpt-000000003.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated, e.g. a full disk
    path, ck = find_latest_checkpoint(tmp_path, "h")
    err = capsys.readouterr().err.splitlines()  # one line per skipped file, no Python warning
    assert len(err) == 1 and err[0].startswith("neurofem: warning: skipping "), err
    assert "ckpt-000000003.pt: unreadable" in err[0]
    assert path.name == "ckpt-000000002.pt" and ck["step"] == 2
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="x.pt: unreadable"):
        load_checkpoint(tmp_path / "x.pt", "h")
    assert find_latest_checkpoint(tmp_path / "empty", "h") is None


WRITER = """
import sys, torch
from coupling.training.resume import CheckpointManager
run = sys.argv[1]
model = torch.nn.Linear(1, 1)
model.register_buffer("big", torch.empty(12_000_000, dtype=torch.float64))  # ~96 MB
mgr = CheckpointManager(run, "h", keep=2)
step = 0
while True:  # write as fast as possible: a kill nearly always lands inside a write
    step += 1
    model.big.fill_(float(step))
    mgr.save(step, model=model, optimizer=None)
    print(step, flush=True)
"""


def test_sigkill_during_write_leaves_previous_checkpoint_loadable(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    run = tmp_path / "run"
    rng = np.random.default_rng(0)
    interrupted_writes = 0
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(run)], stdout=subprocess.PIPE, text=True
        )
        first = proc.stdout.readline()  # one complete checkpoint exists
        assert first.strip(), "writer died before its first checkpoint"
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        interrupted_writes += any(run.glob(".ckpt-*.tmp"))
        path, ck = find_latest_checkpoint(run, "h")
        big = ck["model"]["big"]
        assert big.shape == (12_000_000,) and torch.all(big == float(ck["step"]))
    print(f"{interrupted_writes} of 3 kills left a partial temp file behind")
    assert interrupted_writes >= 1  # we did kill in the middle of a write
