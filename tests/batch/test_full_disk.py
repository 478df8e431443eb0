"""Item 1 on the batch path: a full OUTPUT disk stops the run with a message and exit code
1, leaves a consistent dataset (manifest, dataset.json and files agree), and ``--resume``
completes it once space is back, with the arrays of a clean run.

OUTPUT is on a real small file system (a tmpfs, ``tests/faults.py``) filled up to the
free space wanted; SimpleITK's writer meets the real ``ENOSPC``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import SimpleITK as sitk

from napari_lesionmix.batch.manifest import Manifest
from napari_lesionmix.batch.options import GenerateOptions
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.batch.verify import verify_output
from tests.batch.helpers import make_nnunet
from tests.batch.outputs import assert_same_arrays, temporaries
from tests.faults import small_disk

N = 24


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_nnunet(tmp_path_factory.mktemp("in") / "Dataset005_Disk", n_cases=3,
                       shape=(16, 40, 40), channels=1)


@pytest.fixture(scope="module")
def clean(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "out"
    s = generate(GenerateOptions(input=dataset, output=out, n=N, progress=False),
                 say=lambda m: None)
    assert s.exit_code == 0
    return out


def _run(dataset, out, resume=False, workers=1):
    said = []
    s = generate(GenerateOptions(input=dataset, output=out, n=N, workers=workers,
                                 resume=resume, progress=False), say=said.append)
    return s, "\n".join(said)


@pytest.mark.parametrize("free_kb", [120, 400])
def test_full_disk_stops_then_resume_completes(dataset, clean, tmp_path, free_kb):
    with small_disk(tmp_path, 8 << 20) as disk:
        out = disk.root / "out"
        disk.fill(free=free_kb << 10)
        try:
            s, said = _run(dataset, out)
        except OSError as exc:  # nothing could be started: the error names the file
            assert "cannot write" in str(exc) and "free" in str(exc), exc
        else:
            assert s.exit_code == 1, said
            assert s.stopped and "no space" in s.stopped.lower(), said
            assert "stopped" in s.line() and "--resume" in s.line()
            assert 0 <= s.written < N
            m = Manifest.load(out / "manifest.json")
            assert m.data["state"] == "incomplete"
            assert verify_output(out)[1] == []  # manifest, dataset.json, files agree
        assert temporaries(out) == []
        disk.release()
        s, said = _run(dataset, out, resume=out.exists())
        assert s.exit_code == 0, said
        assert_same_arrays(out, clean)
        assert verify_output(out)[1] == []


def test_space_freed_mid_write(dataset, clean, tmp_path, monkeypatch):
    """The issue's scenario: SimpleITK writes a file short on a full disk, then space comes
    back (another program deleted a file) before the next file is written: the case must
    not be recorded as written (the old code said "done", with a truncated image)."""
    with small_disk(tmp_path, 8 << 20) as disk:
        out = disk.root / "out"
        original = sitk.ImageFileWriter.Execute
        calls = []

        def execute(self, image, *args):
            calls.append(self.GetFileName())
            if len(calls) != 8:  # a synthesised case's image, well into the run
                return original(self, image, *args)
            disk.fill(free=4 << 10)  # the disk is full for this write only
            try:
                return original(self, image, *args)
            finally:
                disk.release()

        monkeypatch.setattr(sitk.ImageFileWriter, "Execute", execute)
        s, said = _run(dataset, out)
        assert len(calls) >= 8
        assert s.exit_code == 1 and s.stopped, said
        assert "SimpleITK wrote" in s.stopped  # the short write was caught
        assert verify_output(out)[1] == []
        monkeypatch.undo()
        s, said = _run(dataset, out, resume=True)
        assert s.exit_code == 0, said
        assert_same_arrays(out, clean)


@pytest.mark.slow
def test_full_disk_with_two_workers(dataset, clean, tmp_path):
    with small_disk(tmp_path, 8 << 20) as disk:
        out = disk.root / "out"
        disk.fill(free=400 << 10)
        env = dict(os.environ)
        cmd = [sys.executable, "-m", "napari_lesionmix.cli", "generate", str(dataset), str(out),
               "--n", str(N), "--workers", "2", "--no-progress"]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert res.returncode == 1, res.stderr
        assert "Traceback" not in res.stderr
        assert "no space" in res.stderr.lower() and "--resume" in res.stdout
        assert verify_output(out)[1] == []
        assert temporaries(out) == []
        disk.release()
        res = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env=env,
                             timeout=300)
        assert res.returncode == 0, res.stderr
        assert_same_arrays(out, clean)


@pytest.mark.parametrize("command", ["likelihood", "replay"])
def test_single_file_commands_on_a_full_disk(dataset, clean, tmp_path, command):
    with small_disk(tmp_path, 2 << 20) as disk:
        disk.fill(free=8 << 10)
        if command == "likelihood":
            args = ["likelihood", str(dataset), "-o", str(disk.root / "map.nii.gz")]
        else:
            prov = next(iter(sorted((clean / "provenance").iterdir())))
            args = ["replay", str(prov), "-o", str(disk.root / "re")]
        res = subprocess.run([sys.executable, "-m", "napari_lesionmix.cli", *args],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 1, (res.stdout, res.stderr)
        assert "wrote" not in res.stdout and "Traceback" not in res.stderr
        assert "cannot write" in res.stderr and "free" in res.stderr
        left = [p for p in disk.root.rglob("*") if p.is_file() and p.name != ".ballast"]
        assert left == []
        json.dumps(res.stderr)
