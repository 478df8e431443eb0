"""The same bytes whatever the executor: this process, 2 worker processes, a Dask cluster."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_lesionmix.batch.manifest import Manifest
from napari_lesionmix.batch.options import GenerateOptions
from napari_lesionmix.batch.runner import generate
from napari_lesionmix.batch.verify import verify_output
from napari_lesionmix.core.image_io import read_image


def run(inp, out, **kw):
    return generate(GenerateOptions(input=inp, output=out, n=6, progress=False, **kw),
                    say=lambda m: None)


def contents(out):
    """Arrays of every image/label file and every provenance sidecar of an output."""
    arr = {p.relative_to(out).as_posix(): read_image(p)[0]
           for d in ("imagesTr", "labelsTr") for p in sorted((out / d).glob("*.nii.gz"))}
    prov = {p.name: json.loads(p.read_text()) for p in sorted((out / "provenance").glob("*.json"))}
    return arr, prov


def assert_same(a, b):
    (arr_a, prov_a), (arr_b, prov_b) = contents(a), contents(b)
    assert arr_a.keys() == arr_b.keys() and len(arr_a) == 10 * (2 + 1)
    for k in arr_a:
        assert arr_a[k].dtype == arr_b[k].dtype and np.array_equal(arr_a[k], arr_b[k]), k
    assert prov_a == prov_b


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from tests.batch.helpers import make_nnunet
    return make_nnunet(tmp_path_factory.mktemp("in") / "Dataset002_Exec")


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("w1") / "out"
    assert run(dataset, out, workers=1).exit_code == 0
    return out


def test_two_worker_processes_write_the_same(dataset, reference, tmp_path):
    out = tmp_path / "w2"
    s = run(dataset, out, workers=2)
    assert s.exit_code == 0
    assert_same(reference, out)
    assert Manifest.load(out / "manifest.json").data["executor"] == "2 worker processes"
    # the tasks really ran in other processes
    import os
    pids = {e["worker_pid"] for e in Manifest.load(out / "manifest.json").cases.values()}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_dask_local_cluster_writes_the_same(dataset, reference, tmp_path):
    distributed = pytest.importorskip("distributed", reason="needs dask[distributed]")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        out = tmp_path / "dask"
        s = run(dataset, out, workers=1, scheduler=cluster.scheduler_address)
        assert s.exit_code == 0, s.failed
        with distributed.Client(cluster.scheduler_address) as client:
            assert len(client.nthreads()) == 2
    assert_same(reference, out)
    assert verify_output(out)[1] == []
