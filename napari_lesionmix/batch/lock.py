"""One run at a time on an OUTPUT folder, on one machine or a shared network folder.

The lock is a file, ``OUTPUT/.lesionmix.lock``, created with ``O_CREAT | O_EXCL``: the
one create that succeeds holds the lock. That create is atomic on local file systems and
on NFS version 3 and later (Linux clients since 2.6.5), and it does not depend on a lock
service: ``fcntl``/``flock`` locks on NFS need the NLM service (v3) or the server's lock
state (v4), and on a share mounted with ``nolock`` they are silently local to each
machine, so two machines would both "hold" them. The file holds who holds it: host,
boot id, pid and the process's start time, a token, when it started.

A lock is **stale**, and the next run takes it over, when its holder is gone:

- same host (and boot): the pid is not running, or runs another process (its start time
  differs: the pid was reused); another boot of the same host: gone;
- another host: its heartbeat stopped. The holder refreshes the file's modification time
  every :data:`HEARTBEAT` seconds; a contender compares it with the time the file
  server gives a file it creates (so clocks of the machines need not agree) and takes
  over after :data:`STALE_AFTER` seconds of silence.

Taking over renames the stale file away (only one contender's rename succeeds), checks
that the renamed file is the one judged stale (else puts it back), and creates a new lock.
The holder's heartbeat also checks that the file still holds its token: if another run
took it over (this one was suspended for longer than :data:`STALE_AFTER`), :attr:`lost`
says so and the run stops without writing more.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from ..core.io_utils import parse_json
from .layout import LOCK_NAME
from .options import RunError

__all__ = ["HEARTBEAT", "STALE_AFTER", "TORN_AFTER", "OutputLock", "alive", "boot_id",
           "process_start"]
#: seconds between two refreshes of the lock file's modification time
HEARTBEAT = 30.0
#: seconds without a heartbeat after which another host's lock is stale
STALE_AFTER = 600.0
#: seconds after which a lock file that cannot be parsed is stale
TORN_AFTER = 60.0


def boot_id() -> str:
    """This machine's boot id (Linux), "" elsewhere."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), None if it
    does not run or cannot be told."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs: a zombie (killed, not yet waited for by its parent,
    e.g. a ``subprocess.run`` still reading the pipes the run's workers hold) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: the signal said it exists
    return state not in ("Z", "X", "x")


class OutputLock:
    """The lock on an OUTPUT folder (created if missing).

    Use as a context manager, or :meth:`acquire` / :meth:`release`.

    Raises
    ------
    RunError
        From :meth:`acquire`: the folder is in use by another run (named: host, pid,
        start), or the lock file cannot be created (read-only folder, ...).
    """

    def __init__(self, root: str | Path, what: str = "lesionmix generate"):
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self.what = what
        self.token = uuid.uuid4().hex
        self.held = False
        self.lost = ""
        self.created_root = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ acquire
    def acquire(self) -> OutputLock:
        if not self.root.exists():
            try:
                self.root.mkdir(parents=True)
                self.created_root = True
            except FileExistsError:
                pass
            except OSError as exc:
                raise RunError(f"{self.root}: cannot be created ({exc.strerror})") from None
        for _ in range(3):
            if self._create():
                break
            holder = self._read()
            if holder is None:  # vanished since: create again
                continue
            if holder.get("token") is None:  # torn or being written: look once more
                time.sleep(0.1)
                holder = self._read() or holder
            why = self._stale(holder)
            if not why:
                raise RunError(self._in_use(holder))
            self._take_over(holder)
        else:
            holder = self._read() or {}
            raise RunError(self._in_use(holder))
        self.held = True
        self._thread = threading.Thread(target=self._beat, name="lesionmix-lock",
                                        daemon=True)
        self._thread.start()
        return self

    def _info(self) -> dict:
        return {"host": socket.gethostname(), "boot_id": boot_id(), "pid": os.getpid(),
                "process_start": process_start(os.getpid()), "token": self.token,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "what": self.what}

    def _create(self) -> bool:
        data = (json.dumps(self._info(), indent=1) + "\n").encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        except OSError as exc:
            raise RunError(f"{self.root}: cannot be written: cannot create {self.path.name} "
                           f"({exc.strerror})") from None
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, "short write")
        except OSError as exc:
            os.close(fd)
            self.path.unlink(missing_ok=True)
            raise RunError(f"{self.root}: cannot be written: {self.path.name}: "
                           f"{exc.strerror}") from None
        os.close(fd)
        return True

    def _read(self) -> dict | None:
        """The lock file's fields and ``_mtime``; ``token`` None when it cannot be parsed
        (torn by a kill at its creation); None when there is no lock file."""
        try:
            with open(self.path, "rb") as fh:  # open revalidates NFS's cached attributes
                raw = fh.read()
                mtime = os.fstat(fh.fileno()).st_mtime
        except OSError:
            return None
        try:
            data = parse_json(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {"token": None}
        data["_mtime"] = mtime
        return data

    def _stale(self, holder: dict) -> str:
        """Why the lock of ``holder`` is stale ("" if its run may be alive)."""
        if holder.get("token") is None:  # unreadable: torn by a kill as it was created?
            age = self._server_now() - float(holder.get("_mtime", 0.0))
            return f"unreadable for {age:.0f} s" if age > TORN_AFTER else ""
        if holder.get("host") == socket.gethostname():
            if holder.get("boot_id") and holder.get("boot_id") != boot_id():
                return "its machine has restarted since"
            pid = holder.get("pid")
            if not isinstance(pid, int) or not alive(pid):
                return f"process {pid} is not running"
            start = holder.get("process_start")
            if start is not None and process_start(pid) not in (None, start):
                return f"process {pid} is another program now"
            return ""
        age = self._server_now() - float(holder.get("_mtime", 0.0))
        if age > STALE_AFTER:
            return f"no heartbeat for {age:.0f} s"
        return ""

    def _server_now(self) -> float:
        """The current time by the clock that stamps files in OUTPUT (the file server's on
        a network folder): the modification time of a new file."""
        probe = self.root / f".lesionmix.clock.{self.token[:8]}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o666)
            os.close(fd)
            return probe.stat().st_mtime
        except OSError:
            return time.time()
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()

    def _take_over(self, holder: dict) -> None:
        aside = self.root / f"{LOCK_NAME}.stale-{self.token[:8]}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return  # someone else broke it first: try to create again
        try:
            moved = parse_json(aside.read_text())
        except (OSError, ValueError):
            moved = {}
        if moved.get("token") != holder.get("token"):
            # a fresh lock was created between our read and our rename: put it back
            with contextlib.suppress(OSError):
                os.link(aside, self.path)
        with contextlib.suppress(OSError):
            aside.unlink()

    def _in_use(self, holder: dict) -> str:
        who = (f"lesionmix on {holder.get('host', '?')}, pid {holder.get('pid', '?')}, "
               f"since {holder.get('started', '?')}")
        return (f"{self.root}: in use by {who} ({self.path}); wait for that run to end. If "
                "it is gone (its machine is down), delete that file and run again")

    # ------------------------------------------------------------------ while held
    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            holder = self._read()
            if holder is None or holder.get("token") != self.token:
                if holder is None and self.path.exists():
                    continue  # being rewritten: look again at the next beat
                self.lost = (f"lost the lock on {self.root}: {self.path} was taken over by "
                             f"another run (on {(holder or {}).get('host', '?')}); stopping "
                             "without writing more")
                return
            with contextlib.suppress(OSError):
                os.utime(self.path)  # no times given: the file server's clock

    def check(self) -> str:
        """Why the run must stop ("" while the lock is held)."""
        return self.lost

    # ------------------------------------------------------------------ release
    def release(self) -> None:
        """Stop the heartbeat and delete the lock file if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.held and not self.lost:
            holder = self._read()
            if holder is not None and holder.get("token") == self.token:
                self.path.unlink(missing_ok=True)
        self.held = False

    def discard_root(self) -> None:
        """Remove the OUTPUT folder if this lock created it and it is empty (a refused run
        leaves nothing behind)."""
        if self.created_root:
            with contextlib.suppress(OSError):
                self.root.rmdir()

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
