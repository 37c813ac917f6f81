"""The one writer of the CSV files Torreya hands to people (rosters, signatures, the
monthly report), who open them in Excel or WPS: UTF-8 with a byte-order mark so the
Chinese shows, and no cell a spreadsheet would run. A cell whose text starts with
= + - @, a tab or a carriage return is a formula to Excel ("CSV injection", OWASP): a
self-registered name `=HYPERLINK(…)` would be a link in the committee's report. Such text
gets a leading apostrophe, which spreadsheets show as plain text. Numbers stay numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from starlette.responses import Response

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """`value` as a cell no spreadsheet runs."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return "\ufeff" + out.getvalue()


def csv_response(filename: str, rows: Iterable[Sequence[object]]) -> Response:
    """A download of `rows` (the header first) as `filename`."""
    return Response(csv_text(rows), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{filename}"'})
