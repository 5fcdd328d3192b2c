"""What happens around :func:`coupling.fit`: metrics file, checkpoints/resume, progress bar.

A run directory (``neurofem train``, or a script passing these to ``fit``) holds
``metrics.jsonl`` (one JSON record per logging step, written by :class:`MetricsLog`) and
``ckpt-*.pt`` + ``latest`` (:class:`Checkpoints`; atomic, weights-only loads). Rank 0
alone writes; every rank takes part in a resume (each loads the same checkpoint).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tqdm import tqdm

from coupling.training.checkpoint import CheckpointError, atomic_write, load_checkpoint
from coupling.training.resume import CheckpointManager, check_steps, note
from coupling.training.state import Callback, FitResult, FitState
from fem.cache import file_mode

METRICS = "metrics.jsonl"


def read_metrics(path: str | os.PathLike, repair: bool = False) -> list[dict]:
    """The records of a metrics.jsonl file. A torn last line (a killed writer) is skipped;
    a damaged line elsewhere is a one-line CheckpointError, or with `repair` skipped with
    a warning (what a resume does before it rewrites the file)."""
    path = Path(path)
    records = []
    try:
        lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CheckpointError(f"{path}: unreadable ({exc.strerror or exc})") from None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                raise ValueError("not a metrics record")
        except ValueError:
            if i == len(lines) - 1:  # only the last line can be half-written
                break
            if not repair:
                raise CheckpointError(f"{path} line {i + 1}: not a metrics record (damaged "
                                      "file; `neurofem resume` repairs it)") from None
            note(f"{path} line {i + 1}: damaged record dropped")  # one line, not a warning
            continue
        records.append(record)
    return records


def truncate_metrics(path: Path, step: int) -> None:
    """Keep the records up to `step` (a resumed run re-logs what came after), atomically;
    a torn or damaged line is dropped (the repair of a killed writer's file)."""
    keep = [r for r in read_metrics(path, repair=True) if r["step"] <= step]
    atomic_write(path, lambda f: f.write("".join(json.dumps(r) + "\n" for r in keep).encode()))


class MetricsLog(Callback):
    """Rank 0 appends each logging step's record to run_dir/metrics.jsonl."""

    def __init__(self, run_dir: str | os.PathLike, resume: bool = False) -> None:
        self.path = Path(run_dir) / METRICS
        self.resume = resume

    def on_start(self, state: FitState) -> None:
        if state.comm.rank != 0:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.resume:  # records past the checkpoint belong to the lost part of the run
            truncate_metrics(self.path, state.step)
        else:  # a fresh run starts a fresh log
            atomic_write(self.path, lambda f: None)

    def on_log(self, state: FitState, record: dict) -> None:
        if state.comm.rank == 0:
            try:  # one write of a whole line: a kill leaves at most a torn last line
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
                             file_mode())  # never appended through a planted link
                with os.fdopen(fd, "a") as fh:
                    fh.write(json.dumps(record) + "\n")
            except OSError as exc:  # disk full: name the file (ELOOP: a link)
                raise OSError(exc.errno, exc.strerror or str(exc), str(self.path)) from None


class Checkpoints(Callback):
    """Checkpoint every `every` steps, at the end and on a signal; resume from the latest.

    Put it *before* :class:`MetricsLog` in the callback list when resuming, so the metrics
    are truncated at the restored step. In a coarse-to-fine hierarchy (:class:`coupling.Levels`)
    each checkpoint's metadata holds its ``level`` and ``level_step``, and a resume first
    moves the loop into the level that wrote the checkpoint.
    """

    def __init__(self, run_dir: str | os.PathLike, config_hash: str, *, keep: int = 3,
                 resume: bool = False) -> None:
        self.run_dir, self.hash, self.keep, self.resume = Path(run_dir), config_hash, keep, resume

    def on_start(self, state: FitState) -> None:
        self.manager = CheckpointManager(self.run_dir, self.hash, keep=self.keep,
                                         comm=state.comm)
        if not self.resume:
            return
        found = self.manager.latest()
        if found is None:
            raise CheckpointError(f"{self.run_dir}: no checkpoint to resume from")
        check_steps(found[0], int(found[1]["step"]), state.steps)  # before anything changes
        if hasattr(state, "restore"):  # a hierarchy (Levels): into the checkpoint's level
            state.restore(int(found[1]["step"]), found[1].get("metadata", {}))
        payload = load_checkpoint(found[0], self.hash, model=state.net,
                                  optimizer=state.optimizer, scheduler=state.scheduler)
        state.step = state.last_checkpoint = int(payload["step"])
        wall = payload.get("metadata", {}).get("wall_s", 0.0)
        state.wall_offset = float(wall) if isinstance(wall, int | float) else 0.0

    def on_checkpoint(self, state: FitState, stopped: bool) -> None:
        tags = state.checkpoint_tags() if hasattr(state, "checkpoint_tags") else {}
        self.manager.save(state.step, model=state.net, optimizer=state.optimizer,
                          scheduler=state.scheduler, metadata={"wall_s": state.wall_s, **tags})
        state.comm.barrier()
        state.last_checkpoint = state.step


class Progress(Callback):
    """A tqdm bar on rank 0 with the latest loss, error and activity."""

    def on_start(self, state: FitState) -> None:
        self.bar = None
        if state.comm.rank == 0:
            self.bar = tqdm(total=state.steps, initial=state.step, desc="train", unit="step",
                            dynamic_ncols=True, mininterval=0.5)

    def on_step(self, state: FitState, values: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def on_log(self, state: FitState, record: dict) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(postfix(record))

    def on_end(self, state: FitState, result: FitResult) -> None:
        if self.bar is not None:
            self.bar.close()


def postfix(record: dict) -> str:
    """A short loss / error / activity summary of a metrics record."""
    parts = [f"loss={record['loss']:.4g}"]
    if record.get("rel_l2") is not None:
        parts.append(f"rel_l2={record['rel_l2']:.3g}")
    if "activity" in record:
        parts.append(f"act={record['activity']['mean']:.2f}")
    return " ".join(parts)
