"""How long the backup bucket can lock pgBackRest's files, and which keys (ADR 0037).

An R2 bucket lock refuses to delete or overwrite an object younger than the lock's age. Two
things in a pgBackRest repository must stay writable, so the lock covers only what pgBackRest
writes once and deletes only when it expires it:

- ``<stanza>/archive/<stanza>/1`` — the WAL of every database id (``15-1``, ``16-2``, …: the
  PostgreSQL major version, then a counter; versions 10-19 all begin with ``1``). Not
  ``archive.info``/``.copy`` beside them, which every backup rewrites.
- ``<stanza>/backup/<stanza>/2`` — every backup set (labels begin with the year,
  ``20261129-030000F``). Not ``backup.info``/``.copy`` (rewritten by every backup and expire)
  nor ``backup.history/``. Within a set every file is written once when ``resume=n``
  (`edgekit.pg.backup.repo_options`): with resume on, pgBackRest rewrites
  ``backup.manifest.copy`` during the backup, which the lock would refuse.

The arithmetic. With ``repo1-retention-full = N`` (count) and a full backup every ``I`` days,
pgBackRest expires a backup set, with its differentials and the WAL only it needs, when the
N-th full after it completes. A file written just before full ``k+1`` began (the last
differential or WAL of full ``k``) is deleted when full ``k+N`` completes: its age then is at
least ``(N - 1) x I``. So the lock must be shorter than that, or expire meets a locked file
(pgBackRest then logs the error, keeps ``backup.info`` as it was, and the next expire tries
again). edgekit locks for ``(N - 1) x I - 1`` days: a day's margin for timers and backup
duration. The defaults (N = 4, weekly) give 20 days.
"""

from __future__ import annotations

import re
from typing import Protocol


class BackupSettings(Protocol):
    """What the lock arithmetic reads of `edgekit.constructs.pg_backups.BackupSettings`."""

    @property
    def retention_full(self) -> int: ...
    @property
    def full_calendar(self) -> str: ...
    @property
    def lock_days(self) -> int | None: ...

MARGIN_DAYS = 1
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_CALENDAR = re.compile(
    r"^(?:(?P<days>[A-Za-z.,]+)\s+)?(?:\*-\*-\*\s+)?\d{1,2}:\d{2}(?::\d{2})?$")


def lock_prefixes(stanza: str) -> tuple[str, str]:
    """(WAL, backup sets): the key prefixes pgBackRest writes once (repo1-path ``/<stanza>``)."""
    return f"{stanza}/archive/{stanza}/1", f"{stanza}/backup/{stanza}/2"


def full_interval_days(calendar: str) -> int | None:
    """The shortest gap in days between two full backups of a systemd OnCalendar expression
    that fires on some weekdays (or every day) at one time; None for any other form."""
    match = _CALENDAR.match(calendar.strip())
    if match is None:
        return None
    if match["days"] is None:
        return 1
    chosen: set[int] = set()
    for part in match["days"].split(","):
        ends = part.split("..")
        names = [e[:3].capitalize() for e in ends]
        if len(ends) > 2 or any(n not in WEEKDAYS for n in names):
            return None
        first, last = WEEKDAYS.index(names[0]), WEEKDAYS.index(names[-1])
        if last < first:
            return None
        chosen.update(range(first, last + 1))
    days = sorted(chosen)
    return min((days[(i + 1) % len(days)] - d) % 7 or 7 for i, d in enumerate(days))


def longest_lock_days(settings: BackupSettings) -> int | None:
    """The longest lock pgBackRest's retention allows, ``(N - 1) x I - MARGIN_DAYS``; None
    when the full calendar is not a form `full_interval_days` reads."""
    interval = full_interval_days(settings.full_calendar)
    if interval is None:
        return None
    return (settings.retention_full - 1) * interval - MARGIN_DAYS


def backup_lock_days(settings: BackupSettings) -> int | None:
    """The lock of the backup bucket: CUE's ``lock_days`` when given, else the longest the
    retention allows; None when neither is known (`edgekit check` EK222 says so)."""
    if settings.lock_days is not None:
        return settings.lock_days
    return longest_lock_days(settings)
