"""The fault-injection suite: a real ``lesionmix generate`` process meets a fault, and every
time the end is either a complete, verified dataset or a clear refusal, and ``--resume``
(or the same command again) then gives the arrays of a clean run.

Here: SIGTERM and SIGKILL at random moments (from the moment the run creates OUTPUT, about
2.5 s after the process starts, to about 5 s later: taking the lock, reading the input,
writing cases, finishing, or after the end), with 1 and 2 workers, and an input ``.nii.gz`` with a byte flipped at several offsets. The other
faults of the suite live beside their fixes: a full disk and space freed mid-write in
``test_full_disk.py``, two concurrent runs in ``test_lock.py``, a kill after a few cases
in ``test_kill.py`` and ``test_signals.py``.

The moments come from a seeded generator (``LESIONMIX_FAULT_SEED``, default fixed, so a
failure can be replayed); ``LESIONMIX_FAULT_TRIALS`` (default 1) moments per signal and
worker count.
"""

from __future__ import annotations

import os
import random
import shutil
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
from tests.batch.test_signals import session_processes
from tests.faults import flip_byte

N = 20
SEED = int(os.environ.get("LESIONMIX_FAULT_SEED", "20261201"))
TRIALS = int(os.environ.get("LESIONMIX_FAULT_TRIALS", "1"))
#: (signal, who gets it): Kubernetes signals the main process; SLURM's scancel and a kill
#: after its grace period signal every process; a SIGKILL of the main process alone
#: leaves workers that must end themselves
FAULTS = [("TERM", "main"), ("KILL", "group"), ("KILL", "main")]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_nnunet(tmp_path_factory.mktemp("in") / "Dataset011_Faults", n_cases=3,
                       shape=(16, 40, 40), channels=1)


@pytest.fixture(scope="module")
def clean(dataset, tmp_path_factory):
    return clean_run(dataset, tmp_path_factory.mktemp("clean"), N)


def run(dataset, out, workers, *extra, wait=True):
    cmd = [sys.executable, "-m", "napari_lesionmix.cli", "generate", str(dataset), str(out),
           "--n", str(N), "--workers", str(workers), "--no-progress", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    if wait:
        proc.stdout_text, proc.stderr_text = proc.communicate(timeout=300)
    return proc


def assert_complete(out: Path, clean: Path, provenance: bool = True):
    m = Manifest.load(out / "manifest.json")
    assert m.data["state"] == "complete" and len(m.written()) == N
    assert verify_output(out)[1] == []
    assert temporaries(out) == []
    assert_same_arrays(out, clean, provenance)


def moments():
    """(signal, whom, workers, seconds after OUTPUT appears) from the seeded generator."""
    rng = random.Random(SEED)
    out = []
    for sig, whom in FAULTS:
        for workers in (1, 2):
            for _ in range(TRIALS):
                out.append((sig, whom, workers, round(rng.uniform(0.0, 5.0), 2)))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("sig,whom,workers,after", moments())
def test_signal_at_a_random_moment(dataset, clean, tmp_path, sig, whom, workers, after):
    out = tmp_path / "out"
    proc = run(dataset, out, workers, wait=False)
    while not out.exists() and proc.poll() is None:
        time.sleep(0.005)
    t0 = time.monotonic()
    while time.monotonic() - t0 < after and proc.poll() is None:
        time.sleep(0.005)
    number = signal.SIGTERM if sig == "TERM" else signal.SIGKILL
    if proc.poll() is None:
        if whom == "main":
            proc.send_signal(number)
        else:
            os.killpg(proc.pid, number)
    stdout, stderr = proc.communicate(timeout=120)
    assert "Traceback" not in stderr, stderr
    assert proc.returncode in (0, 143 if sig == "TERM" else -9), (proc.returncode, stderr)
    deadline = time.monotonic() + 15
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_processes(proc.pid) == []  # no worker, no forkserver left behind
    # nothing half-written where nnU-Net looks
    for folder in ("imagesTr", "labelsTr"):
        if (out / folder).is_dir():
            assert not [p for p in (out / folder).iterdir() if p.name.startswith(".")]
    if proc.returncode == 0:  # it finished before the signal
        assert_complete(out, clean)
        return
    if sig == "TERM" and (out / "manifest.json").exists():
        # a clean stop: what the manifest lists agrees with the files and dataset.json
        assert temporaries(out) == []
        assert verify_output(out)[1] == [], verify_output(out)
    again = run(dataset, out, workers, *(["--resume"] if (out / "manifest.json").exists()
                                         else []))
    assert again.returncode == 0, (again.stdout_text, again.stderr_text)
    assert_complete(out, clean)


#: where a byte of one input .nii.gz is flipped: the gzip header's MTIME (harmless: the
#: same voxels), the first deflate block, a quarter, half and 90 % in, the CRC-32 and the
#: stored length
OFFSETS = [5, 12, 0.25, 0.5, 0.9, -8, -2]


@pytest.mark.slow
@pytest.mark.parametrize("where", OFFSETS)
def test_corrupt_input_byte(dataset, clean, tmp_path, where):
    bad = tmp_path / dataset.name
    shutil.copytree(dataset, bad)
    victim = bad / "imagesTr" / "sub01_0000.nii.gz"
    size = victim.stat().st_size
    flip_byte(victim, where if not isinstance(where, int) or where >= 0 else size + where)
    out = tmp_path / "out"
    first = run(bad, out, 1)
    assert "Traceback" not in first.stderr_text, first.stderr_text
    if first.returncode == 0:  # the flip changed nothing the data depends on
        assert_complete(out, clean, provenance=False)  # (it names the input's folder)
        return
    # refused: named, nothing written
    assert first.returncode == 2, (first.returncode, first.stderr_text)
    assert "sub01_0000.nii.gz" in first.stderr_text
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))
    # --skip-bad: the bad case named and left out, the rest a complete, verified dataset
    skipped = run(bad, out, 1, "--skip-bad")
    assert skipped.returncode == 0, skipped.stderr_text
    assert "sub01" in skipped.stderr_text
    m = Manifest.load(out / "manifest.json")
    assert m.data["state"] == "complete" and len(m.written()) == N
    assert verify_output(out)[1] == []
    assert not list((out / "imagesTr").glob("sub01_*"))


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.1, 0.4])
def test_sigterm_while_the_pool_starts(dataset, clean, tmp_path, delay):
    """SIGTERM just as the worker pool starts (the parent waits for the forkserver to start
    a worker): the stop waits for that start, so the worker is known and stopped; it used
    to run on unknown, and fail with a traceback on the pool's removed semaphores."""
    out = tmp_path / "out"
    proc = run(dataset, out, 2, wait=False)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("synthesising"):
            time.sleep(delay)
            proc.send_signal(signal.SIGTERM)
            break
    stdout, stderr = proc.communicate(timeout=120)
    stderr = "".join(seen) + stderr
    assert proc.returncode == 143 and "Traceback" not in stderr, stderr
    deadline = time.monotonic() + 15
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_processes(proc.pid) == []
    assert verify_output(out)[1] == []
    again = run(dataset, out, 2, "--resume")
    assert again.returncode == 0, again.stderr_text
    assert_complete(out, clean)


@pytest.mark.slow
def test_workers_end_when_the_killed_run_is_not_yet_waited_for(dataset, tmp_path):
    """SIGKILL of the run alone, its parent (here the test, as ``subprocess.run`` does) still
    reading the output pipes the workers hold: the run is a zombie until the pipes close.
    The workers must see it as gone and end; they used to wait for it forever."""
    out = tmp_path / "out"
    proc = run(dataset, out, 2, wait=False)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if len(Manifest.load(out / "manifest.json").written()) >= 2:
                break
        except (ValueError, FileNotFoundError):
            pass
        time.sleep(0.01)
    assert proc.poll() is None, "finished too early"
    os.kill(proc.pid, signal.SIGKILL)  # not reaped until communicate() returns
    try:
        proc.communicate(timeout=30)
    finally:
        for pid in session_processes(proc.pid):
            os.kill(pid, signal.SIGKILL)
    assert proc.returncode == -9


AFTER_THE_RUN = """
import os, signal, sys
from napari_lesionmix import cli
from napari_lesionmix.batch import options

line = options.RunSummary.line


def line_then_sigterm(self):
    os.kill(os.getpid(), signal.SIGTERM)  # the run has finished: its handlers are gone
    return line(self)


if __name__ == "__main__":  # the pool's workers import this file too
    options.RunSummary.line = line_then_sigterm
    sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigterm_after_the_run_while_its_summary_is_printed(dataset, clean, tmp_path):
    """SIGTERM after the run has finished, while the command prints its summary: exit code
    143 and a message (it used to be a kill by the signal, -15, the end of a random
    moment's trial), and the dataset is complete."""
    out = tmp_path / "out"
    script = tmp_path / "after_the_run.py"
    script.write_text(AFTER_THE_RUN)
    proc = subprocess.run([sys.executable, str(script), "generate", str(dataset), str(out),
                           "--n", str(N), "--no-progress"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 143, (proc.returncode, proc.stderr)
    assert "terminated (SIGTERM)" in proc.stderr and "Traceback" not in proc.stderr
    assert_complete(out, clean)


WHILE_EXITING = """
import atexit, os, signal, sys, time
from napari_lesionmix import cli


def sigterm_while_exiting():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)  # the signal is delivered while the process is still ending


if __name__ == "__main__":  # the pool's workers import this file too
    atexit.register(sigterm_while_exiting)
    sys.exit(cli.main())  # as the console script calls it: the process's own command
"""


@pytest.mark.slow
def test_sigterm_while_the_finished_process_exits(dataset, clean, tmp_path):
    """SIGTERM after the command has returned, while the process ends (threads joined,
    pool finalisers): the run is complete and the exit code is the run's (it used to be a
    kill by the signal, -15, now and then in the random-moment trials)."""
    out = tmp_path / "out"
    script = tmp_path / "while_exiting.py"
    script.write_text(WHILE_EXITING)
    proc = subprocess.run([sys.executable, str(script), "generate", str(dataset), str(out),
                           "--n", str(N), "--no-progress"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert_complete(out, clean)
