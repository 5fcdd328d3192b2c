"""Run directories that cannot be corrupted: one writer, checked outputs, atomic files.

A run directory has exactly one writer at a time. :func:`lock` takes an exclusive
``flock`` on ``DIR/.lock`` (the ``filelock`` package) for the whole command; a second
``train``/``resume`` into the same directory is refused at once with one line naming the
holder (pid, host, command, start time, read from ``DIR/.lock.owner``). The kernel drops
the lock when its process dies, however it dies, so a stale lock (SIGKILL, power loss,
a crashed node) never blocks: the owner file of a dead holder is simply overwritten.

Before any work, :func:`prepare` checks the output path (not a file, creatable, writable)
and who owns what is in it (:func:`fem.cache.claim_output`: ``DIR/.neurofem`` records the
command that made the directory); another command's directory (e.g. a ``fem solve``
output) is refused rather than silently overwritten. Every file
is written by :func:`fem.cache.atomic_write` (unique temporary name, fsync, rename, group
permissions from the umask). Under MPI rank 0 checks and locks, and every rank raises the
same error (one line, exit 2 on every rank count).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import filelock

from coupling.training.checkpoint import CheckpointError
from fem.cache import OWNER, OutputError, atomic_write, claim_output, file_mode

#: the resolved run config every run directory holds
CONFIG = "config.toml"

LOCK, LOCK_OWNER = ".lock", ".lock.owner"


class RunDirError(CheckpointError):
    """A run directory that cannot be used: locked, foreign, not writable."""


def prepare(path: str | os.PathLike, command: str, flag: str = "--out",
            allow: tuple[str, ...] = (), claim: bool = True) -> Path:
    """Check that `path` can hold `command`'s outputs; create it and claim it (rank 0)."""
    try:
        return claim_output(path, command, flag, allow, claim)
    except OutputError as exc:
        raise RunDirError(str(exc)) from None


def _holder(path: Path) -> str:
    """Who holds the lock of `path`, as far as its owner file says."""
    try:
        info = json.loads((path / LOCK_OWNER).read_text())
        return (f"pid {info['pid']} on {info['host']} ({info['command']}, since "
                f"{info['since']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def lock(path: str | os.PathLike, command: str = "train") -> Iterator[Path]:
    """Hold the exclusive lock of run directory `path` (refused at once if it is held)."""

    path = Path(path)
    flock = filelock.FileLock(path / LOCK, timeout=0, mode=file_mode())
    try:
        flock.acquire()
    except filelock.Timeout:
        raise RunDirError(f"{path} is in use by {_holder(path)}; wait for it to finish or "
                          "choose another --out") from None
    except OSError as exc:
        raise RunDirError(f"{path}: cannot lock ({exc.strerror or exc})") from None
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        atomic_write(path / LOCK_OWNER, json.dumps(info).encode())
        yield path
    finally:
        with contextlib.suppress(OSError):
            (path / LOCK_OWNER).unlink()
        flock.release()


@contextlib.contextmanager
def claimed(path: str | os.PathLike, command: str, comm, allow: tuple[str, ...] = ()
            ) -> Iterator[Path]:
    """prepare + lock on rank 0 of `comm`; every rank raises the same error (collective)."""
    error, stack, new = None, contextlib.ExitStack(), not Path(path).exists()
    if comm.rank == 0:
        try:
            prepare(path, command, allow=allow, claim=False)
            stack.enter_context(lock(path, command))
            prepare(path, command, allow=allow)  # the owner file, once the lock is ours
        except RunDirError as exc:
            stack.close()
            error = str(exc)
    error = comm.bcast(error, root=0)
    if error is not None:
        raise RunDirError(error)
    try:
        with stack:
            yield Path(path)
    except BaseException:
        if comm.rank == 0 and new:  # a run that never started leaves no empty directory
            _remove_if_unused(Path(path))
        raise


def _remove_if_unused(path: Path) -> None:
    """Delete `path` if it holds nothing but the claim and lock files."""
    with contextlib.suppress(OSError):
        if {p.name for p in path.iterdir()} <= {OWNER, LOCK, LOCK_OWNER}:
            for name in (OWNER, LOCK, LOCK_OWNER):
                (path / name).unlink(missing_ok=True)
            path.rmdir()
