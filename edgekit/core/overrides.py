"""The one escape hatch: set a value deep inside a rendered body by a dotted path.

``override("lifecycle.ignore_changes", ["image"])`` or ``override("network.0.ip", "10.0.0.5")``.
A numeric part indexes a list; missing dicts along the way are created. Setting
`DELETE` removes the key.
"""

from __future__ import annotations

from typing import Any, Final


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


DELETE: Final = _Delete()
"""Pass as the value of an override to remove the key."""


def split_path(path: str) -> list[str]:
    if not path or any(part == "" for part in path.split(".")):
        raise ValueError(f"invalid override path {path!r}: expected dotted keys like 'a.b.c'")
    return path.split(".")


def apply_override(body: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with `DELETE` remove) `path` in `body`, creating dicts on the way."""
    parts = split_path(path)
    target: Any = body
    for i, part in enumerate(parts[:-1]):
        if isinstance(target, list):
            target = target[_index(target, part, parts[: i + 1])]
            continue
        nxt = target.get(part)
        if not isinstance(nxt, dict | list):
            nxt = {}
            target[part] = nxt
        target = nxt
    last = parts[-1]
    if isinstance(target, list):
        idx = _index(target, last, parts)
        if value is DELETE:
            del target[idx]
        else:
            target[idx] = value
    elif value is DELETE:
        target.pop(last, None)
    else:
        target[last] = value


def _index(items: list[Any], part: str, where: list[str]) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise ValueError(
            f"override path {'.'.join(where)!r}: {part!r} is not an index of a list "
            f"of {len(items)} items"
        )
    return int(part)
