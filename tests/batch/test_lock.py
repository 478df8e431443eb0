"""Item 4: one run at a time on an OUTPUT folder. A second run (plain, --resume or
--overwrite), or ``lesionmix splits``, on a folder in use refuses at once with exit code 2
and names the run holding it; the first run ends complete, as if alone.

The lock is a file, ``OUTPUT/.lesionmix.lock``, created with ``O_CREAT | O_EXCL`` (atomic
on local file systems and on NFS v3+), holding the host, pid, process start time and a
token, its modification time refreshed while the run lives. A lock whose process is gone
(same host) or whose heartbeat stopped long ago (another host) is stale and taken over.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from napari_lesionmix.batch import lock as lockmod
from napari_lesionmix.batch.layout import LOCK_NAME
from napari_lesionmix.batch.lock import OutputLock
from napari_lesionmix.batch.manifest import Manifest
from napari_lesionmix.batch.options import GenerateOptions, RunError
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.batch.verify import verify_output
from tests.batch.helpers import make_nnunet
from tests.batch.outputs import assert_same_arrays, clean_run

N = 160


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_nnunet(tmp_path_factory.mktemp("in") / "Dataset006_Lock", n_cases=3,
                       shape=(16, 48, 48), channels=1)


@pytest.fixture(scope="module")
def clean(dataset, tmp_path_factory):
    return clean_run(dataset, tmp_path_factory.mktemp("clean"), N)


def cli(*args):
    return [sys.executable, "-m", "napari_lesionmix.cli", *map(str, args)]


def wait_running(out, proc, k=1, timeout=60):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, proc.communicate()
        try:
            if len(Manifest.load(out / "manifest.json").written()) >= k:
                return
        except (ValueError, FileNotFoundError):
            pass
        time.sleep(0.01)
    raise AssertionError("the first run never started")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_second_run_refuses_at_once(dataset, clean, tmp_path, workers):
    out = tmp_path / "out"
    first = subprocess.Popen(cli("generate", dataset, out, "--n", N, "--workers", workers,
                                 "--no-progress"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    wait_running(out, first)
    t0 = time.monotonic()
    others = [subprocess.Popen(cli("generate", dataset, out, "--n", N, "--workers", 1,
                                   "--no-progress", *extra), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
              for extra in ([], ["--resume"], ["--overwrite"])]
    others.append(subprocess.Popen(cli("splits", out), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True))
    for other in others:
        _, err = other.communicate(timeout=120)
        assert other.returncode == 2, (other.args, err)
        assert "in use" in err and str(first.pid) in err and "Traceback" not in err
    assert first.poll() is None  # they all refused while the first one ran
    assert time.monotonic() - t0 < 20  # at once: before reading the input
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert f"{N}/{N} synthesised cases complete" in stdout
    assert verify_output(out)[1] == []
    assert_same_arrays(out, clean)
    assert not (out / LOCK_NAME).exists()


def _write_lock(root, **fields):
    root.mkdir(parents=True, exist_ok=True)
    info = {"host": socket.gethostname(), "pid": os.getpid(), "started": "x", "token": "t0",
            "boot_id": lockmod.boot_id(), "process_start": lockmod.process_start(os.getpid())}
    info.update(fields)
    (root / LOCK_NAME).write_text(json.dumps(info))
    return root / LOCK_NAME


def test_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    _write_lock(tmp_path / "out", pid=int(dead), process_start=123)
    with OutputLock(tmp_path / "out") as lk:
        assert json.loads((tmp_path / "out" / LOCK_NAME).read_text())["token"] == lk.token
    assert not (tmp_path / "out" / LOCK_NAME).exists()


def test_lock_of_a_killed_process_not_yet_waited_for_is_taken_over(tmp_path):
    """A run killed while its parent has not reaped it (a zombie) holds nothing."""
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    t0 = time.monotonic()
    while lockmod.alive(zombie.pid) and time.monotonic() - t0 < 30:
        time.sleep(0.05)
    assert zombie.returncode is None  # not waited for: a zombie, yet os.kill(pid, 0) works
    os.kill(zombie.pid, 0)
    _write_lock(tmp_path / "out", pid=zombie.pid,
                process_start=lockmod.process_start(zombie.pid))
    with OutputLock(tmp_path / "out"):
        pass
    zombie.wait()


def test_lock_of_a_reused_pid_is_stale(tmp_path):
    _write_lock(tmp_path / "out", pid=os.getpid(), process_start=1)  # another start time
    with OutputLock(tmp_path / "out"):
        pass


def test_lock_of_a_live_process_refuses(tmp_path):
    _write_lock(tmp_path / "out")  # this very process
    with pytest.raises(RunError, match="in use by lesionmix .* pid") as err:
        OutputLock(tmp_path / "out").acquire()
    assert str(tmp_path / "out" / LOCK_NAME) in str(err.value)


def test_lock_of_another_host(tmp_path):
    path = _write_lock(tmp_path / "out", host="node-17.cluster", boot_id="other")
    with pytest.raises(RunError, match="node-17.cluster"):  # heartbeat fresh: refused
        OutputLock(tmp_path / "out").acquire()
    old = time.time() - 2 * lockmod.STALE_AFTER
    os.utime(path, (old, old))  # no heartbeat for long: the run there is gone
    with OutputLock(tmp_path / "out") as lk:
        assert lk.token != "t0"


def test_heartbeat_refreshes_and_a_lost_lock_stops_the_run(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(lockmod, "HEARTBEAT", 0.05)
    out = tmp_path / "out"
    seen = []

    def steal(res):  # another run took the lock over (e.g. this one was suspended)
        if len(seen) == 3:
            _write_lock(out, host="elsewhere", token="theirs", boot_id="b")
        seen.append(res.name)
        time.sleep(0.1)

    s = generate(GenerateOptions(input=dataset, output=out, n=N, progress=False),
                 say=lambda m: None, on_result=steal)
    assert s.exit_code == 1 and "lock" in s.stopped
    assert len(seen) < N
    assert json.loads((out / LOCK_NAME).read_text())["token"] == "theirs"  # left alone


def test_refused_run_leaves_no_folder_behind(dataset, tmp_path):
    out = tmp_path / "new" / "out"
    with pytest.raises(RunError):
        generate(GenerateOptions(input=dataset, output=out, n=0, progress=False),
                 say=lambda m: None)
    assert not out.exists()
