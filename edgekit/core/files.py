"""Every write edgekit makes to disk goes through here: one atomic file write, and one
transaction that stages many files and folders and then swaps them all in.

* `write_atomic(path, data)` — a temp file beside `path`, fsynced, renamed over it;
  `publish(tmp, path)` the same last step for a file another program wrote (DuckDB);
  `sync_filesystem(path)` puts many written files on disk at once (before their renames).
* `Transaction` — stage files (`stage_file`) and whole folders (`stage_tree`), then
  `commit()`: folders are swapped in by an exchange rename (``renameat2`` with
  ``RENAME_EXCHANGE``), so there is never a moment without the folder; files are renamed
  over their targets, and if one rename fails the ones already done are put back. Until
  `commit`, nothing the user sees has changed; `abort` (or leaving the ``with`` block on an
  exception) removes everything staged.
* `overlay(files)` — while staged files are not committed yet, code that reads them
  (`read_bytes`) sees the staged bytes (synth reads CUE exports it just rendered).

Errors are `OutputError`s naming the path and what to do, never a bare errno.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from edgekit.core.errors import OutputError
from edgekit.core.gcpause import gc_paused

if TYPE_CHECKING:
    import ctypes

RENAME_EXCHANGE = 2
AT_FDCWD = -100
_OVERLAY: dict[Path, bytes] = {}
_generation = 0


def describe(err: OSError, path: Path) -> str:
    """An OSError as a sentence with a hint, for the cases users meet."""
    reason = err.strerror or str(err)
    hints = {
        errno.EROFS: "the file system is mounted read-only; write elsewhere (--out) or "
                     "remount it writable",
        errno.EACCES: "no permission; check the folder's owner and mode",
        errno.EPERM: "not permitted; check the folder's owner, mode and attributes",
        errno.ENOSPC: "the disk is full",
        errno.ENOTDIR: "a parent of it is a file, not a folder",
    }
    hint = hints.get(err.errno or 0)
    return f"cannot write {path}: {reason}" + (f"; {hint}" if hint else "")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (readers see the old or the new file)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise OutputError(describe(err, path)) from err
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise OutputError(describe(err, path)) from err
        raise


def publish(tmp: Path, path: Path) -> None:
    """Move a file another program wrote beside `path` (e.g. DuckDB's COPY) over it,
    atomically; the temp file never stays behind."""
    try:
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(describe(err, path)) from err


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library the interpreter runs with: its symbols are the process's own, so no
    search (`ctypes.util.find_library` runs ``ldconfig -p``, slower than a whole synth).
    ctypes is imported here, when a folder is first swapped, not with edgekit."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def can_sync_filesystem() -> bool:
    """Whether `sync_filesystem` exists here (Linux ``syncfs``)."""
    return getattr(_libc(), "syncfs", None) is not None


def sync_filesystem(path: Path) -> None:
    """Put every file written on the file system holding `path` on disk (``syncfs(2)``): one
    journal commit for many files where an fsync each costs one per file. Writes that other
    programs made on that file system are flushed too."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _libc().syncfs(fd) != 0:
            import ctypes

            code = ctypes.get_errno()
            raise OutputError(describe(OSError(code, os.strerror(code)), path))
    finally:
        os.close(fd)


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with renameat2(RENAME_EXCHANGE); False if unsupported."""
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    if result == 0:
        return True
    import ctypes

    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def check_folder_target(path: Path) -> None:
    """A folder edgekit replaces must be a real folder (or absent): never a file or a link."""
    if path.is_symlink():
        raise OutputError(
            f"{path} is a symlink (to {os.readlink(path)}); edgekit replaces the output "
            "folder as a whole and does not write through links: remove the link, or pass "
            "the real folder with --out")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path} exists and is not a folder; move it away or pass "
                          "another --out")


OUTPUT_MARKER = ".edgekit-output"
"""The file every output folder edgekit writes holds: its proof that the folder is
edgekit's to replace (ADR 0027)."""
MARKER_TEXT = (b"This folder is written by edgekit synth and replaced as a whole on every "
               b"synth:\nanything else put here is lost. Do not edit; keep it out of git.\n")
_SYNTH_LAYOUT = frozenset({"manifest.json", "stacks"})
"""What a synth wrote before the marker existed (and what `cdktf synth` writes)."""


def check_owned_output(path: Path) -> None:
    """Refuse to replace a folder edgekit does not own: only a new or empty folder, one
    holding edgekit's marker, or one holding nothing but a synth's layout is replaced.
    Nothing is deleted or changed when it is refused."""
    check_folder_target(path)
    try:
        names = sorted(os.listdir(path)) if path.is_dir() else []
    except OSError as err:
        raise OutputError(describe(err, path)) from err
    if not names or OUTPUT_MARKER in names or (
            set(names) <= _SYNTH_LAYOUT and (path / "manifest.json").is_file()):
        return
    shown = ", ".join(names[:5]) + (f", … ({len(names)} entries)" if len(names) > 5 else "")
    raise OutputError(
        f"refusing to write the output into {path}: it holds files edgekit did not write "
        f"({shown}) and no {OUTPUT_MARKER} marker. Synth replaces its output folder as a "
        "whole, so it writes only into a new or empty folder or one an earlier synth made; "
        "pass another --out (or CDKTF_OUTDIR). Nothing was changed")


def _new_folder_beside(target: Path) -> Path:
    """A fresh hidden folder beside `target`, with `target`'s mode if it exists, else the
    mode a plain mkdir gives (mkdtemp's 0700 would change the output folder's mode)."""
    for _ in range(100):
        folder = target.parent / f".{target.name}.new-{os.urandom(4).hex()}"
        try:
            os.mkdir(folder)
        except FileExistsError:
            continue
        if target.is_dir():
            os.chmod(folder, stat.S_IMODE(target.stat().st_mode))
        return folder
    raise FileExistsError(errno.EEXIST, "no free staging name", str(target))


def swap_in(staging: Path, target: Path) -> None:
    """Put folder `staging` at `target`; the old folder, if any, is removed afterwards."""
    if not target.exists():
        os.rename(staging, target)
        return
    if exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(retired)
    os.rename(target, retired)  # fallback: two renames (a moment without `target`)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


Chunk = bytes | memoryview
"""A piece of a file as it is written: bytes, or a view of a larger output (not copied)."""


class LazyFiles(Mapping[str, bytes]):
    """Relative path → bytes, each file rendered from its maker only when it is read and
    not kept: a folder of large files is staged one file (one piece) at a time.

    A file is given as its bytes or as a maker returning its bytes or its pieces in order
    (`chunks` hands them to the writer as they come; reading it through the mapping joins
    them).
    """

    def __init__(self) -> None:
        self._makers: dict[str, bytes | Callable[[], bytes | Iterable[Chunk]]] = {}

    def add(self, rel: str, made: bytes | Callable[[], bytes | Iterable[Chunk]]) -> None:
        self._makers[rel] = made

    def chunks(self, rel: str) -> Iterable[Chunk]:
        given = self._makers[rel]
        made = given if isinstance(given, bytes) else given()
        return (made,) if isinstance(made, bytes) else made

    def __getitem__(self, rel: str) -> bytes:
        return b"".join(self.chunks(rel))

    def __iter__(self) -> Iterator[str]:
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)


def _write_pieces(path: Path, pieces: Iterable[Chunk]) -> None:
    with open(path, "wb") as handle:
        for piece in pieces:
            handle.write(piece)


class Transaction:
    """Stage files and folders, then swap them all in (see the module docstring)."""

    def __init__(self) -> None:
        self._files: list[tuple[Path, Path]] = []  # (staged temp, target)
        self._trees: list[tuple[Path, Path]] = []
        self._deletes: list[Path] = []
        self.targets: list[Path] = []

    def stage_delete(self, path: Path) -> None:
        """Remove `path` at commit (put back if the commit fails)."""
        self._deletes.append(path)
        self.targets.append(path)

    def stage_file(self, path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new",
                                       dir=path.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            raise OutputError(describe(err, path)) from err
        self._files.append((Path(tmp), path))
        self.targets.append(path)

    @gc_paused  # a LazyFiles renders a large stack's files here
    def stage_tree(self, target: Path, files: Mapping[str, bytes],
                   keep: Mapping[str, Path] = {}) -> None:
        """Stage an output folder holding exactly `files` and the marker, plus `keep`
        folders copied in unchanged; the files of a `LazyFiles` are rendered one by one as
        they are written. A `target` edgekit does not own is refused (`check_owned_output`);
        the new folder gets the old one's mode (a new one: the umask's)."""
        target = target.absolute()
        check_owned_output(target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = _new_folder_beside(target)
        except OSError as err:
            raise OutputError(f"cannot write output folder {target}: "
                              f"{describe(err, target.parent)}") from err
        self._trees.append((staging, target))
        try:
            (staging / OUTPUT_MARKER).write_bytes(MARKER_TEXT)
            for rel, source in sorted(keep.items()):
                shutil.copytree(source, staging / rel)
            for rel in sorted(files):  # a LazyFiles renders each file only now
                path = staging / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_pieces(path, files.chunks(rel) if isinstance(files, LazyFiles)
                              else (files[rel],))
        except OSError as err:
            raise OutputError(f"cannot write output folder {target}: "
                              f"{describe(err, staging)}") from err
        self.targets.append(target)

    def commit(self) -> None:
        done: list[tuple[Path, Path | None]] = []  # (target, backup of the old file)
        pending: Path | None = None  # a backup made for a replace that has not happened yet
        try:
            for tmp, target in self._files:
                backup = None
                if target.exists():
                    backup = pending = target.with_name(f".{target.name}.{os.getpid()}.bak")
                    os.link(target, backup)
                os.replace(tmp, target)
                done.append((target, backup))
                pending = None
            for target in self._deletes:
                if target.exists():
                    backup = target.with_name(f".{target.name}.{os.getpid()}.bak")
                    os.replace(target, backup)
                    done.append((target, backup))
            for staging, target in self._trees:
                swap_in(staging, target)
        except OSError as err:
            if pending is not None:
                pending.unlink(missing_ok=True)
            for target, backup in reversed(done):  # put the old files back
                if backup is not None:
                    os.replace(backup, target)
                else:
                    target.unlink(missing_ok=True)
            self.abort()
            raise OutputError(f"nothing was changed: {describe(err, Path(err.filename or '?'))}"
                              ) from err
        for _, backup in done:
            if backup is not None:
                backup.unlink(missing_ok=True)
        self._files, self._trees, self._deletes = [], [], []

    def abort(self) -> None:
        for tmp, _ in self._files:
            tmp.unlink(missing_ok=True)
        for staging, _ in self._trees:
            shutil.rmtree(staging, ignore_errors=True)
        self._files, self._trees, self._deletes = [], [], []

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is not None:
            self.abort()


@contextlib.contextmanager
def overlay(files: Mapping[Path, bytes]) -> Iterator[None]:
    """While active, `read_bytes` of these paths returns the given bytes (staged, unwritten)."""
    global _generation
    saved = dict(_OVERLAY)
    _OVERLAY.update({p.absolute(): data for p, data in files.items()})
    _generation += 1
    try:
        yield
    finally:
        _OVERLAY.clear()
        _OVERLAY.update(saved)
        _generation += 1


def generation() -> int:
    """Changes whenever the overlay does (part of cache keys of what is read through it)."""
    return _generation


def read_bytes(path: Path) -> bytes:
    staged = _OVERLAY.get(path.absolute())
    return staged if staged is not None else path.read_bytes()


def exists(path: Path) -> bool:
    return path.absolute() in _OVERLAY or path.is_file()


def staged_in(folder: Path, suffix: str) -> list[Path]:
    """Overlay paths directly in `folder` ending in `suffix` (files not written yet)."""
    folder = folder.absolute()
    return [p for p in _OVERLAY if p.parent == folder and p.name.endswith(suffix)]
