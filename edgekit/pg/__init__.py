"""Postgres operations that are not constructs: backups and restore (pgBackRest, ADR 0011).

``backup``: the pgBackRest settings of a primary as plain data (the INI file, the
``services.postgresql`` archive settings, the systemd units) and the commands of a restore;
``cli``: ``edgekit pg backups`` / ``edgekit pg restore``.
"""
