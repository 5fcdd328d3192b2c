"""A content-addressed cache of meshes and FEM references, and the atomic-file helpers.

Entries live in a user cache folder, ``platformdirs.user_cache_dir("neurofem")``
(``~/.cache/neurofem`` on Linux), overridden by the ``NEUROFEM_CACHE`` environment
variable or a command line's ``--cache DIR`` (:func:`use`); ``off`` (or ``0``, ``none``)
turns the cache off. An entry is a folder ``<root>/<namespace>/<key>/`` where ``key`` is a
SHA-256 of the canonical JSON of what determines the content (the resolved mesh options,
plus the problem table for references) and the versions of neurofem, DOLFINx and Gmsh:
any change of the config or of the software is a different key (a miss), never a stale hit.

Safe under concurrent use: a writer fills a uniquely named temporary folder, writes a
``manifest.json`` with the SHA-256 of every file last, and renames the folder into place
(atomic on POSIX; if another process won the race, its entry is kept and ours dropped).
A reader verifies every checksum before use; a damaged or half-deleted entry is a miss,
moved aside and rebuilt. The cache never fails a run: an unwritable folder or a full disk
costs a warning and a rebuild next time.

Every file neurofem writes goes through :func:`atomic_write`: a unique temporary name in
the target's folder, fsync, ``os.replace``, and permissions from the umask (a run shared
with a group stays readable by the group; ``mkstemp`` alone would leave 0600 files); a
failed write (disk full) raises an ``OSError`` naming the target, never the temp file.
:func:`claim_output` checks an output folder before any work (see coupling.training.rundir).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import platformdirs

from .errors import FemError

ENV = "NEUROFEM_CACHE"
OFF = ("off", "0", "none", "false", "no")
MANIFEST = "manifest.json"
FORMAT = "neurofem-cache/1"
OWNER = ".neurofem"  # {"command": ...}: which command's outputs a directory holds
# Files that identify a directory as a command's output when it has no OWNER file.
FOREIGN = {"fem solve": ("field.npz", "summary.json"), "train": ("config.toml", "metrics.jsonl")}
_root_override: str | None = None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()


def file_mode() -> int:
    """Permissions of a new file under the process umask (what ``open(path, "w")`` gives)."""
    return 0o666 & ~UMASK


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None] | bytes) -> Path:
    """Write `path` through a unique temp file (write(fileobj) or bytes), fsync, rename.

    A `path` that is a symbolic link is refused (OSError ELOOP naming it, the O_NOFOLLOW
    rule): a link planted in a run directory must not redirect an output elsewhere.
    """
    path = Path(path)
    if path.is_symlink():
        raise OSError(errno.ELOOP, "is a symbolic link: refusing to write through it "
                      "(remove it)", str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            if isinstance(write, bytes | bytearray):
                f.write(write)
            else:
                write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # disk full, quota, I/O error: name the file, not a temp name
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make renames in `directory` durable (best effort where the OS refuses)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: str | os.PathLike, extra: dict | None = None,
                   names: tuple[str, ...] | None = None) -> Path:
    """Record the SHA-256 of `names` (default: every file in `folder`) in manifest.json."""
    folder = Path(folder)
    paths = ([folder / n for n in names] if names is not None else
             [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST
              and not p.name.endswith(".tmp")])
    files = {str(p.relative_to(folder)): sha256_file(p) for p in paths}
    doc = {"format": FORMAT, "files": files, **(extra or {})}
    return atomic_write(folder / MANIFEST, json.dumps(doc, indent=1, sort_keys=True).encode())


def verify(folder: str | os.PathLike, required: tuple[str, ...] = ()) -> str | None:
    """None if `folder` is intact (manifest present, every checksum right), else why not."""
    folder = Path(folder)
    try:
        doc = json.loads((folder / MANIFEST).read_text())
        files = doc["files"]
        if doc.get("format") != FORMAT or not isinstance(files, dict):
            return "manifest of an unknown format"
    except FileNotFoundError:
        return "no manifest"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable manifest ({type(exc).__name__})"
    for name in required:
        if name not in files:
            return f"{name} missing from the manifest"
    for name, digest in files.items():
        try:
            if sha256_file(folder / name) != digest:
                return f"{name}: checksum mismatch"
        except OSError:
            return f"{name}: missing"
    return None


def versions() -> dict[str, str]:
    """The software versions a cache key includes."""

    out = {}
    for dist in ("neurofem", "fenics-dolfinx", "dolfinx-solver-real", "gmsh"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    with contextlib.suppress(ImportError):
        import dolfinx  # deferred: loads DOLFINx

        out["dolfinx"] = dolfinx.__version__
    return out


def key_of(namespace: str, doc: Any) -> str:
    """The hex key of an entry: SHA-256 of the canonical JSON of (namespace, doc, versions)."""
    blob = json.dumps({"namespace": namespace, "doc": doc, "versions": versions()},
                      sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def use(root: str | os.PathLike | None) -> None:
    """Set this process's cache folder (a command line's ``--cache``; "off" disables it)."""
    global _root_override
    _root_override = None if root is None else str(root)


def cache_root() -> Path | None:
    """The cache folder in use (None when the cache is off)."""
    value = _root_override if _root_override is not None else os.environ.get(ENV)
    if value is not None and value.strip().lower() in (*OFF, ""):
        return None
    if value:
        return Path(value).expanduser()

    return Path(platformdirs.user_cache_dir("neurofem"))


class Store:
    """A content-addressed folder store: ``get`` verified folders, ``put`` them atomically."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def folder(self, namespace: str, doc: Any) -> Path:
        """Where the entry of `doc` lives (whether or not it exists)."""
        return self.root / namespace / key_of(namespace, doc)

    def get(self, namespace: str, doc: Any, required: tuple[str, ...] = ()) -> Path | None:
        """The verified entry folder of `doc`, or None (a damaged entry is moved aside)."""
        folder = self.folder(namespace, doc)
        if not folder.is_dir():
            return None
        why = verify(folder, required)
        if why is None:
            return folder
        warnings.warn(f"cache entry {folder} is damaged ({why}); rebuilding it",
                      RuntimeWarning, stacklevel=2)
        self._discard(folder)
        return None

    def put(self, namespace: str, doc: Any, write: Callable[[Path], None]) -> Path | None:
        """Fill a new entry by write(tmp_folder); publish it atomically. None if impossible."""
        final = self.folder(namespace, doc)
        tmp = final.parent / f".{final.name}.{uuid.uuid4().hex}.tmp"
        try:
            tmp.mkdir(parents=True, mode=0o777)
            write(tmp)
            write_manifest(tmp, {"namespace": namespace, "key": doc})
            try:
                os.rename(tmp, final)
            except OSError:  # another process published first (or a damaged one sits there)
                if self.get(namespace, doc) is None:
                    self._discard(final)
                    os.rename(tmp, final)
            fsync_dir(final.parent)
            return final
        except OSError as exc:
            warnings.warn(f"cache {self.root}: cannot store an entry ({exc.strerror or exc}); "
                          "continuing without it", RuntimeWarning, stacklevel=2)
            return None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def _discard(folder: Path) -> None:
        """Move a folder aside (one rename, atomic for readers) and delete it."""
        aside = folder.parent / f".{folder.name}.{uuid.uuid4().hex}.bad"
        with contextlib.suppress(OSError):
            os.rename(folder, aside)
        shutil.rmtree(aside, ignore_errors=True)


def default_store() -> Store | None:
    """The Store at :func:`cache_root`, or None when the cache is off."""
    root = cache_root()
    return None if root is None else Store(root)


class OutputError(FemError):
    """An output path that cannot be used (a file, not writable, another command's)."""


def owner(path: str | os.PathLike) -> str | None:
    """The command that made directory `path` (its OWNER file, else guessed from its files)."""
    path = Path(path)
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return str(json.loads((path / OWNER).read_text())["command"])
    for command, names in FOREIGN.items():
        if (path / names[0]).exists():
            return command
    return None


def check_folder(path: str | os.PathLike, flag: str = "--out") -> None:
    """`path` is a directory or can be created as one, writably (OutputError otherwise)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path}: exists and is not a directory")
    parent = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {path}: {parent} is not a writable directory")


def check_no_links(root: str | os.PathLike, label: str = "") -> Path:
    """Before writing into directory `root`: refuse (OutputError naming the file) a
    symbolic link anywhere under it, or a regular file hard-linked elsewhere.

    Writing a report, a figure or a field through either would change a file outside
    `root` (``report.html -> ~/.bashrc``). neurofem never makes links, so any link in an
    output directory was planted; `root` itself may be a link (the user's choice) and is
    resolved once. Returns the resolved root.
    """
    prefix = f"{label}: " if label else ""
    base = Path(root)
    resolved = base.resolve()
    stack = [resolved]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise OutputError(f"{prefix}{folder}: cannot list ({exc.strerror or exc})") from None
        for entry in entries:
            shown = base / Path(entry.path).relative_to(resolved)
            if entry.is_symlink():
                target = os.readlink(entry.path)
                raise OutputError(f"{prefix}{shown} is a symbolic link (to {target}): refusing "
                                  "to write through it; remove it")
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                if entry.stat(follow_symlinks=False).st_nlink > 1:
                    raise OutputError(f"{prefix}{shown} is hard-linked to another file: "
                                      "refusing to write through it; remove it")
    return resolved


def check_inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """`path` if it resolves inside directory `root` and is not a link (OutputError)."""
    path = Path(path)
    inside = Path(os.path.realpath(path))
    base = Path(os.path.realpath(root))
    if path.is_symlink() or (inside != base and base not in inside.parents):
        raise OutputError(f"{path}: resolves to {inside}, outside {root}: refusing to write "
                          "there")
    return path


def claim_output(path: str | os.PathLike, command: str, flag: str = "--out",
                 allow: tuple[str, ...] = (), claim: bool = True) -> Path:
    """Before any work: check `path` can take `command`'s outputs, create it and (with
    `claim`) record `command` as its owner."""
    path = Path(path)
    check_folder(path, flag)
    found = owner(path) if path.is_dir() else None
    if found is not None and found != command and found not in allow:
        raise OutputError(f"{flag} {path}: holds the outputs of `neurofem {found}`; "
                          "choose another directory")
    if path.is_dir():
        check_no_links(path, flag)  # outputs land in it: none may be redirected elsewhere
    try:
        path.mkdir(parents=True, exist_ok=True)
        if found is None and claim:
            atomic_write(path / OWNER, json.dumps({"command": command}).encode())
    except OSError as exc:
        raise OutputError(f"{flag} {path}: {exc.strerror or exc}") from None
    return path
