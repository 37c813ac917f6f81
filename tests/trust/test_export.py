"""An outside auditor (纪检) checks an exported chain offline: `torreya verify-export` runs
with no database and no server, only the file and the town's published key."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import pytest

from tests.trust.test_chain import _ledger
from torreya.models import Town, TownKey
from torreya.trust import encoding
from torreya.trust.chain import chain_pending
from torreya.trust.export import export_lines, read_lines
from torreya.trust.signing import sign_head
from torreya.trust.verify import verify_export

pytestmark = pytest.mark.usefixtures("clean_audit")


def _verify(path, *keys: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torreya.cli", "verify-export", str(path)]
    for key in keys:
        command += ["--public-key", key]
    # An auditor's machine: no Torreya settings at all.
    return subprocess.run(command, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})


def _write(path, header: dict, items: list[dict]) -> None:
    lines = [header, *items]
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                    encoding="utf-8")


async def _exported(settings, tmp_path):
    village, _admin, _people, entries = await _ledger(5)
    await chain_pending()
    await sign_head(settings, village.town_id, kind="daily", period="2026-11-30")
    written: list[str] = []
    await export_lines(await Town.get(id=village.town_id), written.append)
    header, items = json.loads(written[0]), [json.loads(line) for line in written[1:]]
    key = (await TownKey.get(town_id=village.town_id)).public_key
    path = tmp_path / "chain.jsonl"
    path.write_text("".join(written), encoding="utf-8")
    return header, items, key, path, entries


async def test_an_untouched_export_verifies_with_the_published_key(app, settings, tmp_path):
    header, items, key, path, _entries = await _exported(settings, tmp_path)
    assert header["format"] == "torreya-chain-lines"
    assert len(items) == 5 and header["signed_heads"][0]["seq"] == 5
    answer = _verify(path, key)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert "The chain verifies" in answer.stdout and "5 entries" in answer.stdout


async def test_an_export_of_the_earlier_single_document_format_still_verifies(
        app, settings, tmp_path):
    header, items, key, _path, _entries = await _exported(settings, tmp_path)
    old = tmp_path / "chain.json"  # as export-chain wrote it before issue 37
    old.write_text(json.dumps({**header, "format": "torreya-chain", "entries": items},
                              ensure_ascii=False, indent=1), encoding="utf-8")
    answer = _verify(old, key)
    assert answer.returncode == 0 and "5 entries" in answer.stdout, answer.stdout


@pytest.mark.parametrize("change", ["delta", "drop", "swap", "key"])
async def test_a_changed_export_is_refused_naming_the_entry(app, settings, tmp_path, change):
    header, items, key, path, entries = await _exported(settings, tmp_path)
    if change == "delta":
        items[2]["entry"]["delta"] = 999
        named = f"entry {items[2]['entry_id']} "
    elif change == "drop":
        del items[1]
        named = "links 2–2 are missing"
    elif change == "swap":
        items[0]["entry"], items[3]["entry"] = items[3]["entry"], items[0]["entry"]
        named = f"entry {items[0]['entry_id']} "
    else:  # the auditor gave another key than the town's: said so, not "forged"
        key = "11" * 32
        named = "which is not among the keys you gave"
    _write(path, header, items)
    answer = _verify(path, key)
    assert answer.returncode == 1, answer.stdout
    assert named in answer.stdout, answer.stdout
    if change == "delta":  # one entry's points: not called a rewritten chain
        assert "add up to" in answer.stdout and "rewritten" not in answer.stdout, \
            answer.stdout
    if change == "key":
        assert "does not verify" not in answer.stdout, answer.stdout


def test_a_file_that_is_not_an_export_is_a_clear_error(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"hello": 1}', encoding="utf-8")
    answer = _verify(path)
    assert answer.returncode == 2 and "not an export" in answer.stdout


def _synthetic_export(path, links: int) -> None:
    """A valid chain of `links` entries, written as export-chain writes it (no database)."""
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps({"format": "torreya-chain-lines", "v": 1, "town": {
            "id": 1, "name": "基准镇", "code": "bench"}, "keys": [], "signed_heads": []}) + "\n")
        previous = encoding.GENESIS
        for seq in range(1, links + 1):
            entry = encoding.entry_doc({
                "id": seq, "town_id": 1, "user_id": seq % 97 + 1, "delta": 10,
                "balance_after": 10 * (seq // 97 + 1), "kind": "checkin", "memo": "基准活动",
                "idem_key": f"bench:{seq}", "actor_id": None, "proxy": False,
                "created_at": "2026-12-06T08:00:00+00:00"})
            digest = encoding.digest(entry)
            link = encoding.link_hash(previous, digest)
            out.write(json.dumps({"seq": seq, "entry_id": seq, "digest": digest,
                                  "prev_hash": previous, "hash": link, "v": 1,
                                  "entry": entry}, ensure_ascii=False) + "\n")
            previous = link


def _peak_of_verifying(path) -> tuple[int, int, list[str]]:
    tracemalloc.start()
    with path.open(encoding="utf-8") as lines:
        header, links = read_lines(iter(lines))
        problems, count = verify_export(header, links)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, count, problems


def test_verify_export_reads_a_line_at_a_time_whatever_the_file_size(tmp_path):
    """An auditor's laptop checks ten million entries: what is held must not grow with the
    file (the single JSON document was read whole, and its entries with it)."""
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    _synthetic_export(small, 2_000)
    _synthetic_export(large, 20_000)
    small_peak, small_count, problems = _peak_of_verifying(small)
    assert small_count == 2_000
    assert problems == ["the file has no signed head: nothing ties it to the town"]
    large_peak, large_count, _problems = _peak_of_verifying(large)
    assert large_count == 20_000
    assert large_peak < small_peak * 2 + 100_000, (small_peak, large_peak)
