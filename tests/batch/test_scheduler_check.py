"""Item 7: a bad ``--scheduler`` is found before anything is read, written or deleted:
exit code 2 within seconds, OUTPUT untouched (a previous run kept, even with
--overwrite)."""

from __future__ import annotations

import socket
import time

import pytest

from napari_lesionmix.cli import main
from tests.batch.helpers import make_nnunet


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_nnunet(tmp_path_factory.mktemp("in") / "Dataset008_Sched", n_cases=2,
                       shape=(8, 12, 12), channels=1)


@pytest.mark.parametrize("address", ["closed", "tcp://no-such-host.invalid:8786",
                                     "not an address", "tcp://127.0.0.1:notaport"])
def test_bad_scheduler_fails_fast_and_touches_nothing(ds, tmp_path, capsys, address):
    if address == "closed":
        address = f"tcp://127.0.0.1:{_closed_port()}"
    out = tmp_path / "out"
    t0 = time.monotonic()
    rc = main(["generate", str(ds), str(out), "--n", "2", "--scheduler", address,
               "--no-progress"])
    assert rc == 2
    assert time.monotonic() - t0 < 15
    err = capsys.readouterr().err
    assert "--scheduler" in err and "Traceback" not in err
    assert not out.exists()


def test_bad_scheduler_keeps_the_previous_run(ds, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", str(ds), str(out), "--n", "2", "--workers", "1",
                 "--no-progress"]) == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    rc = main(["generate", str(ds), str(out), "--n", "2", "--overwrite", "--scheduler",
               f"tcp://127.0.0.1:{_closed_port()}", "--no-progress"])
    assert rc == 2
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
