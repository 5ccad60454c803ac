"""The one escape hatch: set a value deep inside a rendered body by a dotted path.

``override("lifecycle.ignore_changes", ["image"])`` or ``override("network.0.ip", "10.0.0.5")``.
A numeric part indexes a list; missing dicts along the way are created. Setting
`DELETE` removes the key.
"""

from __future__ import annotations

import copy
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


def apply_override(body: dict[str, Any], path: str, value: Any, *,
                   copy_on_write: bool = False) -> None:
    """Set (or with `DELETE` remove) `path` in `body`, creating dicts on the way.

    With `copy_on_write`, every container below `body` on the way is replaced by a
    shallow copy first, so data `body` shares with others is left as it was.
    """
    parts = split_path(path)
    target: Any = body
    for i, part in enumerate(parts[:-1]):
        if isinstance(target, list):
            index = _index(target, part, parts[: i + 1])
            if copy_on_write and isinstance(target[index], dict | list):
                target[index] = copy.copy(target[index])
            target = target[index]
            continue
        nxt = target.get(part)
        if not isinstance(nxt, dict | list):
            nxt = {}
            target[part] = nxt
        elif copy_on_write:
            nxt = target[part] = copy.copy(nxt)
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
