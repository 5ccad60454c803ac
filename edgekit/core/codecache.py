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
import contextlib
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

    def __init__(self, path: Path, module: ModuleType | None = None) -> None:
        self.path = path
        self.module = module
        self._flags: int | None = None
        self.codes = _read(path)
        self.used: dict[_Key, tuple[CodeType, int | None]] = {}
        self.compiled = 0

    def attach(self, module: ModuleType) -> None:
        """Stand in for ``compile`` in `module` (a module global shadows the builtin)."""
        self.module = module
        module.compile = self  # type: ignore[attr-defined]

    @property
    def flags(self) -> int:
        """The ``__future__`` flags of the module's code, which its ``compile`` calls
        inherit: read at the first call, when the module's ``from __future__`` lines (they
        come first) have run, even if the cache was attached before the module ran."""
        if self._flags is None:
            self._flags = _future_flags(self.module) if self.module is not None else 0
        return self._flags

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


_GENERATED = "<attrs generated "


def _key(filename: str, source: str) -> tuple[_Key, int | None]:
    """The cache key of a generated script, and the per-process number it holds.

    attrs writes ``hash("<attrs generated hash <class>>")`` into a class's ``__hash__`` as
    a literal, and string hashes differ from process to process (PYTHONHASHSEED): the key
    has a placeholder where that number stands, and a hit gets the number of this
    process back into its constants (`_with_constant`). The script is named
    ``<attrs generated methods <class>>`` (all methods at once) or, for the classes attrs
    makes for itself, ``<attrs generated __hash__ <class>>``."""
    if filename.startswith(_GENERATED):
        _, _, cls = filename[len(_GENERATED):].partition(" ")
        number = hash(_GENERATED + "hash " + cls)
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


_INSTALLED: list[CodeCache] = []


class _BeforeAttrs:
    """A one-shot import hook (first on ``sys.meta_path`` until attrs' ``attr._make`` is
    found): that module gets the cache as its ``compile`` before it runs, so the classes
    attrs defines for itself while it is imported (``Attribute``, its validators, ...; 28
    compiles, a tenth of importing attrs) are served from the cache too. Only the one
    loader's ``exec_module`` is wrapped; the spec is the one the other finders give. A
    loader that cannot be wrapped gets the cache at the next import after it ran."""

    def __init__(self, cache: CodeCache) -> None:
        self.cache = cache
        self.waiting = False

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if self.waiting:
            loaded = sys.modules.get("attr._make")
            if loaded is not None:
                self._done()
                self.cache.attach(loaded)
            return None
        if name != "attr._make":
            return None
        self._done()
        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        loader = spec.loader if spec is not None else None
        run = getattr(loader, "exec_module", None)
        if run is not None:
            cache = self.cache

            def exec_module(module: ModuleType) -> None:
                cache.attach(module)
                run(module)

            with contextlib.suppress(AttributeError):  # a loader whose method is fixed
                loader.exec_module = exec_module  # type: ignore[union-attr]
                return spec
        self.waiting = True
        sys.meta_path.insert(0, self)
        return spec

    def _done(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def install() -> CodeCache | None:
    """Serve attrs' compiles from the cache (once per process); None when turned off.

    Before attrs is imported (``edgekit`` imports its core first), the cache is attached to
    ``attr._make`` as it loads (`_BeforeAttrs`); after, to the loaded module."""
    if os.environ.get("EDGEKIT_CODE_CACHE", "1") == "0":
        return None
    if _INSTALLED:
        return _INSTALLED[0]
    _make = sys.modules.get("attr._make")
    current = _make.__dict__.get("compile") if _make is not None else None
    if isinstance(current, CodeCache):
        return current
    cache = CodeCache(cache_file())
    if _make is None:
        sys.meta_path.insert(0, _BeforeAttrs(cache))
    else:
        cache.attach(_make)
    _INSTALLED.append(cache)
    atexit.register(cache.save)
    return cache
