"""Ids in URL paths, bounded so that every id a route takes fits its column: a longer
number matches no route and is answered 404 like any unknown id, never 500 (an overflow
converting it for the database).

- `{id:id}`: at most 9 digits, for the 32-bit keys (towns, villages, users, events …:
  PostgreSQL's INTEGER stops at 2^31 − 1);
- `{id:bigid}`: at most 18 digits, for the 64-bit keys of tables that grow by the million
  (redemptions, reports, webhook deliveries).
"""

from __future__ import annotations

from starlette.convertors import IntegerConvertor, register_url_convertor

ID_DIGITS, BIGID_DIGITS = 9, 18  # 10**9 - 1 < 2**31 - 1; 10**18 - 1 < 2**63 - 1


class IdConvertor(IntegerConvertor):
    regex = f"[0-9]{{1,{ID_DIGITS}}}"


class BigIdConvertor(IntegerConvertor):
    regex = f"[0-9]{{1,{BIGID_DIGITS}}}"


register_url_convertor("id", IdConvertor())
register_url_convertor("bigid", BigIdConvertor())
