"""Templates, catalogs, static files and the OpenAPI document."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from torreya.masking import mask_name
from torreya.routes import API
from torreya.settings import PACKAGE_DIR, resource_dir
from torreya.templating import templates

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted(p.relative_to(resource_dir("templates")).as_posix()
                   for p in resource_dir("templates").rglob("*.html"))


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_compiles(name):
    templates.env.get_template(name)


def test_catalog_has_every_string_translated():
    result = subprocess.run([sys.executable, str(ROOT / "scripts/i18n.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_catalog_placeholders_match():
    path = PACKAGE_DIR / "locale/zh_CN/LC_MESSAGES/messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh)
    for message in catalog:
        if message.id and message.string:
            ours = sorted(re.findall(r"%\(\w+\)s", message.id))
            theirs = sorted(re.findall(r"%\(\w+\)s", message.string))
            assert ours == theirs, message.id


@pytest.mark.parametrize(("name", "masked"), [("张三", "张*"), ("张小明", "张*明"),
                                              ("欧阳小明", "欧**明"), ("", "*")])
def test_mask_name(name, masked):
    assert mask_name(name) == masked


def test_no_external_assets_in_templates_or_static():
    for folder in (resource_dir("templates"), resource_dir("static")):
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix in {".html", ".css", ".js"}:
                text = path.read_text(encoding="utf-8")
                assert not re.search(r"(src|href)=\"https?://", text), path
                assert "<script>" not in text, f"inline script in {path}"


async def test_openapi_lists_every_api_route(client):
    document = (await client.get("/api/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    listed = {(method.upper(), path) for path, ops in document["paths"].items()
              for method in ops}
    for e in API:
        path = "/api/v1" + re.sub(r"\{(\w+):\w+\}", r"{\1}", e.path)
        assert (e.method, path) in listed
    for required in ["/api/v1/auth/token", "/api/v1/me", "/api/v1/me/ledger",
                     "/api/v1/me/member-card", "/api/v1/towns", "/api/v1/towns/{id}/villages",
                     "/api/v1/users", "/api/v1/users/{id}/adjustments",
                     "/api/v1/villages/{id}/events", "/api/v1/events/{id}/checkin-code",
                     "/api/v1/checkins", "/api/v1/events/{id}/checkins"]:
        assert required in document["paths"], required


async def test_static_files_are_served(client):
    css = await client.get("/static/css/torreya.css")
    assert css.status_code == 200 and "font-size: 18px" in css.text


def test_every_term_has_an_english_label():
    from torreya import i18n
    from torreya.terms import TERMS

    token = i18n.current_language.set("en")
    try:
        for term in TERMS:
            label = i18n.gettext(term)
            assert label != term or "_" not in term, term
    finally:
        i18n.current_language.reset(token)
