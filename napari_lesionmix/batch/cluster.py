"""Connecting to a Dask cluster (``--scheduler``) before a run reads or writes anything.

:func:`connect_scheduler` checks the address, reaches the scheduler (a plain TCP connect
first, so a closed port or an unknown host is known in a second, not after Dask's
retries), waits briefly for a worker, and asks every worker which napari-lesionmix it
imports: a bad address, an unreachable scheduler, a cluster without workers, or workers
without this package (or with another version) stop the run with a message and exit
code 2, before the input is read and before OUTPUT is touched.
"""

from __future__ import annotations

import re
import socket

from .options import RunError

__all__ = ["CONNECT_TIMEOUT", "WORKER_TIMEOUT", "connect_scheduler", "worker_version"]

#: seconds to reach the scheduler
CONNECT_TIMEOUT = 10.0
#: seconds to wait for the cluster's first worker
WORKER_TIMEOUT = 20.0
_ADDRESS = re.compile(r"^(?P<scheme>tcp|tls)://(?P<host>\[[^\]]+\]|[^:/\[\]]+):(?P<port>\d+)/?$")


def worker_version() -> str:
    """The napari-lesionmix version a Dask worker imports (run on each worker)."""
    from .. import __version__
    return __version__


def connect_scheduler(address: str):
    """A ``distributed.Client`` connected to ``address`` with at least one worker that runs
    this version of napari-lesionmix.

    Raises
    ------
    RunError
        Dask distributed is not installed, the address is malformed, the scheduler
        cannot be reached, no worker joins within :data:`WORKER_TIMEOUT` s, or a worker
        cannot import napari-lesionmix or runs another version.
    """
    try:
        from distributed import Client
    except ImportError:
        raise RunError("--scheduler needs Dask distributed: pip install "
                       "'napari-lesionmix[distributed]'") from None
    m = _ADDRESS.match(str(address).strip())
    if m is None:
        raise RunError(f"--scheduler {address!r}: not a scheduler address; expected "
                       "tcp://HOST:PORT (or tls://HOST:PORT)")
    host, port = m["host"].strip("[]"), int(m["port"])
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise RunError(f"--scheduler {address}: cannot connect "
                       f"({exc.strerror or type(exc).__name__}); is the scheduler "
                       "running there?") from None
    try:
        client = Client(address, set_as_default=False, timeout=f"{CONNECT_TIMEOUT:.0f}s")
    except Exception as exc:  # noqa: BLE001 - distributed raises several kinds
        raise RunError(f"--scheduler {address}: cannot connect as a Dask client ({exc})") from None
    try:
        try:
            client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
        except Exception:  # noqa: BLE001 - TimeoutError, or the scheduler went away
            raise RunError(f"--scheduler {address}: no worker joined the cluster within "
                           f"{WORKER_TIMEOUT:.0f} s") from None
        from .. import __version__
        try:
            versions = client.run(worker_version)
        except Exception as exc:  # noqa: BLE001 - e.g. ModuleNotFoundError on a worker
            raise RunError(f"--scheduler {address}: the workers cannot run napari-lesionmix "
                           f"({type(exc).__name__}: {exc}); install version {__version__} "
                           "where they run") from None
        other = {w: v for w, v in versions.items() if v != __version__}
        if other:
            raise RunError(f"--scheduler {address}: workers run napari-lesionmix "
                           f"{sorted(set(other.values()))}, this is {__version__} "
                           f"({', '.join(sorted(other)[:3])}); install the same version")
    except BaseException:
        client.close()
        raise
    return client
