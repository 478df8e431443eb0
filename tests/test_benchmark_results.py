"""The committed benchmark figures name no machine's folders: every path in them is
relative to the repository (``benchmarks/common.py`` makes them so when saving)."""

from __future__ import annotations

import doctest
import importlib.util
import json
import os
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("path", sorted(BENCH.glob("results/*.json")), ids=lambda p: p.name)
def test_saved_figures_hold_no_absolute_path(path):
    absolute = [s for s in _strings(json.loads(path.read_text())) if os.path.isabs(s)]
    assert not absolute, f"{path.name} records absolute paths: {absolute[:3]}"


def test_saving_makes_paths_portable():
    spec = importlib.util.spec_from_file_location("bench_common", BENCH / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    assert doctest.testmod(common).failed == 0
    saved = common.portable({"a": str(BENCH.parent / "docs" / "x.png"), "b": ["/elsewhere/y"]})
    assert saved == {"a": "docs/x.png", "b": ["y"]}
