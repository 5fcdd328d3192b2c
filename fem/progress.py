"""Progress of the long legitimate phases (a transient reference's time loop, the FEM
references of many parameter points): a tqdm bar on rank 0, at a terminal only.

Loops shorter than `minimum` stay silent, and so does output that is not a terminal (logs,
pipes, the test suite), where a bar would only interleave with the one-line messages.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any

from tqdm import tqdm


def progress(items: Iterable[Any], total: int, desc: str, comm, minimum: int = 200,
             file: IO[str] | None = None) -> Iterator[Any] | Iterable[Any]:
    """`items` with a bar on rank 0 when there are at least `minimum` of them and `file`
    (default stderr) is a terminal."""
    out = file or sys.stderr
    if comm.rank != 0 or total < minimum or not out.isatty():
        return items
    return tqdm(items, total=total, desc=desc, file=out, leave=False, mininterval=1.0,
                dynamic_ncols=True)
