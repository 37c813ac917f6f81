"""Extract every user-facing string into the zh_CN catalog (keeping translations).

    python scripts/i18n.py          # update src/torreya/locale/zh_CN/LC_MESSAGES/messages.po
    python scripts/i18n.py --check  # exit 1 if a string is missing or untranslated

Error classes and validators carry msgids as arguments, so their names are keywords too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "src/torreya/locale/zh_CN/LC_MESSAGES/messages.po"
KEYWORDS = dict(DEFAULT_KEYWORDS)


def error_classes() -> set[str]:
    """DomainError and every class under it in the package: a message passed to any of them
    is shown to users, so it is a msgid (a hand-kept list missed some, and their messages
    stayed English). Operators' errors (ConfigurationError …) are not under it."""
    bases: dict[str, set[str]] = {}
    for path in (ROOT / "src/torreya").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                    for b in node.bases)
    found = {"DomainError"}
    while True:
        more = {name for name, parents in bases.items() if parents & found} - found
        if not more:
            return found
        found |= more


for name in ("N_", "_l", "lazy_gettext", "_invalid", "RosterProblem", *error_classes()):
    KEYWORDS[name] = None
KEYWORDS["_invalid"] = (2,)
KEYWORDS["RosterProblem"] = (2,)
KEYWORDS["_not_valid"] = None
KEYWORDS["KindDefault"] = (2,)


def class_messages(path: Path) -> list[tuple[int, str]]:
    """`message = "..."` class attributes of error classes."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                        and isinstance(stmt.targets[0], ast.Name)
                        and stmt.targets[0].id == "message"
                        and isinstance(stmt.value, ast.Constant)):
                    found.append((stmt.lineno, stmt.value.value))
    return found


def extract() -> Catalog:
    catalog = Catalog(locale="zh_CN", project="torreya")
    method_map = [("**.py", "python")]
    for dirname in ("src/torreya",):
        for filename, lineno, message, _comments, _context in extract_from_dir(
                ROOT / dirname, method_map=method_map, keywords=KEYWORDS):
            if isinstance(message, str) and message:
                catalog.add(message, locations=[(f"{dirname}/{filename}", lineno)])
        for path in (ROOT / dirname).rglob("*.py"):
            for lineno, message in class_messages(path):
                catalog.add(message, locations=[(str(path.relative_to(ROOT)), lineno)])
    template_map = [("**.html", "jinja2.ext:babel_extract")]
    # Babel skips folders whose names start with "_", so the macros are named on their own.
    for folder in ("templates", "templates/_macros"):
        for filename, lineno, message, _comments, _context in extract_from_dir(
                ROOT / folder, method_map=template_map,
                options_map={"**.html": {"extensions": "jinja2.ext.i18n"}}, keywords=KEYWORDS):
            if isinstance(message, str) and message:
                catalog.add(message, locations=[(f"{folder}/{filename}", lineno)])
            elif isinstance(message, tuple) and message[0]:
                catalog.add(message[0], locations=[(f"{folder}/{filename}", lineno)])
    return catalog


def main() -> int:
    fresh = extract()
    old = Catalog(locale="zh_CN")
    if PO.exists():
        with PO.open("rb") as fh:
            old = read_po(fh, locale="zh_CN")
    missing = []
    for message in fresh:
        if not message.id:
            continue
        existing = old.get(message.id)
        if existing is not None and existing.string:
            message.string = existing.string
        else:
            missing.append(message.id)
    if "--check" in sys.argv:
        for msgid in missing:
            print(f"untranslated: {msgid!r}")
        return 1 if missing else 0
    PO.parent.mkdir(parents=True, exist_ok=True)
    with PO.open("wb") as fh:
        write_po(fh, fresh, width=100, omit_header=False, sort_output=True)
    print(f"{len(fresh)} messages, {len(missing)} untranslated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
