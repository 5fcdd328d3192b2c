"""Checkpoints that survive a kill at any moment and refuse to resume a different run.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python values,
so it loads with ``torch.load(weights_only=True)`` (no arbitrary code on load). It is
written to a temporary file in the run directory, flushed and fsynced, then renamed
over its final name (``os.replace`` is atomic on POSIX) and the directory is fsynced:
a reader sees the old file or the new one, never half of one. The ``latest`` pointer
(a one-line text file naming the newest checkpoint) is replaced the same way.

Each file carries a SHA-256 of its payload's bytes (the ``torch.save`` of model, optimizer,
scheduler, RNG and metadata), checked on load: a flipped byte anywhere in the payload is
an unreadable checkpoint, and resuming falls back to the previous one with one
``neurofem: warning:`` line per skipped file. Foreign model keys, metadata that is not a
JSON string, a ``latest`` pointer that is not UTF-8 and a full disk are one line each.

Resuming is allowed only with the same configuration, compared by a SHA-256 of its
canonical JSON minus the keys in :data:`RESUME_KEYS` (those a user may change on
resume: how long to train, how often to log or checkpoint, where outputs go).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import random
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from coupling.training.errors import CheckpointError
from fem.cache import atomic_write as _atomic_write

FORMAT = "neurofem-checkpoint/2"  # {format, sha256, payload: the torch.save bytes}
FORMAT_V1 = "neurofem-checkpoint/1"  # the payload itself, no checksum (still read)

# Dotted config keys (a key names its whole subtree) that may differ on resume.
RESUME_KEYS: tuple[str, ...] = (
    "training.steps",  # train longer (or shorter) than first planned
    "training.device",  # where it runs, how many threads and whether compiled do not
    "training.threads",  # change the problem or the network (results agree to round-off)
    "training.compile",
    "training.lbfgs_steps",
    "training.log_every",
    "training.checkpoint_every",
    "training.keep_checkpoints",
    "training.progress",  # progress bar on/off
    "training.max_memory_gb",  # the resource limit of the check before a run
    "training.offnode_every",  # how often and at how many points the off-node errors
    "training.offnode_points",  # are measured (metrics only; the steps do not change)
    "output",  # output directory and what is written there
    "outputs",
)



def _plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars/arrays, paths and tuples become plain values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def _without(config: Mapping[str, Any], exclude: Iterable[str]) -> dict[str, Any]:
    """A deep copy of config with the dotted keys in `exclude` removed."""
    config = _plain(config)
    for dotted in exclude:
        *parents, leaf = dotted.split(".")
        node = config
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict):
            node.pop(leaf, None)
    return config


def canonical_json(config: Mapping[str, Any]) -> str:
    """Deterministic JSON of a config: sorted keys, no whitespace, NaN refused."""
    return json.dumps(
        _plain(config), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def config_hash(config: Mapping[str, Any], exclude: Iterable[str] = RESUME_KEYS) -> str:
    """SHA-256 (hex) of the resolved config's canonical JSON, without the `exclude` keys."""
    return hashlib.sha256(canonical_json(_without(config, exclude)).encode()).hexdigest()


def rng_state() -> dict[str, Any]:
    """The torch, numpy (global) and Python RNG states as weights_only-loadable values."""
    np_state = np.random.get_state(legacy=False)
    state = {
        "torch": torch.get_rng_state(),
        "numpy": json.dumps(_plain(np_state)),
        "python": json.dumps(_plain(random.getstate())),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the RNG states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    np_state = json.loads(state["numpy"])
    np_state["state"]["key"] = np.asarray(np_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(np_state)
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_write(path: str | os.PathLike, write) -> None:
    """Write a file by calling write(fileobj) (or writing bytes) on a temp file, fsync it,
    rename it into place (unique temp name, permissions from the umask, OSError naming
    `path`: fem.cache)."""
    _atomic_write(path, write)


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    config_hash: str,
    scheduler: Any = None,
    metadata: Mapping[str, Any] | None = None,
    comm=None,
) -> Path | None:
    """Write one checkpoint atomically (rank 0 of `comm` only); return its path there."""
    if comm is not None and comm.rank != 0:
        return None
    payload = {
        "format": FORMAT_V1,
        "step": int(step),
        "config_hash": str(config_hash),
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": rng_state(),
        "metadata": json.dumps(_plain(dict(metadata or {}))),
    }
    path = Path(path)
    try:  # serialised inside the write: the temporary file exists from the start
        atomic_write(path, lambda f: _save_to(_wrapped(payload), f))  # full disk: OSError
    except OSError as exc:
        raise CheckpointError(_write_failure(path, exc)) from None
    except RuntimeError as exc:  # torch's writer hides the errno ("file write failed")
        raise CheckpointError(_write_failure(path, exc)) from None
    return path


def _wrapped(payload: dict) -> dict:
    """The file's contents: the payload's torch.save bytes and their SHA-256."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getbuffer()
    return {"format": FORMAT, "sha256": hashlib.sha256(data).hexdigest(),
            "payload": torch.frombuffer(data, dtype=torch.uint8)}


class _Recorded:
    """A file object that remembers the OSError of a failed write (torch's zip writer turns
    it into a RuntimeError that hides the errno: ENOSPC, EFBIG, EDQUOT)."""

    def __init__(self, f) -> None:
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.f.flush()


def _save_to(obj: Any, f) -> None:
    """torch.save(obj, f), a failed disk write raised as its own OSError."""
    recorded = _Recorded(f)
    try:
        torch.save(obj, recorded)
    except RuntimeError:
        if recorded.error is not None:
            raise recorded.error from None
        raise


def _write_failure(path: Path, exc: BaseException) -> str:
    """One line: which checkpoint could not be written, why, and the free space there."""
    why = (exc.strerror if isinstance(exc, OSError) and exc.strerror else _short(exc))
    try:
        usage = shutil.disk_usage(path.parent)
        free = f"{_size(usage.free)} free of {_size(usage.total)} on {path.parent}"
    except OSError:
        free = f"free space on {path.parent} unknown"
    hint = ""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        hint = "; free space (or lower training.keep_checkpoints) and resume"
    return f"{path}: cannot write checkpoint ({why}; {free}){hint}"


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def read_checkpoint(path: str | os.PathLike, config_hash: str | None = None) -> dict[str, Any]:
    """Load a checkpoint's contents (weights_only), verify its SHA-256 and check its
    format, fields and config hash (CheckpointError, one line, otherwise)."""
    path = Path(path)
    payload = _load(path, path)
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        digest, data = payload.get("sha256"), payload.get("payload")
        if not isinstance(digest, str) or not isinstance(data, torch.Tensor) \
                or data.dtype != torch.uint8 or data.dim() != 1:
            raise CheckpointError(f"{path}: damaged checkpoint (no checksum or payload)")
        raw = data.numpy().tobytes()
        actual = hashlib.sha256(raw).hexdigest()
        if actual != digest:
            raise CheckpointError(f"{path}: damaged checkpoint (SHA-256 {actual[:12]}… of its "
                                  f"payload, recorded {digest[:12]}…)")
        payload = _load(path, io.BytesIO(raw))
        if not isinstance(payload, dict) or payload.get("format") != FORMAT_V1:
            raise CheckpointError(f"{path}: not a neurofem checkpoint (expected format "
                                  f"{FORMAT})")
    elif not isinstance(payload, dict) or payload.get("format") != FORMAT_V1:
        raise CheckpointError(f"{path}: not a neurofem checkpoint (expected format {FORMAT})")
    _check_fields(path, payload)
    check_hash(path, payload, config_hash)
    try:
        metadata = json.loads(payload["metadata"])
    except ValueError as exc:
        raise CheckpointError(f"{path}: damaged checkpoint metadata ({_short(exc)})") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: damaged checkpoint metadata (not a table)")
    payload["metadata"] = metadata
    return payload


def _load(path: Path, source) -> Any:
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as exc:  # truncated zip, foreign pickle, ...: all mean "unusable"
        raise CheckpointError(f"{path}: unreadable checkpoint ({_short(exc)})") from None


# what each field of a payload must be (a checkpoint of ours has exactly these types)
_FIELDS = {"step": int, "config_hash": str, "model": dict, "rng": dict, "metadata": str}


def _check_fields(path: Path, payload: dict) -> None:
    """Refuse a payload whose fields have foreign types (one line naming the field)."""
    for name, kind in _FIELDS.items():
        value = payload.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CheckpointError(f"{path}: damaged checkpoint ({name} is "
                                  f"{type(value).__name__}, expected {kind.__name__})")
    if payload["step"] < 0:
        raise CheckpointError(f"{path}: damaged checkpoint (step {payload['step']})")
    for name in ("optimizer", "scheduler"):
        if payload.get(name) is not None and not isinstance(payload[name], dict):
            raise CheckpointError(f"{path}: damaged checkpoint ({name} is "
                                  f"{type(payload[name]).__name__}, expected a table)")
    bad = next((k for k, v in payload["model"].items()
                if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise CheckpointError(f"{path}: damaged checkpoint (model entry {bad!r} is not a "
                              "named tensor)"[:300])


def check_hash(path: Path, payload: Mapping[str, Any], config_hash: str | None) -> None:
    """Refuse a checkpoint written under another config (one line naming both hashes)."""
    if config_hash is not None and payload["config_hash"] != config_hash:
        raise CheckpointError(
            f"{path}: checkpoint is from a different config (its hash {payload['config_hash']}, "
            f"this run's {config_hash}); resume with the run's own config.toml or start a new run"
        )


def _short(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:200]


def load_checkpoint(
    path: str | os.PathLike,
    config_hash: str | None,
    *,
    model: torch.nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore model/optimizer/scheduler/RNG from a checkpoint of this config; return it."""
    payload = read_checkpoint(path, config_hash)
    if model is not None:
        _check_model_keys(path, model, payload["model"])
        _restore(path, "model", model, payload["model"])
    if optimizer is not None:
        if payload["optimizer"] is None:
            raise CheckpointError(f"{path}: checkpoint holds no optimizer state")
        _restore(path, "optimizer", optimizer, payload["optimizer"])
    if scheduler is not None and payload["scheduler"] is not None:
        _restore(path, "scheduler", scheduler, payload["scheduler"])
    if restore_rng:
        try:
            set_rng_state(payload["rng"])
        except Exception as exc:
            raise CheckpointError(f"{path}: damaged RNG state ({_short(exc)})") from None
    return payload


def _check_model_keys(path: Path, model: torch.nn.Module, state: Mapping[str, Any]) -> None:
    """Refuse a checkpoint of another network (one line naming the first foreign and the
    first missing parameter, and the first shape that differs)."""
    own = model.state_dict()
    foreign = [k for k in state if k not in own]
    missing = [k for k in own if k not in state]
    if foreign or missing:
        parts = []
        if foreign:
            parts.append(f"{len(foreign)} foreign key(s), e.g. {foreign[0]!r}")
        if missing:
            parts.append(f"{len(missing)} missing, e.g. {missing[0]!r}")
        raise CheckpointError(f"{path}: checkpoint is of another network ({'; '.join(parts)})"
                              [:300])
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(f"{path}: checkpoint is of another network ({k!r} has shape "
                                  f"{tuple(v.shape)}, this network's {tuple(own[k].shape)})")


def _restore(path: Path, what: str, target: Any, state: Any) -> None:
    """target.load_state_dict(state), any failure one CheckpointError line."""
    try:
        target.load_state_dict(state)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot restore the {what} state ({_short(exc)})"
                              ) from None
