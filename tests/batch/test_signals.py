"""Item 5: SIGTERM (what SLURM and Kubernetes send) stops a run like Ctrl-C: the cases that
finished are recorded, unfinished ones removed, the manifest (state ``interrupted``) and
dataset.json agree with the files, no process is left behind, exit code 143; ``--resume``
then gives the arrays of a clean run.

Kubernetes signals the main process only; ``scancel`` signals every process of the job
step: both are tested, with 1 and 2 workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from napari_lesionmix.batch.manifest import Manifest
from napari_lesionmix.batch.verify import verify_output
from tests.batch.helpers import make_nnunet
from tests.batch.outputs import assert_same_arrays, clean_run, temporaries

N = 30


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_nnunet(tmp_path_factory.mktemp("in") / "Dataset007_Term", n_cases=3,
                       shape=(16, 40, 40), channels=1)


@pytest.fixture(scope="module")
def clean(dataset, tmp_path_factory):
    return clean_run(dataset, tmp_path_factory.mktemp("clean"), N)


def start(dataset, out, workers, *extra):
    cmd = [sys.executable, "-m", "napari_lesionmix.cli", "generate", str(dataset), str(out),
           "--n", str(N), "--workers", str(workers), "--no-progress", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def session_processes(sid: int) -> list[int]:
    """Processes of session ``sid`` (the run and everything it started)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                out.append(int(d.name))
    return out


def wait_for(out: Path, proc, k: int, timeout=60.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"finished too early: {proc.communicate()}")
        try:
            if len(Manifest.load(out / "manifest.json").written()) >= k:
                return
        except (ValueError, FileNotFoundError):
            pass
        time.sleep(0.005)
    raise AssertionError("timed out")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("whom", ["main", "group"])
def test_sigterm_stops_cleanly(dataset, clean, tmp_path, workers, whom):
    out = tmp_path / "out"
    proc = start(dataset, out, workers)
    wait_for(out, proc, 3)
    if whom == "main":
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and stdout.startswith("interrupted:"), (stdout, stderr)
    t0 = time.monotonic()
    while session_processes(proc.pid) and time.monotonic() - t0 < 10:
        time.sleep(0.1)
    assert session_processes(proc.pid) == []  # no worker, no forkserver left
    m = Manifest.load(out / "manifest.json")
    assert m.data["state"] == "interrupted" and 3 <= len(m.written()) < N
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 3 + len(m.written())
    assert temporaries(out) == []
    assert verify_output(out)[1] == []
    proc = start(dataset, out, workers, "--resume")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert_same_arrays(out, clean)


@pytest.mark.slow
def test_sigterm_while_reading_the_input_writes_nothing(tmp_path):
    big = make_nnunet(tmp_path / "in", n_cases=12, shape=(48, 96, 96), channels=2)
    out = tmp_path / "out"
    proc = start(big, out, 1)
    seen = []
    for line in proc.stderr:  # the run says when it starts reading (a fixed wait was
        seen.append(line)     # sometimes past the reading once that became faster)
        if line.startswith("reading and checking"):
            break
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    stderr = "".join(seen) + stderr
    assert proc.returncode == 143 and "Traceback" not in stderr, stderr
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*")), list(out.rglob("*"))
