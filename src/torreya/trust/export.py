"""`torreya export-chain`: a town's chain as a file an outsider checks offline (`torreya
verify-export FILE --public-key …`, or their own program: docs/trust.md).

The file is JSON Lines (format `torreya-chain-lines`, issue 37): a first line with the town,
its keys and its signed heads, then one line per link in order. It is written and read a
line at a time, so a town of ten million entries is exported and verified in the memory of
one line. Files of the earlier single-document format (`torreya-chain`) still verify.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from torreya.db import conn, fetch, now
from torreya.models import Town, TownKey
from torreya.trust import encoding, sealing
from torreya.trust.signing import heads_of
from torreya.trust.verify import BATCH, LINKS_SQL

FORMAT = "torreya-chain"  # one JSON document (before issue 37): still read
LINES = "torreya-chain-lines"


async def header_of(town: Town) -> dict:
    """The first line: what the links are checked against."""
    keys = [{"id": k.id, "public_key": k.public_key,
             "created_at": encoding.utc_text(k.created_at),
             "retired_at": encoding.utc_text(k.retired_at) if k.retired_at else None}
            for k in await TownKey.filter(town_id=town.id).order_by("id")]
    heads = sorted(await heads_of(town.id, limit=100_000), key=lambda h: h["seq"])
    return {"format": LINES, "v": encoding.VERSION, "exported_at": encoding.utc_text(now()),
            "town": {"id": town.id, "name": town.name, "code": town.code},
            "keys": keys, "signed_heads": [{k: v for k, v in h.items() if k != "id"}
                                           for h in heads]}


async def links_of(town: Town, progress: Callable[[int], None] | None = None):
    """The town's links in order, each with its entry's canonical fields (None: deleted),
    read a batch at a time."""
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
            yield item
        if progress and rows:
            progress(len(rows))
        if len(rows) < BATCH:
            break
        after = rows[-1]["seq"]


async def export_lines(town: Town, write: Callable[[str], object],
                       progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Write the export a line at a time; (links, signed heads) written."""
    header = await header_of(town)
    write(_line(header))
    count = 0
    async for item in links_of(town, progress):
        write(_line(item))
        count += 1
    return count, len(header["signed_heads"])


def _line(doc: dict) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"


def read_lines(lines: Iterator[str]) -> tuple[dict, Iterator[dict]]:
    """An export's header and its links, read as they come. Raises ValueError for a file
    that is not one."""
    first = next(lines, "")
    try:
        header = json.loads(first)
    except ValueError:
        header = None  # the earlier format, indented over many lines
    if header is None or (isinstance(header, dict) and header.get("format") == FORMAT
                          and "entries" not in header):
        try:
            header = json.loads(first + "".join(lines))
        except ValueError:
            raise ValueError("not an export of torreya export-chain") from None
    if not isinstance(header, dict) or header.get("format") not in (LINES, FORMAT):
        raise ValueError("not an export of torreya export-chain")
    if header["format"] == FORMAT:  # one document: its links are in it
        return header, iter(header.get("entries", []))
    return header, (json.loads(line) for line in lines if line.strip())
