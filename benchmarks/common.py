"""What every benchmark shares: where results go, scratch folders, and busy-machine checks.

Results are printed and written to a temporary file; ``--save`` writes them to
``benchmarks/results/<name>.json`` (the committed figures), ``--out FILE`` anywhere else.
Scratch data (generated cohorts, outputs) live in a temporary folder that is removed at
the end, so a benchmark leaves nothing in the repository unless asked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def output_args(parser, name: str) -> None:
    """Add ``--save`` and ``--out`` to a benchmark's parser."""
    parser.add_argument("--save", action="store_true",
                        help=f"write the figures to benchmarks/results/{name}.json (the "
                             "committed ones); by default they go to a temporary file")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the figures to this file instead (default: a temporary "
                             "file, or benchmarks/results with --save)")


def portable(value):
    """``value`` (a benchmark's figures) with every absolute path made relative to the
    repository, or cut to its file name when outside it: saved figures name no machine's
    folders.

    Examples
    --------
    >>> portable({"case": str(ROOT / "napari_lesionmix" / "x.nii.gz"), "n": [1, "/tmp/a/b.json"]})
    {'case': 'napari_lesionmix/x.nii.gz', 'n': [1, 'b.json']}
    """
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value) and "\n" not in value:
        path = Path(value)
        try:
            return path.resolve().relative_to(ROOT.resolve()).as_posix()
        except ValueError:
            return path.name
    return value


def save(result: dict, args, name: str) -> Path:
    """Write ``result`` (its paths made :func:`portable`) where ``args`` say; return the
    path (also printed)."""
    result = portable(result)
    if args.out is not None:
        path = args.out
    elif args.save:
        path = HERE / "results" / f"{name}.json"
    else:
        fd, tmp = tempfile.mkstemp(prefix=f"lesionmix-{name}-", suffix=".json")
        os.close(fd)
        path = Path(tmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"saved {path}" + ("" if args.save or args.out else
                             " (pass --save to update benchmarks/results)"))
    return path


@contextmanager
def scratch(prefix: str = "lesionmix-bench-"):
    """A temporary folder, removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def brain_cohort(folder: Path, n: int, *args: str) -> Path:
    """Generate ``n`` 1 mm brain cases into ``folder/brain_mr`` (extra generator options in
    ``args``, e.g. ``"--channels", "t1,flair"``); return the dataset folder."""
    subprocess.run([sys.executable, "-m", "napari_lesionmix.sample_data", "brain",
                    "--resolution", "1", "--out", str(folder), "--n", str(n), *args],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return folder / "brain_mr"


class ForeignCPU:
    """CPU seconds used by processes outside this process group while the block runs.

    The machine may be shared; a run during which other processes used the CPUs does not
    measure our code. Sampled from /proc every 0.1 s (Linux only; 0 elsewhere).
    """

    def __init__(self):
        self.seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def _sample(self) -> dict:
        me = os.getpgid(0)
        out = {}
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                f = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(f[2]) != me:  # field 5 of /proc/pid/stat: process group
                out[d.name] = (int(f[11]) + int(f[12])) / self._tick
        return out

    def _run(self):
        prev = self._sample()
        while not self._stop.wait(0.1):
            cur = self._sample()
            self.seconds += sum(max(v - prev.get(k, v), 0.0) for k, v in cur.items())
            prev = cur

    def __enter__(self):
        if Path("/proc/self/stat").exists():
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def clean(self, elapsed: float, share: float = 0.05) -> bool:
        """True when others used less than ``share`` of the CPUs over ``elapsed`` s."""
        return self.seconds < share * elapsed * (os.cpu_count() or 1)
