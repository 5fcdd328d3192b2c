"""The checkpoints of a run directory: which one a run continues from, and keeping the newest.

``ckpt-<step>.pt`` files (:mod:`coupling.training.checkpoint`: the format, its checksum and
the checks on load) and a ``latest`` pointer naming the newest. A resume takes the newest
checkpoint of the same config, falling back past damaged ones with one
``neurofem: warning:`` line each; :func:`check_resume` refuses a resume before anything in
the run directory changes; :class:`CheckpointManager` writes them and keeps the newest k.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coupling.training.checkpoint import (
    atomic_write,
    check_hash,
    config_hash,
    read_checkpoint,
    save_checkpoint,
)
from coupling.training.errors import CheckpointError

LATEST = "latest"
PATTERN = re.compile(r"^ckpt-(\d+)\.pt$")


def checkpoint_name(step: int) -> str:
    """File name of the checkpoint taken after `step` steps."""
    return f"ckpt-{step:09d}.pt"


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoint files in run_dir, oldest first."""
    run_dir = Path(run_dir)
    found = []
    for p in run_dir.iterdir() if run_dir.is_dir() else []:
        m = PATTERN.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_pointer(run_dir: str | os.PathLike) -> Path | None:
    """The checkpoint that run_dir/latest names, or None without a (valid) pointer."""
    pointer = Path(run_dir) / LATEST
    try:
        name = pointer.read_bytes()[:256].decode("utf-8").strip()
    except OSError:
        return None
    except UnicodeDecodeError:  # damaged: the checkpoints themselves are tried newest first
        note(f"{pointer}: not UTF-8 text, ignored (trying the checkpoints newest first)")
        return None
    return Path(run_dir) / name if PATTERN.match(name) else None


def _quiet_pointer(run_dir: str | os.PathLike) -> Path | None:
    """latest_pointer without its note (ranks other than 0)."""
    try:
        name = (Path(run_dir) / LATEST).read_bytes()[:256].decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return Path(run_dir) / name if PATTERN.match(name) else None


_REPORTED: set[tuple[str, int, int]] = set()


def _first_report(path: Path) -> bool:
    """True the first time this process skips this version of `path` (one line per file)."""
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        return True
    if key in _REPORTED:
        return False
    _REPORTED.add(key)
    return True


def note(message: str) -> None:
    """One ``neurofem: warning:`` line on stderr (not a two-line Python warning)."""
    print(f"neurofem: warning: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def find_latest_checkpoint(
    run_dir: str | os.PathLike, config_hash: str | None = None, *, comm=None
) -> tuple[Path, dict[str, Any]] | None:
    """The newest loadable checkpoint of run_dir and its contents; None if there is none.

    Tries the `latest` pointer, then the others newest first, skipping (with one
    ``neurofem: warning:`` line each, on rank 0) unreadable or damaged ones. A readable
    checkpoint of another config raises CheckpointError.
    """
    candidates = [p for _, p in reversed(list_checkpoints(run_dir))]
    writer = comm is None or comm.rank == 0
    pointed = latest_pointer(run_dir) if writer else _quiet_pointer(run_dir)
    if pointed is not None and pointed in candidates:
        candidates.remove(pointed)
        candidates.insert(0, pointed)
    for path in candidates:
        try:
            payload = read_checkpoint(path)
        except CheckpointError as exc:
            if writer and _first_report(path):
                note(f"skipping {exc}")
            continue
        check_hash(path, payload, config_hash)
        return path, payload
    return None


def check_steps(path: Path, done: int, steps: int) -> None:
    """Refuse to resume to `steps` below the `done` steps of checkpoint `path` (one line)."""
    if steps < done:
        raise CheckpointError(f"training.steps = {steps} is below the {done} steps this run has "
                              f"done ({Path(path).name}); resume with --steps {done} or more")


def check_resume(run_dir: str | os.PathLike, config: Mapping[str, Any], comm=None) -> int:
    """Before a resume changes anything in `run_dir` (its config.toml included): the step of
    the checkpoint it will continue from; CheckpointError (one line, every rank) if there is
    none, it is of another config, or ``training.steps`` is below its step.

    `config` is the resolved config the resume would run (``parse_config(doc).resolved()``).
    Rank 0 reads; collective when `comm` is given.
    """
    error, done = None, None
    if comm is None or comm.rank == 0:
        try:
            found = find_latest_checkpoint(run_dir, config_hash(config))
            if found is None:
                raise CheckpointError(f"{run_dir}: no checkpoint to resume from")
            done = int(found[1]["step"])
            steps = (config.get("training") or {}).get("steps")
            if isinstance(steps, int) and not isinstance(steps, bool):
                check_steps(found[0], done, steps)
        except CheckpointError as exc:
            error = str(exc)
    if comm is not None:
        error, done = comm.bcast((error, done), root=0)
    if error is not None:
        raise CheckpointError(error)
    return done


@dataclass
class CheckpointManager:
    """Periodic checkpoints in a run directory: keep the newest `keep`, point `latest` at one."""

    run_dir: Path
    config_hash: str
    keep: int = 3
    comm: Any = None

    def __post_init__(self):
        self.run_dir = Path(self.run_dir)
        if self.keep < 1:
            raise CheckpointError(f"keep_checkpoints must be >= 1, got {self.keep}")

    @property
    def is_writer(self) -> bool:
        return self.comm is None or self.comm.rank == 0

    def save(self, step: int, *, model, optimizer, scheduler=None, metadata=None) -> Path | None:
        """Checkpoint after `step` steps, move `latest` to it, drop the oldest beyond `keep`."""
        if not self.is_writer:
            return None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = save_checkpoint(
            self.run_dir / checkpoint_name(step),
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            step=step,
            config_hash=self.config_hash,
            metadata=metadata,
        )
        atomic_write(self.run_dir / LATEST, lambda f: f.write(f"{path.name}\n".encode()))
        # Never prune the file just written (a resumed run may write a lower step than
        # stale files of the interrupted timeline).
        others = [p for _, p in list_checkpoints(self.run_dir) if p != path]
        for old in others[: max(0, len(others) - (self.keep - 1))]:
            old.unlink(missing_ok=True)
        for pattern in (".ckpt-*.pt.*.tmp", f".{LATEST}.*.tmp"):  # left by a killed writer
            for stale in self.run_dir.glob(pattern):
                stale.unlink(missing_ok=True)
        return path

    def latest(self) -> tuple[Path, dict[str, Any]] | None:
        """The newest loadable checkpoint of this run (see find_latest_checkpoint)."""
        return find_latest_checkpoint(self.run_dir, self.config_hash, comm=self.comm)
