"""The `torreya` command, run as a user runs it: a subprocess in an empty folder."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import BACKEND, SECRET


def run(args, cwd, db_url, stdin=None):
    env = {**os.environ, "TORREYA_DATABASE_URL": db_url, "TORREYA_SECRET_KEY": SECRET}
    return subprocess.run([sys.executable, "-m", "torreya.cli", *args], cwd=cwd, env=env,
                          input=stdin, capture_output=True, text=True, timeout=180)


@pytest.fixture
def cli_db(tmp_path, db_url):
    return db_url


def test_migrate_create_admin_demo_and_audit(tmp_path, cli_db, app):
    assert run(["migrate"], tmp_path, cli_db).returncode == 0
    created = run(["create-admin", "root", "--password-stdin"], tmp_path, cli_db,
                  stdin="a-long-password\n")
    assert created.returncode == 0, created.stdout + created.stderr
    duplicate = run(["create-admin", "root", "--password-stdin"], tmp_path, cli_db,
                    stdin="a-long-password\n")
    assert duplicate.returncode == 1
    demo = run(["demo", "--residents", "6"], tmp_path, cli_db)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "gulai_admin" in demo.stdout and "torreya2026" in demo.stdout
    audit = run(["audit"], tmp_path, cli_db)
    assert audit.returncode == 0 and "clean" in audit.stdout
    # A clean full audit leaves each town a signed checkpoint; the nightly one starts there.
    assert "Signed 1 audit checkpoint(s)" in audit.stdout, audit.stdout
    nightly = run(["audit", "--since-checkpoint"], tmp_path, cli_db)
    assert nightly.returncode == 0, nightly.stdout + nightly.stderr
    assert "clean since the checkpoints of 1 town(s): 0 accounts" in nightly.stdout


def test_short_admin_password_is_refused(tmp_path, cli_db, app):
    result = run(["create-admin", "root", "--password-stdin"], tmp_path, cli_db, stdin="short\n")
    assert result.returncode == 2


async def test_audit_exits_1_with_a_report_when_tampered(tmp_path, cli_db, client):
    from tests.factories import make_user
    from torreya.models import User

    resident = await make_user()
    await User.filter(id=resident.id).update(balance=7)
    result = run(["audit"], tmp_path, cli_db)
    assert result.returncode == 1
    assert f"user {resident.id}: balance 7 but entries sum to 0" in result.stdout
    await User.filter(id=resident.id).update(balance=0)


async def test_import_residents_from_the_command_line(tmp_path, cli_db, client):
    from tests.factories import make_user, make_village
    from torreya.models import Role, User

    village = await make_village()
    await make_user(Role.PLATFORM_ADMIN)
    roster = tmp_path / "roster.csv"
    roster.write_text("姓名,手机号\n王秀英,13900000001\n李建国,13900000002\n", encoding="utf-8")
    town = await village.town
    result = run(["import-residents", str(roster), "--town", town.code, "--village",
                  village.code], tmp_path, cli_db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 residents imported" in result.stdout
    assert await User.filter(village_id=village.id, role=Role.RESIDENT).count() == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("姓名,手机号\n王秀英,13900000003\n赵六,1390000\n", encoding="utf-8")
    refused = run(["import-residents", str(bad), "--town", town.code, "--village",
                   village.code], tmp_path, cli_db)
    assert refused.returncode == 1 and "bad.csv" in refused.stdout
    assert not await User.exists(phone="+8613900000003")


@pytest.mark.skipif(BACKEND != "sqlite", reason="the embedded default is SQLite")
def test_embedded_default_creates_data_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORREYA_")}
    result = subprocess.run([sys.executable, "-m", "torreya.cli", "migrate"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "torreya.sqlite3").exists()
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o077 == 0
