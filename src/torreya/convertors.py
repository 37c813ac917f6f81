"""Ids in URL paths (`/events/{id:id}`): whole numbers of at most 18 digits, so that every
id a route takes fits the database's 64-bit integers. A longer number matches no route and
is answered 404 like any unknown id, never 500 (an overflow converting it for SQLite)."""

from __future__ import annotations

from starlette.convertors import IntegerConvertor, register_url_convertor

MAX_DIGITS = 18  # 10**18 - 1 < 2**63 - 1


class IdConvertor(IntegerConvertor):
    regex = f"[0-9]{{1,{MAX_DIGITS}}}"


register_url_convertor("id", IdConvertor())
