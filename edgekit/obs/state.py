"""What a sync destination holds, in ``.edgekit-sync.json`` plus an append-only journal
(see `edgekit.obs.sync` for the guarantees), and when its node folders were last listed
(`edgekit.obs.listing.ListingRecords`, ADR 0021)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

import orjson

from edgekit.core.files import write_atomic
from edgekit.obs.contract import STATE_FILE, LogsError, parse_key
from edgekit.obs.listing import ListingRecords

JOURNAL_SUFFIX = ".journal"


class SyncState:
    """Which objects the folder holds: key -> ETag, in ``.edgekit-sync.json`` plus a journal."""

    def __init__(self, dest: Path) -> None:
        self.path = dest / STATE_FILE
        self.journal_path = dest / (STATE_FILE + JOURNAL_SUFFIX)
        self.held: dict[str, str] = {}
        self.listings = ListingRecords()
        """Written only by a sync that dealt with every listed object (ADR 0021)."""
        self._journal: IO[bytes] | None = None
        self._forgot = False
        self._load()

    def _load(self) -> None:
        try:
            data = orjson.loads(self.path.read_bytes())
            objects = data.get("objects", {}) if isinstance(data, dict) else {}
            self.held = {str(k): str(v["etag"]) for k, v in objects.items()}
            self.listings = ListingRecords.from_json(data.get("listings"))
        except FileNotFoundError:
            pass
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
            self.held = {}  # unreadable: fetch again; paths are per key, so no duplicates
        with contextlib.suppress(FileNotFoundError), self.journal_path.open("rb") as journal:
            for line in journal:
                try:
                    record = orjson.loads(line)
                    self.held[str(record["key"])] = str(record["etag"])
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    break  # a torn last line: that object is simply fetched again

    def holds(self, key: str, etag: str, dest: Path,
              present: set[str] | None = None) -> bool:
        """Recorded at this ETag and its file in place (`present`: the files under `dest`,
        relative, when the caller listed them once instead of a stat per key)."""
        if self.held.get(key) != etag:
            return False
        return key in present if present is not None else (dest / key).is_file()

    def record(self, key: str, etag: str) -> None:
        """Note that ``key`` at ``etag`` is in place (its file is already on disk).

        The line is flushed, not fsynced: a record lost in a crash only means that object
        is fetched again into the same path; `compact` makes the records durable."""
        if self._journal is None:
            self._journal = self.journal_path.open("ab")
        self._journal.write(orjson.dumps({"key": key, "etag": etag}) + b"\n")
        self._journal.flush()
        self.held[key] = etag

    def forget(self, key: str) -> None:
        """Drop the record of ``key`` (its file is gone): written by the next `compact`."""
        self.held.pop(key, None)
        self._forgot = True

    def compact(self, *, listed: bool = False) -> None:
        """Fold the journal into the state file (atomically), then drop the journal;
        `listed`: the listing records changed (they are a field older code ignores)."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if not listed and not self._forgot and not self.journal_path.exists() and \
                self.path.exists():
            return
        body = orjson.dumps(
            {"version": 1, "objects": {k: {"etag": v} for k, v in sorted(self.held.items())},
             "listings": self.listings.to_json()}
        )
        write_atomic(self.path, body)
        self.journal_path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None


def files_under(dest: Path, prefix: str) -> set[str]:
    """Relative paths (``/``-separated) of the files under ``dest/prefix``: one directory walk
    instead of a stat per object."""
    base = str(dest)
    cut = len(base) + 1
    found: set[str] = set()
    for folder, _dirs, names in os.walk(os.path.join(base, prefix)):
        rel = folder[cut:].replace(os.sep, "/")
        found.update(f"{rel}/{name}" for name in names)
    return found


def prune_gone(state: SyncState, dest: Path, prefixes: tuple[str, ...],
               listed: set[str]) -> list[str]:
    """Remove the files of recorded objects under `prefixes` that `listed` (a full listing)
    does not hold, and forget them; then the folders that emptied. Only keys the state
    records and that are laid out as the contract says: never another file."""
    gone = sorted(key for key in state.held
                  if key.startswith(prefixes) and key not in listed and parse_key(key))
    if gone and not listed:
        raise LogsError(
            f"the bucket lists no object under {', '.join(prefixes)} while the mirror {dest} "
            f"holds {len(gone)}: refusing to prune them all (is the bucket or endpoint "
            "wrong?); nothing was removed")
    for key in gone:
        path = dest / key
        path.unlink(missing_ok=True)
        state.forget(key)
        folder = path.parent
        while folder != dest and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    return gone
