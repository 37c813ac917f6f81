"""The wheel carries templates, static files, scheme packs, catalogs and migrations, and
the installed package works from an empty folder (SPEC §6)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import BACKEND

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(ROOT),
                    "-w", str(out)], check=True, capture_output=True, timeout=300)
    return next(out.glob("torreya-*.whl"))


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ["torreya/templates/base.html", "torreya/static/css/torreya.css",
                   "torreya/static/js/rotating.js",
                   "torreya/scheme_packs/gulai-torreya-coin.toml",
                   "torreya/locale/zh_CN/LC_MESSAGES/messages.po",
                   "torreya/migrations/0001_initial.py"]:
        assert needed in names, needed


@pytest.mark.skipif(BACKEND != "sqlite", reason="the embedded default is SQLite")
def test_installed_package_serves_from_an_empty_folder(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(wheel)], check=True, timeout=300)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORREYA_")}
    env["PYTHONPATH"] = str(target)
    script = (
        "import asyncio, httpx, torreya\n"
        "from torreya.app import create_app\n"
        "from torreya.db import migrate\n"
        "from torreya.settings import Settings, resource_dir\n"
        "assert str(resource_dir('templates')).startswith(torreya.__path__[0])\n"
        "async def main():\n"
        "    settings = Settings.from_env()\n"
        "    await migrate(settings)\n"
        "    app = create_app(settings)\n"
        "    async with app.router.lifespan_context(app):\n"
        "        t = httpx.ASGITransport(app=app)\n"
        "        async with httpx.AsyncClient(transport=t, base_url='http://x') as c:\n"
        "            page = await c.get('/login')\n"
        "            css = await c.get('/static/css/torreya.css')\n"
        "            assert page.status_code == 200 and '登录' in page.text, page.text\n"
        "            assert css.status_code == 200\n"
        "asyncio.run(main())\n"
        "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=empty, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    assert (empty / "data" / "torreya.sqlite3").exists()
