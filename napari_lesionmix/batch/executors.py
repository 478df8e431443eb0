"""Where the tasks run: in this process, a local process pool, or a Dask cluster.

Every executor runs the same :func:`~napari_lesionmix.batch.tasks.run_task` on the same
:class:`~napari_lesionmix.batch.tasks.TaskSpec` objects and yields their
:class:`~napari_lesionmix.batch.tasks.TaskResult` as they finish, so what is written does
not depend on the executor. At most ``2 × workers`` tasks are in flight; the rest wait in
the parent, so stopping never has to cancel queued work on the workers.

Ctrl-C (SIGINT): in this process it interrupts the running case at once (its atomic
writes remove their temporary files; a case being written in the background finishes
first, and the runner removes it as unrecorded). With a pool or a cluster the first Ctrl-C submits
nothing more and waits for the running cases to finish (they are recorded); a second
Ctrl-C, or SIGTERM, stops the workers now (SIGKILL; their unfinished cases are cleaned up
by the runner). Pool workers ignore SIGINT and SIGTERM (the parent decides) and end
themselves when the parent is gone, so a killed run leaves no worker writing cases nobody
records (see :func:`~napari_lesionmix.batch.tasks.worker_init`).
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator

from ..core.case import Case
from .signals import Interrupt, uncut
from .tasks import (
    TaskResult,
    TaskSpec,
    compute_task,
    parent_identity,
    run_task,
    worker_init,
    write_task,
)

__all__ = ["execute", "describe_executor"]


def describe_executor(workers: int, scheduler: str | None) -> str:
    if scheduler:
        return f"Dask cluster at {scheduler}"
    return "this process" if workers <= 1 else f"{workers} worker processes"


def execute(specs: list[TaskSpec], workers: int = 1, scheduler: str | None = None,
            interrupt: Interrupt | None = None,
            memory: Callable[[str], Case] | None = None) -> Iterator[TaskResult]:
    """Run the tasks; yield each result as it finishes (in completion order).

    Parameters
    ----------
    specs : list of TaskSpec
    workers : int
        1 runs in this process; more starts a process pool of that size.
    scheduler : str or distributed.Client, optional
        A Dask distributed scheduler: its address (``tcp://host:port``) or a client
        connected to it (:func:`~napari_lesionmix.batch.cluster.connect_scheduler`);
        overrides ``workers``.
    interrupt : Interrupt, optional
        Checked between tasks; when set, nothing more is submitted.
    memory : callable(source name) -> Case, optional
        The source cases in memory: the tasks run in this process on them.
    """
    interrupt = interrupt or Interrupt()
    if memory is not None:
        return _inprocess(specs, interrupt, memory)
    if scheduler:
        return _dask(specs, scheduler, interrupt)
    if workers <= 1:
        return _inprocess(specs, interrupt)
    return _pool(specs, workers, interrupt)


#: a computed case larger than this in memory (channels and label) is written before the
#: next case is read: writing it in the background would hold two such cases at once
OVERLAP_BYTES = 128 * 2**20


def _inprocess(specs, interrupt, memory=None) -> Iterator[TaskResult]:
    """One case at a time in this process; a case is written in a background thread while
    the next one is read and synthesised (zlib-ng and NumPy release the GIL), so the
    write costs little wall time, unless it is larger than :data:`OVERLAP_BYTES` (then
    the peak memory matters more). A case's result is yielded once its files are written.
    On a stop, the write in progress finishes before this returns (a Ctrl-C drops its
    result: the runner's clean-up then removes its files)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="lesionmix-write") as writer:
        pending, large = None, False
        for spec in specs:
            if interrupt.requested:
                break
            if pending is not None and large:
                yield pending.result()
                pending = None
            res, out = compute_task(spec, None if memory is None else memory(spec.source))
            if pending is not None:
                yield pending.result()
                pending = None
            if out is None:
                yield res
            else:
                large = out.case.channels.nbytes + out.case.labels.nbytes > OVERLAP_BYTES
                pending = writer.submit(write_task, spec, res, out)
                out = None  # the writer holds the case until it is written, no longer
        if pending is not None:
            yield pending.result()


def _failed(spec: TaskSpec, exc: BaseException) -> TaskResult:
    return TaskResult(spec.k, spec.name, spec.source, ok=False,
                      error=f"{type(exc).__name__}: {exc}".strip())


def _drive(specs, capacity, interrupt, submit, wait_some, result_of) -> Iterator[TaskResult]:
    queue = deque(specs)
    inflight: dict = {}
    while queue or inflight:
        while queue and len(inflight) < capacity and not interrupt.requested:
            spec = queue.popleft()
            try:
                inflight[submit(spec)] = spec
            except (KeyboardInterrupt, GeneratorExit):
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. a broken pool: report the case
                yield _failed(spec, exc)
        if not inflight:
            return
        for fut in wait_some(list(inflight)):
            spec = inflight.pop(fut)
            try:
                yield result_of(fut)
            except (KeyboardInterrupt, GeneratorExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - a worker died: report the case
                yield _failed(spec, exc)


def _pool(specs, workers, interrupt) -> Iterator[TaskResult]:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    specs = [_with_limits(s) for s in specs]
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_context(mp),
                               initializer=worker_init, initargs=parent_identity())
    clean = False

    def submit(spec):
        with uncut():  # a submit may start a worker: the pool must know it to stop it
            return pool.submit(run_task, spec)

    try:
        yield from _drive(
            specs, 2 * workers, interrupt, submit,
            lambda fs: wait(fs, timeout=0.2, return_when=FIRST_COMPLETED)[0],
            lambda f: f.result())
        clean = True
    finally:
        if not clean:  # hard stop or error: do not wait for running cases
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.kill()  # workers ignore SIGTERM (the parent decides): SIGKILL
            pool.shutdown(wait=True, cancel_futures=True)
        else:
            pool.shutdown(wait=True)


def _context(mp):
    """``forkserver`` where available (workers fork from a server that has already imported
    the engine: fast start, no inherited threads), else ``spawn``."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["napari_lesionmix.batch.tasks"])
        return ctx
    return mp.get_context("spawn")


def _dask(specs, scheduler, interrupt) -> Iterator[TaskResult]:
    """The tasks on a Dask cluster: ``scheduler`` is a connected ``distributed.Client``
    (left open: its owner closes it) or an address (connected and closed here)."""
    own = isinstance(scheduler, str)
    if own:
        from .cluster import connect_scheduler
        client = connect_scheduler(scheduler)
    else:
        client = scheduler
    specs = [_with_limits(s) for s in specs]
    token = uuid.uuid4().hex[:8]
    inflight_keys: set = set()
    clean = False
    try:
        threads = max(sum(client.nthreads().values()), 1)

        def submit(spec):
            key = f"lesionmix-{spec.name}-{token}"
            inflight_keys.add(key)
            return client.submit(run_task, spec, key=key, pure=False, retries=0)

        def wait_some(fs):
            deadline = time.monotonic() + 0.2
            done = [f for f in fs if f.done()]
            while not done and time.monotonic() < deadline:
                time.sleep(0.01)
                done = [f for f in fs if f.done()]
            for f in done:
                inflight_keys.discard(f.key)
            return done

        yield from _drive(specs, 2 * threads, interrupt, submit, wait_some,
                          lambda f: f.result())
        clean = True
    finally:
        if not clean:
            _dask_stop(client, inflight_keys)
        if own:
            client.close()


def _executing_keys(dask_worker) -> list:
    """Keys a Dask worker is still executing (cancelled ones included)."""
    state = getattr(dask_worker, "state", None)
    tasks = set(getattr(state, "executing", ())) | set(getattr(state, "long_running", ()))
    return [str(ts.key) for ts in tasks]


def _dask_stop(client, keys: set, timeout: float = 120.0) -> None:
    """Cancel our tasks and wait until no worker is still executing one of them.

    A cancelled task that is already running goes on until it returns, and writes its
    files; the runner's clean-up must come after it.
    """
    with contextlib.suppress(Exception):
        client.cancel(list(keys), force=True)
    deadline = time.monotonic() + timeout
    while keys and time.monotonic() < deadline:
        try:
            busy = {k for ks in client.run(_executing_keys).values() for k in ks}
        except Exception:  # noqa: BLE001 - scheduler or workers gone: nothing to wait for
            return
        if not busy & keys:
            return
        time.sleep(0.2)
    print("warning: some Dask tasks may still be running", file=sys.stderr)


def _with_limits(spec: TaskSpec) -> TaskSpec:
    from dataclasses import replace
    return replace(spec, limit_threads=True)
