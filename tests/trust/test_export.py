"""An outside auditor (纪检) checks an exported chain offline: `torreya verify-export` runs
with no database and no server, only the file and the town's published key."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.trust.test_chain import _ledger
from torreya.models import Town, TownKey
from torreya.trust.chain import chain_pending
from torreya.trust.export import export_town
from torreya.trust.signing import sign_head

pytestmark = pytest.mark.usefixtures("clean_audit")


def _verify(path, *keys: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torreya.cli", "verify-export", str(path)]
    for key in keys:
        command += ["--public-key", key]
    # An auditor's machine: no Torreya settings at all.
    return subprocess.run(command, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})


async def _exported(settings, tmp_path):
    village, _admin, _people, entries = await _ledger(5)
    await chain_pending()
    await sign_head(settings, village.town_id, kind="daily", period="2026-11-30")
    document = await export_town(await Town.get(id=village.town_id))
    key = (await TownKey.get(town_id=village.town_id)).public_key
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return document, key, path, entries


async def test_an_untouched_export_verifies_with_the_published_key(app, settings, tmp_path):
    document, key, path, _entries = await _exported(settings, tmp_path)
    assert len(document["entries"]) == 5 and document["signed_heads"][0]["seq"] == 5
    answer = _verify(path, key)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert "The chain verifies" in answer.stdout and "5 entries" in answer.stdout


@pytest.mark.parametrize("change", ["delta", "drop", "swap", "key"])
async def test_a_changed_export_is_refused_naming_the_entry(app, settings, tmp_path, change):
    document, key, path, entries = await _exported(settings, tmp_path)
    items = document["entries"]
    if change == "delta":
        items[2]["entry"]["delta"] = 999
        named = f"entry {items[2]['entry_id']} "
    elif change == "drop":
        del items[1]
        named = "links 2–2 are missing"
    elif change == "swap":
        items[0]["entry"], items[3]["entry"] = items[3]["entry"], items[0]["entry"]
        named = f"entry {items[0]['entry_id']} "
    else:  # a signature made with another key than the town's
        key = "11" * 32
        named = "signature that does not verify"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    answer = _verify(path, key)
    assert answer.returncode == 1, answer.stdout
    assert named in answer.stdout, answer.stdout


def test_a_file_that_is_not_an_export_is_a_clear_error(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"hello": 1}', encoding="utf-8")
    answer = _verify(path)
    assert answer.returncode == 2 and "not an export" in answer.stdout
