"""`torreya backup FILE` and `torreya restore FILE` (SPEC §4.11): a consistent snapshot
taken while `serve` keeps serving, loaded back into an empty database only.

- SQLite: the online backup API (a snapshot of one moment, copied page by page while
  writers carry on).
- PostgreSQL: `pg_dump` in its custom format (one transaction's snapshot, under MVCC) and
  `pg_restore`; the client tools must be installed, and their version at least the
  server's.

The towns' signing keys and the ledger's seals depend on TORREYA_SECRET_KEY: a restore
checks the key against the restored town keys and says so at once when it differs, rather
than leaving it for an audit to discover.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken

from torreya.keys import derive_key
from torreya.settings import Settings

Progress = Callable[[int, int], object]  # (done, total) pages


class BackupError(Exception):
    """Said to the operator as it is; exit 1."""


def _libpq_url(settings: Settings) -> str:
    """The database URL as libpq reads it (Tortoise's own query options dropped)."""
    parts = urlsplit(settings.DATABASE_URL)
    scheme = "postgresql" if parts.scheme.startswith("postgres") else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed. Install PostgreSQL's client tools, the server's major "
            "version or newer (Debian: apt-get install postgresql-client-15), and run this "
            "again.")
    return found


def backup(settings: Settings, target: Path, progress: Progress | None = None) -> None:
    if target.exists():
        raise BackupError(f"{target} exists already: choose a new file (nothing overwritten).")
    if settings.sqlite_path:
        _sqlite_backup(Path(settings.sqlite_path), target, progress)
        return
    done = subprocess.run([_tool("pg_dump"), "--format=custom", "--no-owner", "--file",
                           str(target), _libpq_url(settings)], capture_output=True, text=True)
    if done.returncode != 0:
        target.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")


def _sqlite_backup(source: Path, target: Path, progress: Progress | None) -> None:
    if not source.exists():
        raise BackupError(f"there is no database at {source}.")

    def report(status: int, remaining: int, total: int) -> None:
        if progress:
            progress(total - remaining, total)

    with contextlib.closing(sqlite3.connect(source)) as src, \
            contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst, pages=1024, progress=report)


def _is_empty(settings: Settings) -> bool:
    if settings.sqlite_path:
        path = Path(settings.sqlite_path)
        if not path.exists():
            return True
        with contextlib.closing(sqlite3.connect(path)) as db:
            return db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                              ).fetchone()[0] == 0
    done = subprocess.run([_tool("psql"), "--no-psqlrc", "--tuples-only", "--no-align",
                           "--command", "SELECT count(*) FROM pg_tables WHERE schemaname"
                           " NOT IN ('pg_catalog', 'information_schema')",
                           _libpq_url(settings)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"cannot read the target database: {done.stderr.strip()}")
    return done.stdout.strip() == "0"


@dataclass(frozen=True)
class Restored:
    towns: int
    keys_ok: bool


def restore(settings: Settings, source: Path, progress: Progress | None = None) -> Restored:
    """Load `source` into the configured database, which must be empty."""
    if not source.is_file():
        raise BackupError(f"there is no backup at {source}.")
    if not _is_empty(settings):
        raise BackupError("the target database is not empty: restore only into a new, empty "
                          "database (create one, point TORREYA_DATABASE_URL at it), so "
                          "nothing is mixed or overwritten.")
    if settings.sqlite_path:
        target = Path(settings.sqlite_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        _sqlite_backup(source, target, progress)
    else:
        done = subprocess.run([_tool("pg_restore"), "--no-owner", "--exit-on-error",
                               "--dbname", _libpq_url(settings), str(source)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise BackupError(f"pg_restore failed: {done.stderr.strip()}")
    return _check_keys(settings)


def _check_keys(settings: Settings) -> Restored:
    """Can this TORREYA_SECRET_KEY open the restored towns' signing keys?"""
    fernet = Fernet(base64.urlsafe_b64encode(derive_key(settings, "town-signing-keys")))
    keys = _rows(settings, "SELECT private_key FROM town_keys")
    towns = _rows(settings, "SELECT count(*) FROM towns")[0][0]
    try:
        for (private,) in keys:
            fernet.decrypt(str(private).encode())
    except InvalidToken:
        return Restored(int(towns), keys_ok=False)
    return Restored(int(towns), keys_ok=True)


def _rows(settings: Settings, sql: str) -> list[tuple]:
    if settings.sqlite_path:
        with contextlib.closing(sqlite3.connect(settings.sqlite_path)) as db:
            return db.execute(sql).fetchall()
    done = subprocess.run([_tool("psql"), "--no-psqlrc", "--tuples-only", "--no-align",
                           "--field-separator=\t", "--command", sql, _libpq_url(settings)],
                          capture_output=True, text=True, check=True)
    return [tuple(line.split("\t")) for line in done.stdout.splitlines() if line]
