"""``edgekit logs sync --verify``: every line of the files already in the mirror, checked again.

A default sync checks that an object's bytes are the bucket's and that it opens with a
contract event (ADR 0022), so an object whose later lines break the contract can enter the
mirror, and a query over it then fails naming the file. ``--verify`` checks every line of what
it downloads and, with this module, of every file already held. A bad held file is removed
and fetched again in the same sync with every line checked: if the damage was local (a disk
fault) the good copy returns; if the bucket's object is bad it is refused, reported, and
recorded so that later default syncs keep it out and keep naming it.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from edgekit.obs.checks import GunzipCheck
from edgekit.obs.contract import logpush_dataset
from edgekit.obs.fetch import CHUNK


def check_file(path: Path, key: str = "") -> str | None:
    """Why the mirrored file at ``path`` (of object `key`) is not a valid log object, or None
    when it is."""
    check = GunzipCheck(logpush_dataset(key))
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            check.feed(chunk)
            if check.problem is not None:
                break
    return check.problem or check.finish()


def recheck(dest: Path, keys: Iterable[str], workers: int) -> list[str]:
    """Check every line of the files ``dest/<key>``; remove each bad one (the caller fetches it
    again: the damage may be local). Returns the removed keys, in key order."""
    ordered = sorted(keys)
    with ThreadPoolExecutor(max_workers=max(1, workers),
                            thread_name_prefix="edgekit-verify") as pool:
        problems = list(pool.map(lambda key: check_file(dest / key, key), ordered))
    bad = [key for key, problem in zip(ordered, problems, strict=True) if problem is not None]
    for key in bad:
        (dest / key).unlink(missing_ok=True)
    return bad
