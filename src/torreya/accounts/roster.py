"""CSV rosters of residents: parsing and checking, before anything is written.

Columns (header row required, Chinese or English): 姓名/name, and optional 手机号/电话/phone,
用户名/username, 密码/password and 户/household (residents with the same household name
form one household, the first of them its head; an existing household of that name in the
village takes them in). Every problem is reported with its line number. A
resident without a username gets one made up (residents log in by SMS and never type it);
a username never holds the phone number (staff and exports show usernames whole).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from torreya.accounts import passwords
from torreya.errors import DomainError
from torreya.i18n import gettext as _
from torreya.models import Role
from torreya.signin.phones import normalize_phone

HEADERS = {
    "name": {"name", "姓名", "display_name"},
    "username": {"username", "用户名", "账号"},
    "password": {"password", "密码"},
    "phone": {"phone", "手机号", "手机", "电话", "联系电话"},
    "household": {"household", "户", "户名", "所属户"},
}
USERNAME = re.compile(r"^[A-Za-z0-9_.\-]{3,64}$")
MAX_ROWS = 20_000


@dataclass(frozen=True)
class RosterRow:
    line: int
    name: str
    username: str  # "" to be made up
    password: str | None
    phone: str | None
    household: str = ""


@dataclass(frozen=True)
class RosterProblem:
    line: int
    message: str


def _column_map(header: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, raw in enumerate(header):
        label = raw.strip().lower()
        for column, names in HEADERS.items():
            if label in names and column not in found:
                found[column] = index
    return found


def parse_roster(data: bytes) -> tuple[list[RosterRow], list[RosterProblem]]:
    """Rows and problems; any problem means nothing may be imported."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [RosterProblem(0, _("The file is not UTF-8 text. In Excel choose "
                                       "“CSV UTF-8” when saving."))]
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return [], [RosterProblem(1, _("The file is empty."))]
    columns = _column_map(header)
    missing = [c for c in ("name",) if c not in columns]
    if missing:
        return [], [RosterProblem(1, _("Missing column(s): %(columns)s.",
                                       columns=", ".join(missing)))]
    rows: list[RosterRow] = []
    problems: list[RosterProblem] = []
    seen: dict[str, int] = {}
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(rows) + len(problems) >= MAX_ROWS:
                problems.append(RosterProblem(line, _("Too many rows (at most %(max)s).",
                                                      max=MAX_ROWS)))
                break
            row = _row(line, cells, columns, seen, problems)
            if row:
                rows.append(row)
    except csv.Error as exc:
        problems.append(RosterProblem(reader.line_num, _("Broken CSV: %(error)s", error=exc)))
    if not rows and not problems:
        problems.append(RosterProblem(2, _("The file has no residents.")))
    return rows, problems


def _cell(cells: list[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return cells[index].strip() if index is not None and index < len(cells) else ""


def _row(line, cells, columns, seen, problems) -> RosterRow | None:
    name = _cell(cells, columns, "name")
    username = _cell(cells, columns, "username")
    password = _cell(cells, columns, "password") or None
    phone = _cell(cells, columns, "phone") or None
    household = _cell(cells, columns, "household")
    problem = None
    if not name or len(name) > 64 or re.search(r"[<>]", name):
        problem = _("Line %(line)s: the name is missing or not valid.", line=line)
    elif len(household) > 40 or re.search(r"[<>]", household):
        problem = _("Line %(line)s: the household name is too long or not valid.", line=line)
    elif username and not USERNAME.match(username):
        problem = _("Line %(line)s: the username must be 3–64 letters, digits or . _ -",
                    line=line)
    elif username and phone and len(tail := re.sub(r"\D", "", phone)[-8:]) == 8 \
            and tail in username:
        problem = _("Line %(line)s: the username must not contain the phone number (leave "
                    "it empty and one is made up).", line=line)
    elif username and username.lower() in seen:
        problem = _("Line %(line)s: username %(username)s repeats line %(first)s.",
                    line=line, username=username, first=seen[username.lower()])
    elif password is not None and (weak := passwords.problem(
            password, role=Role.RESIDENT, username=username, phone=phone)):
        problem = _("Line %(line)s: %(problem)s", line=line,
                    problem=_(weak[0], **weak[1]))
    elif phone is not None:
        try:
            phone = normalize_phone(phone)
        except DomainError:
            problem = _("Line %(line)s: %(phone)s is not an 11-digit mainland mobile number.",
                        line=line, phone=phone[:20])
    if problem:
        problems.append(RosterProblem(line, problem))
        return None
    if username:
        seen[username.lower()] = line
    return RosterRow(line, name, username, password, phone, household)
