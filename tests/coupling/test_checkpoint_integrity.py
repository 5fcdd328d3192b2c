"""Checkpoints with checksums (issue 28): a SHA-256 of the payload bytes verified on load;
a damaged latest falls back with one line per skipped file; foreign keys, bad metadata and
a non-UTF-8 `latest` pointer are one line; a full disk names the file and the free space;
`resume --steps` below the steps done is refused; a refused resume leaves config.toml as
it was."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import shutil
import tomllib
from pathlib import Path

import pytest
import tomli_w
import torch

import coupling.training.checkpoint as ck
from coupling.cli import main
from coupling.training.checkpoint import (
    FORMAT,
    FORMAT_V1,
    CheckpointError,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from coupling.training.resume import CheckpointManager, check_resume, find_latest_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def make(seed=0, width=8):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.Tanh(),
                                torch.nn.Linear(width, 1)).double()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.ones(3, 2, dtype=torch.float64)).sum().backward()
    opt.step()  # Adam's exp_avg / exp_avg_sq exist: the optimizer state has tensors
    return model, opt


def _payload_bytes(path: Path) -> bytes:
    outer = torch.load(path, weights_only=True)
    assert outer["format"] == FORMAT
    return outer["payload"].numpy().tobytes()


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_checkpoint_carries_the_sha256_of_its_payload(tmp_path):
    model, opt = make()
    path = save_checkpoint(tmp_path / "c.pt", model=model, optimizer=opt, step=3,
                           config_hash="h", metadata={"wall_s": 1.5})
    outer = torch.load(path, weights_only=True)
    assert set(outer) == {"format", "sha256", "payload"}
    assert outer["sha256"] == hashlib.sha256(_payload_bytes(path)).hexdigest()
    got = read_checkpoint(path, "h")
    assert got["step"] == 3 and got["metadata"] == {"wall_s": 1.5}


def test_one_flipped_byte_in_the_optimizer_state_is_detected(tmp_path):
    model, opt = make()
    path = save_checkpoint(tmp_path / "c.pt", model=model, optimizer=opt, step=1,
                           config_hash="h")
    raw = _payload_bytes(path)
    exp_avg = opt.state_dict()["state"][0]["exp_avg"].numpy().tobytes()
    at = path.read_bytes().index(raw)  # stored uncompressed inside the outer file
    _flip(path, at + raw.index(exp_avg) + 3)
    with pytest.raises(CheckpointError, match=r"c.pt: damaged checkpoint \(SHA-256") as e:
        load_checkpoint(path, "h", model=model, optimizer=opt)
    assert len(str(e.value).splitlines()) == 1


def test_any_flipped_byte_is_detected_or_harmless(tmp_path):
    """Flip one byte at 40 places spread over the file: each load either fails with one
    CheckpointError line or returns exactly the saved payload (a byte of zip padding)."""
    model, opt = make()
    path = save_checkpoint(tmp_path / "c.pt", model=model, optimizer=opt, step=1,
                           config_hash="h")
    original = path.read_bytes()
    saved = read_checkpoint(path)
    detected = 0
    for offset in range(0, len(original), max(1, len(original) // 40)):
        path.write_bytes(original)
        _flip(path, offset)
        try:
            got = read_checkpoint(path)
        except CheckpointError as exc:
            assert len(str(exc).splitlines()) == 1
            detected += 1
            continue
        for name, tensor in saved["model"].items():
            assert torch.equal(got["model"][name], tensor), offset
        assert got["optimizer"]["state"][0]["exp_avg"].equal(
            saved["optimizer"]["state"][0]["exp_avg"]), offset
    assert detected >= 20


def test_damaged_latest_falls_back_with_one_line_per_skipped_file(tmp_path, capsys):
    model, opt = make()
    mgr = CheckpointManager(tmp_path, "h", keep=3)
    for s in (1, 2, 3):
        mgr.save(s, model=model, optimizer=opt)
    raw = _payload_bytes(tmp_path / "ckpt-000000003.pt")
    for name in ("ckpt-000000003.pt", "ckpt-000000002.pt"):
        p = tmp_path / name
        _flip(p, p.read_bytes().index(raw[:64]) + len(raw) // 2)
    path, got = find_latest_checkpoint(tmp_path, "h")
    assert path.name == "ckpt-000000001.pt" and got["step"] == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err
    assert all(ln.startswith("neurofem: warning: skipping ") and "damaged" in ln for ln in err)
    assert "ckpt-000000003.pt" in err[0] and "ckpt-000000002.pt" in err[1]
    find_latest_checkpoint(tmp_path, "h")  # looked at again (a pre-check, then the resume)
    assert capsys.readouterr().err == ""  # the same damaged files are not reported twice


def test_non_utf8_latest_pointer_is_one_line_and_the_newest_is_used(tmp_path, capsys):
    model, opt = make()
    mgr = CheckpointManager(tmp_path, "h", keep=3)
    for s in (1, 2):
        mgr.save(s, model=model, optimizer=opt)
    (tmp_path / "latest").write_bytes(b"\xff\xfe\x00ckpt")
    path, got = find_latest_checkpoint(tmp_path, "h")
    assert got["step"] == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "latest: not UTF-8" in err[0], err


def _v1(path: Path, **changes) -> Path:
    """A format-1 payload (no checksum) with some fields replaced."""
    model, opt = make()
    payload = {"format": FORMAT_V1, "step": 1, "config_hash": "h",
               "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": None,
               "rng": ck.rng_state(), "metadata": json.dumps({})} | changes
    torch.save(payload, path)
    return path


def _v2(path: Path, **changes) -> Path:
    """The same with a valid checksum: the damage is in the content, not the bytes."""
    buf = io.BytesIO()
    torch.save(torch.load(_v1(path, **changes), weights_only=True), buf)
    data = buf.getvalue()
    torch.save({"format": FORMAT, "sha256": hashlib.sha256(data).hexdigest(),
                "payload": torch.frombuffer(bytearray(data), dtype=torch.uint8)}, path)
    return path


@pytest.mark.parametrize("write", [_v1, _v2])
@pytest.mark.parametrize("changes, match", [
    ({"metadata": {"wall_s": 1.0}}, "metadata is dict, expected str"),
    ({"metadata": 7}, "metadata is int, expected str"),
    ({"metadata": "{not json"}, "damaged checkpoint metadata"),
    ({"metadata": "[1, 2]"}, r"metadata \(not a table\)"),
    ({"step": "3"}, "step is str, expected int"),
    ({"step": -4}, r"\(step -4\)"),
    ({"config_hash": 5}, "config_hash is int"),
    ({"model": [1, 2]}, "model is list"),
    ({"model": {"0.weight": "x"}}, "model entry '0.weight' is not a named tensor"),
    ({"optimizer": "adam"}, "optimizer is str"),
    ({"rng": None}, "rng is NoneType"),
])
def test_bad_fields_are_one_line(write, changes, match, tmp_path):
    path = write(tmp_path / "c.pt", **changes)
    with pytest.raises(CheckpointError, match=match) as e:
        read_checkpoint(path)
    assert len(str(e.value).splitlines()) == 1 and "c.pt" in str(e.value)


def test_format_1_checkpoints_still_load(tmp_path):
    model, opt = make()
    got = load_checkpoint(_v1(tmp_path / "old.pt"), "h", model=model, optimizer=opt)
    assert got["step"] == 1


def test_foreign_model_keys_are_one_line(tmp_path):
    model, opt = make()
    path = save_checkpoint(tmp_path / "c.pt", model=model, optimizer=opt, step=1,
                           config_hash="h")
    other = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Linear(8, 8)).double()
    with pytest.raises(CheckpointError, match="another network") as e:
        load_checkpoint(path, "h", model=other)
    assert len(str(e.value).splitlines()) == 1
    renamed = torch.nn.ModuleDict({"a": torch.nn.Linear(2, 8)}).double()
    with pytest.raises(CheckpointError, match=r"foreign key\(s\), e.g. '0.weight'.*missing"):
        load_checkpoint(path, "h", model=renamed)
    wider, _ = make(width=9)
    with pytest.raises(CheckpointError, match=r"'0.weight' has shape \(8, 2\)"):
        load_checkpoint(path, "h", model=wider)


def test_optimizer_of_another_network_is_one_line(tmp_path):
    model, opt = make()
    path = save_checkpoint(tmp_path / "c.pt", model=model, optimizer=opt, step=1,
                           config_hash="h")
    lone = torch.nn.Linear(2, 1).double()
    with pytest.raises(CheckpointError, match="cannot restore the optimizer state") as e:
        load_checkpoint(path, "h", optimizer=torch.optim.Adam(lone.parameters()))
    assert len(str(e.value).splitlines()) == 1


@pytest.mark.parametrize("code, text", [(errno.ENOSPC, "No space left on device"),
                                        (errno.EDQUOT, "Disk quota exceeded")])
def test_full_disk_names_the_file_and_the_free_space(code, text, tmp_path, monkeypatch):
    def full(path, write):
        if callable(write):
            write(io.BytesIO())  # the payload is serialised; the disk write itself fails
        raise OSError(code, text, str(path))

    monkeypatch.setattr(ck, "_atomic_write", full)
    model, opt = make()
    with pytest.raises(CheckpointError) as e:
        CheckpointManager(tmp_path, "h").save(7, model=model, optimizer=opt)
    msg = str(e.value)
    assert len(msg.splitlines()) == 1 and "Traceback" not in msg
    assert str(tmp_path / "ckpt-000000007.pt") in msg and text in msg
    assert " free of " in msg and "keep_checkpoints" in msg, msg
    assert not (tmp_path / "latest").exists()  # the pointer still names no new file


def test_torch_writer_error_is_one_line_too(tmp_path, monkeypatch):
    def broken(path, write):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(ck, "_atomic_write", broken)
    model, opt = make()
    with pytest.raises(CheckpointError, match="cannot write checkpoint.*free"):
        save_checkpoint(tmp_path / "c.pt", model=model, optimizer=opt, step=1, config_hash="h")


# ---- resume: refused before anything in the run changes ----------------------------------
def test_check_resume(tmp_path):
    model, opt = make()
    cfg = {"training": {"steps": 10}, "mesh": {"size": 0.1}}
    h = ck.config_hash(cfg)
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        check_resume(tmp_path, cfg)
    CheckpointManager(tmp_path, h).save(6, model=model, optimizer=opt)
    assert check_resume(tmp_path, cfg) == 6
    assert check_resume(tmp_path, {**cfg, "training": {"steps": 6}}) == 6  # nothing to do
    with pytest.raises(CheckpointError, match=r"training.steps = 5 is below the 6 steps.*"
                                              r"--steps 6 or more"):
        check_resume(tmp_path, {**cfg, "training": {"steps": 5}})
    with pytest.raises(CheckpointError, match="different config"):
        check_resume(tmp_path, {**cfg, "mesh": {"size": 0.2}})


def _tiny() -> dict:
    doc = tomllib.loads((ROOT / "examples" / "lshape-vsn-galerkin.toml").read_text())
    doc["mesh"]["size"] = 0.25
    doc["network"]["hidden"] = [16, 16]
    doc["training"].update({"steps": 6, "log_every": 3, "checkpoint_every": 3,
                            "progress": False})
    return doc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("trained")
    (base / "run.toml").write_text(tomli_w.dumps(_tiny()))
    assert main(["train", str(base / "run.toml"), "--out", str(base / "run")]) == 0
    return base / "run"


def _resume(run: Path, steps: int, capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    try:
        code = main(["resume", str(run), "--steps", str(steps)])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err.strip().splitlines()


def test_resume_below_the_steps_done_is_refused_in_one_line(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    checkpoints = {p.name: p.read_bytes() for p in run.glob("ckpt-*.pt")}
    code, err = _resume(run, 2, capsys)
    lines = [ln for ln in err if ln.startswith("neurofem: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in "\n".join(err), err
    assert "training.steps = 2 is below the 6 steps" in lines[0]
    assert {p.name: p.read_bytes() for p in run.glob("ckpt-*.pt")} == checkpoints


def test_damaged_latest_resumes_from_the_previous_with_one_line(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    newest = run / "ckpt-000000006.pt"
    raw = _payload_bytes(newest)
    _flip(newest, newest.read_bytes().index(raw[:64]) + len(raw) - 10)
    code, err = _resume(run, 6, capsys)
    assert code == 0, err
    skipped = [ln for ln in err if "skipping" in ln]
    assert len(skipped) == 1 and "ckpt-000000006.pt: damaged checkpoint" in skipped[0], err
    assert not any("Warning" in ln for ln in err), err


@pytest.mark.parametrize("damage", ["steps-below", "all-damaged", "other-config"])
def test_refused_resume_leaves_config_toml_byte_identical(damage, trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    steps = 2 if damage == "steps-below" else 20
    if damage == "all-damaged":
        for p in run.glob("ckpt-*.pt"):
            p.write_bytes(p.read_bytes()[:100])
    if damage == "other-config":
        for p in run.glob("ckpt-*.pt"):
            p.unlink()
        _other = CheckpointManager(run, "not-this-config")
        model, opt = make()
        _other.save(3, model=model, optimizer=opt)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    code, err = _resume(run, steps, capsys)
    assert code == 2 and len([ln for ln in err if ln.startswith("neurofem: error:")]) == 1, err
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert after["config.toml"] == before["config.toml"]
    assert {k: v for k, v in after.items() if k != ".lock.owner"} == \
        {k: v for k, v in before.items() if k != ".lock.owner"}


# ---- metrics.jsonl: repaired with one line, never appended through a link -----------------
def test_damaged_metrics_line_dropped_with_one_line(tmp_path, capsys):
    from coupling.training.callbacks import read_metrics

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 5, "loss": 1.0}\n{"step": 1\n{"step": 10, "loss": 0.5}\n')
    assert [r["step"] for r in read_metrics(path, repair=True)] == [5, 10]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("neurofem: warning:") and "line 2" in err[0]


def test_metrics_never_appended_through_a_link(tmp_path):
    from types import SimpleNamespace

    from coupling.training.callbacks import MetricsLog

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").symlink_to(victim)
    state = SimpleNamespace(comm=SimpleNamespace(rank=0))
    with pytest.raises(OSError) as e:
        MetricsLog(run).on_log(state, {"step": 1, "loss": 0.1})
    assert e.value.filename == str(run / "metrics.jsonl")
    assert victim.read_text() == "precious\n"
