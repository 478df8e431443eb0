"""Nothing lost: a real `lesionmix generate` process killed (SIGKILL) or interrupted
(SIGINT) halfway, then resumed."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import napari_lesionmix
from napari_lesionmix.batch.manifest import Manifest
from napari_lesionmix.batch.options import GenerateOptions
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.batch.verify import verify_output
from napari_lesionmix.core.image_io import read_image
from tests.batch.helpers import make_nnunet

N = 30
ROOT = Path(napari_lesionmix.__file__).resolve().parent.parent


def start(inp, out, *extra, workers=1):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "napari_lesionmix.cli", "generate", str(inp), str(out),
           "--n", str(N), "--workers", str(workers), "--no-progress", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, text=True)


def wait_for_cases(out: Path, k: int, proc, timeout=60.0) -> int:
    """Wait until the manifest lists at least ``k`` written cases; return how many."""
    path = out / "manifest.json"
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"finished too early: {proc.communicate()}")
        try:
            n = len(Manifest.load(path).written())
        except (ValueError, FileNotFoundError):
            n = 0
        if n >= k:
            return n
        time.sleep(0.005)
    raise AssertionError("timed out waiting for cases")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_nnunet(tmp_path_factory.mktemp("in") / "Dataset003_Kill", n_cases=3,
                       shape=(16, 32, 32), channels=1)


@pytest.fixture(scope="module")
def clean(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "out"
    s = generate(GenerateOptions(input=dataset, output=out, n=N, workers=1, progress=False),
                 say=lambda m: None)
    assert s.exit_code == 0
    return out


def check_complete_and_equal(out: Path, clean: Path):
    # no duplicated manifest entries
    pairs = json.loads((out / "manifest.json").read_text(),
                       object_pairs_hook=lambda kv: (kv, dict(kv)))[1]["cases"]
    assert len(pairs[0]) == len(pairs[1]) == N
    m = Manifest.load(out / "manifest.json")
    assert len(m.written()) == N and m.data["state"] == "complete"
    # exactly the expected files, no temporaries, none corrupt
    files = {p.relative_to(out).as_posix() for d in ("imagesTr", "labelsTr", "provenance")
             for p in (out / d).iterdir()}
    want = {p.relative_to(clean).as_posix() for d in ("imagesTr", "labelsTr", "provenance")
            for p in (clean / d).iterdir()}
    assert files == want
    for rel in files:
        if rel.endswith(".gz"):
            with gzip.open(out / rel) as fh:  # CRC and length checked to the end
                while fh.read(1 << 20):
                    pass
    n, problems = verify_output(out)
    assert problems == [] and n == N + 3
    for rel in files:
        if rel.endswith(".nii.gz"):
            assert np.array_equal(read_image(out / rel)[0], read_image(clean / rel)[0]), rel
        else:
            assert json.loads((out / rel).read_text()) == json.loads((clean / rel).read_text())


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_then_resume(dataset, clean, tmp_path, workers):
    out = tmp_path / "out"
    proc = start(dataset, out, workers=workers)
    done = wait_for_cases(out, 3, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, workers included
    proc.wait()
    before = len(Manifest.load(out / "manifest.json").written())
    assert 3 <= before < N and done <= before
    # even killed, nothing half-written sits where nnU-Net looks: temporaries live in
    # .lesionmix/tmp until they are renamed into place
    for folder in ("imagesTr", "labelsTr"):
        assert not [p for p in (out / folder).iterdir() if p.name.startswith(".")]
    proc = start(dataset, out, "--resume", workers=workers)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert f"{N}/{N} synthesised cases complete" in stdout
    assert f"{before} from the previous run" in stdout
    check_complete_and_equal(out, clean)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_cleanly(dataset, clean, tmp_path, workers):
    out = tmp_path / "out"
    proc = start(dataset, out, workers=workers)
    wait_for_cases(out, 2, proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stdout.startswith("interrupted:")
    m = Manifest.load(out / "manifest.json")
    assert m.data["state"] == "interrupted" and 2 <= len(m.written()) < N
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".") and p.is_file()]
    assert leftovers == []  # no temporary file
    assert verify_output(out)[1] == []  # manifest, dataset.json and files agree
    proc = start(dataset, out, "--resume", workers=workers)
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    check_complete_and_equal(out, clean)
