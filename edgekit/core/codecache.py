"""A bytecode cache for the methods attrs writes for every class, outside the checkout.

attrs makes each class's ``__init__``, ``__eq__``, ``__repr__`` ... as Python source and
compiles it when the class is defined, in every process: for the ~70 attrs classes a
small stack's synth defines that is about a sixth of the whole run. Python caches the
bytecode of modules in ``__pycache__``; this does the same for that generated source. The
compiled code objects are kept in one marshal file per interpreter version under
``${XDG_CACHE_HOME:-~/.cache}/edgekit/code/``, keyed by the generated file name and source
themselves (a changed class is a different key, never a stale hit), loaded once per
process and written back, merged, at exit when something was compiled (ADR 0039).

Nothing here changes what attrs builds: a miss compiles exactly as attrs would (the same
source, file name and ``__future__`` flags). Like Python's own bytecode cache it is read
always and written unless ``PYTHONDONTWRITEBYTECODE`` is set; ``EDGEKIT_CODE_CACHE=0``
turns it off. An unreadable or foreign file is ignored, and a write is atomic (a temp file
renamed over it), so concurrent processes and other edgekit versions each see a whole file.
"""

from __future__ import annotations

import atexit
import builtins
import marshal
import os
import sys
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

MAX_ENTRIES = 2000
"""Entries kept when merging with the file on disk (about 70 per edgekit version)."""

_Key = tuple[str, str]  # (file name, source)


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgekit" / "code" / \
        f"attrs-{sys.implementation.cache_tag}-{sys.hexversion:x}.marshal"


def _read(path: Path) -> dict[_Key, tuple[CodeType, int | None]]:
    try:
        loaded = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {key: value for key, value in loaded.items()
            if isinstance(key, tuple) and len(key) == 2 and isinstance(value, tuple)
            and len(value) == 2 and isinstance(value[0], CodeType)
            and (value[1] is None or type(value[1]) is int)}


class CodeCache:
    """Stands in for ``compile`` inside one module (attrs' ``attr._make``)."""

    def __init__(self, path: Path, flags: int) -> None:
        self.path = path
        self.flags = flags
        self.codes = _read(path)
        self.used: dict[_Key, tuple[CodeType, int | None]] = {}
        self.compiled = 0

    def __call__(self, source: Any, filename: Any, mode: str, flags: int = 0,
                 dont_inherit: bool = False, optimize: int = -1, **kw: Any) -> Any:
        if not dont_inherit:
            flags |= self.flags  # what the module's own call would have inherited
        if flags != self.flags or optimize != -1 or kw or mode != "exec" \
                or type(source) is not str or type(filename) is not str:
            return builtins.compile(source, filename, mode, flags, True, optimize, **kw)
        key, number = _key(filename, source)
        found = self.codes.get(key)
        if found is None:
            found = (builtins.compile(source, filename, mode, flags, True), number)
            self.codes[key] = found
            self.compiled += 1
        self.used[key] = found
        code, cached_number = found
        if cached_number is not None and number is not None and cached_number != number:
            code = _with_constant(code, cached_number, number)
        return code

    def save(self) -> None:
        """Merge what this process compiled into the file; never raises."""
        if not self.compiled or sys.dont_write_bytecode:
            return
        try:
            merged = _read(self.path)
            merged.update(self.used)
            if len(merged) > MAX_ENTRIES:
                merged = dict(self.used)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            try:
                tmp.write_bytes(marshal.dumps(merged))
                os.replace(tmp, self.path)
            finally:
                tmp.unlink(missing_ok=True)
        except (OSError, ValueError):
            pass  # a cache: failing to write it costs the next run time, nothing else


_METHODS = "<attrs generated methods "


def _key(filename: str, source: str) -> tuple[_Key, int | None]:
    """The cache key of a generated script, and the per-process number it holds.

    attrs writes ``hash("<attrs generated hash <class>>")`` into a class's ``__hash__`` as
    a literal, and string hashes differ from process to process (PYTHONHASHSEED): the key
    has a placeholder where that number stands, and a hit gets the number of this
    process back into its constants (`_with_constant`)."""
    if filename.startswith(_METHODS):
        number = hash("<attrs generated hash " + filename[len(_METHODS):])
        text = str(number)
        if source.count(text) == 1:
            return (filename, source.replace(text, "{type_hash}")), number
    return (filename, source), None


def _with_constant(code: CodeType, old: int, new: int) -> CodeType:
    """`code` with the integer constant `old` replaced by `new`, in nested code too: what
    compiling the source with `new` written for `old` gives (the one difference: the end
    column of that constant's load, which cannot raise, so no traceback shows it)."""
    return code.replace(co_consts=tuple(
        _with_constant(const, old, new) if isinstance(const, CodeType)
        else new if type(const) is int and const == old else const
        for const in code.co_consts))


def _future_flags(module: ModuleType) -> int:
    """The ``__future__`` flags `module` was compiled with (what its ``compile`` calls
    inherit)."""
    import __future__

    flags = 0
    for name in __future__.all_feature_names:
        feature = module.__dict__.get(name)
        if isinstance(feature, __future__._Feature):
            flags |= feature.compiler_flag
    return flags


def install() -> CodeCache | None:
    """Serve attrs' compiles from the cache (once per process); None when turned off."""
    if os.environ.get("EDGEKIT_CODE_CACHE", "1") == "0":
        return None
    from attr import _make

    current = _make.__dict__.get("compile")
    if isinstance(current, CodeCache):
        return current
    cache = CodeCache(cache_file(), _future_flags(_make))
    _make.compile = cache  # type: ignore[attr-defined]  # a module global shadows the builtin
    atexit.register(cache.save)
    return cache
