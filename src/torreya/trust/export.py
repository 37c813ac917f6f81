"""`torreya export-chain`: a town's chain as one JSON file an outsider can check offline
(`torreya verify-export FILE --public-key …`, or their own program: docs/trust.md)."""

from __future__ import annotations

from collections.abc import Callable

from torreya.db import conn, fetch, now
from torreya.models import Town, TownKey
from torreya.trust import encoding, sealing
from torreya.trust.signing import heads_of
from torreya.trust.verify import BATCH, LINKS_SQL

FORMAT = "torreya-chain"


async def export_town(town: Town, progress: Callable[[int], None] | None = None) -> dict:
    entries: list[dict] = []
    after = 0
    while True:
        rows = await fetch(conn(), LINKS_SQL, [town.id, after, BATCH])
        for row in rows:
            item = {k: row[k] for k in ("seq", "entry_id", "digest", "prev_hash", "hash", "v")}
            if row["present"] is not None:
                raw = {k[2:]: v for k, v in row.items() if k.startswith("e_")}
                salted = {"salt": sealing.salt(row["present"])} if row["v"] == encoding.SALTED \
                    else {}
                item["entry"] = encoding.entry_doc(raw | {"id": row["present"]} | salted)
            else:
                item["entry"] = None
            entries.append(item)
        if progress and rows:
            progress(len(rows))
        if len(rows) < BATCH:
            break
        after = rows[-1]["seq"]
    keys = [{"id": k.id, "public_key": k.public_key,
             "created_at": encoding.utc_text(k.created_at),
             "retired_at": encoding.utc_text(k.retired_at) if k.retired_at else None}
            for k in await TownKey.filter(town_id=town.id).order_by("id")]
    heads = sorted(await heads_of(town.id, limit=100_000), key=lambda h: h["seq"])
    return {"format": FORMAT, "v": encoding.VERSION, "exported_at": encoding.utc_text(now()),
            "town": {"id": town.id, "name": town.name, "code": town.code},
            "keys": keys, "signed_heads": [{k: v for k, v in h.items() if k != "id"}
                                           for h in heads],
            "entries": entries}
