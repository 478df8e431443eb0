"""Item 10: recording a finished case is O(1): one line appended to a journal, never a
rewrite of ``manifest.json``; the journal is compacted into ``manifest.json`` at the end of
the run, which then reads as before (one JSON object, every case under ``cases``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from napari_lesionmix.batch.manifest import Manifest
from napari_lesionmix.batch.options import GenerateOptions
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.batch.verify import verify_output
from tests.batch.helpers import make_nnunet


def _journal(root):
    return sorted((root / ".lesionmix").glob("journal*.jsonl"))


def test_record_appends_a_line_and_leaves_manifest_json_alone(tmp_path):
    (tmp_path / ".lesionmix").mkdir()
    m = Manifest.new(tmp_path / "manifest.json", tmp_path / ".lesionmix", plan={"n": 3})
    m.save()
    before = (tmp_path / "manifest.json").read_bytes()
    stat = (tmp_path / "manifest.json").stat()
    for k in range(3):
        m.record(f"c{k}", {"k": k, "status": "written", "files": [], "sizes": []})
    assert (tmp_path / "manifest.json").read_bytes() == before
    assert (tmp_path / "manifest.json").stat().st_ino == stat.st_ino  # not replaced
    lines = _journal(tmp_path)[0].read_text().splitlines()
    assert [json.loads(x)["case"] for x in lines] == ["c0", "c1", "c2"]
    back = Manifest.load(tmp_path / "manifest.json")
    assert list(back.written()) == ["c0", "c1", "c2"]
    # compaction: everything in manifest.json, no journal left
    m.save(final=True)
    assert _journal(tmp_path) == []
    plain = json.loads((tmp_path / "manifest.json").read_text())
    assert list(plain["cases"]) == ["c0", "c1", "c2"] and "journal" not in plain


def test_a_torn_last_line_is_ignored(tmp_path):
    (tmp_path / ".lesionmix").mkdir()
    m = Manifest.new(tmp_path / "manifest.json", tmp_path / ".lesionmix", plan={})
    m.save()
    m.record("a", {"status": "written"})
    m.record("b", {"status": "written"})
    j = _journal(tmp_path)[0]
    j.write_bytes(j.read_bytes()[:-9])  # killed while appending b's line
    assert list(Manifest.load(tmp_path / "manifest.json").written()) == ["a"]


def test_a_whole_save_starts_a_new_journal(tmp_path):
    (tmp_path / ".lesionmix").mkdir()
    m = Manifest.new(tmp_path / "manifest.json", tmp_path / ".lesionmix", plan={})
    m.save()
    m.record("a", {"status": "written"})
    del m.cases["a"]  # e.g. the clean-up found its files gone
    m.save()
    assert Manifest.load(tmp_path / "manifest.json").cases == {}
    assert len(_journal(tmp_path)) <= 1


def test_a_run_ends_with_a_compacted_manifest(tmp_path):
    inp = make_nnunet(tmp_path / "in", n_cases=2, shape=(8, 12, 12), channels=1)
    out = tmp_path / "out"
    s = generate(GenerateOptions(input=inp, output=out, n=6, progress=False), say=lambda m: None)
    assert s.exit_code == 0
    assert _journal(out) == []
    plain = json.loads((out / "manifest.json").read_text())
    assert len(plain["cases"]) == 6 and plain["state"] == "complete"
    assert verify_output(out)[1] == []


@pytest.mark.slow
def test_sigkill_leaves_a_journal_that_resume_reads(tmp_path):
    inp = make_nnunet(tmp_path / "in", n_cases=2, shape=(12, 24, 24), channels=1)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "napari_lesionmix.cli", "generate", str(inp), str(out),
           "--n", "40", "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        try:
            if len(Manifest.load(out / "manifest.json").written()) >= 3:
                break
        except (ValueError, FileNotFoundError):
            pass
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _journal(out)  # the cases so far are in the journal, not in manifest.json
    done = len(Manifest.load(out / "manifest.json").written())
    assert done >= 3
    res = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"{done} from the previous run" in res.stdout
    assert _journal(out) == [] and verify_output(out)[1] == []
