"""Which schema the database holds against the one this code knows: for `/readyz`,
`torreya migrate --check` and `serve`, which refuses a database newer than itself."""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient

from torreya import migrations
from torreya.db import fetch

APP = "models"  # the app label Tortoise records our migrations under


def known() -> list[str]:
    """The migrations this code ships, in order (0001_initial …)."""
    return sorted(m.name for m in pkgutil.iter_modules(migrations.__path__)
                  if m.name[:4].isdigit())


@dataclass(frozen=True)
class SchemaState:
    applied: list[str]
    pending: list[str]  # in the code, not in the database: `torreya migrate` applies them
    unknown: list[str]  # in the database, not in the code: a newer Torreya made them

    @property
    def current(self) -> bool:
        return not self.pending and not self.unknown

    def newest(self, names: list[str]) -> str:
        return names[-1] if names else "(none)"

    def explain(self) -> str:
        if self.unknown:
            return (f"the database's schema is newer than this Torreya: it has "
                    f"{', '.join(self.unknown)}, this code knows up to {self.newest(known())}; "
                    "run the newer version (or restore a backup made for this one)")
        if self.pending:
            return (f"{len(self.pending)} migration(s) not applied yet, up to "
                    f"{self.pending[-1]}: run `torreya migrate`")
        return f"schema current ({self.newest(self.applied)})"


QUERY = "SELECT name FROM tortoise_migrations WHERE app = ?"


async def state(connection: BaseDBAsyncClient) -> SchemaState:
    try:
        rows = await fetch(connection, QUERY, [APP])
    except Exception as error:  # no table yet: an empty database
        if "tortoise_migrations" not in str(error):
            raise
        rows = []
    return state_of([str(r["name"]) for r in rows])


def state_of(names: list[str]) -> SchemaState:
    applied = sorted(names)
    code = known()
    return SchemaState(applied=applied, pending=[n for n in code if n not in applied],
                       unknown=[n for n in applied if n not in code])
