"""Fixtures of the GUI tests (helpers are in ``gui_helpers.py``, re-exported here).

The tests run on a virtual X display (pytest-xvfb starts Xvfb) with napari's
``make_napari_viewer`` fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gui_helpers import MANIFEST, add_case, synthetic_case, wait_done  # noqa: F401

from napari_lesionmix.core.case import Case


@pytest.fixture
def case3d() -> Case:
    return synthetic_case()


@pytest.fixture
def notes(monkeypatch):
    """Every napari notification shown during the test: a list of (level, message)."""
    from napari.utils import notifications

    seen: list = []
    for level in ("info", "warning", "error"):
        monkeypatch.setattr(notifications, f"show_{level}",
                            lambda msg, _lvl=level: seen.append((_lvl, str(msg))))
    return seen


@pytest.fixture
def registered_plugin():
    """The plugin's manifest registered with npe2 (an installed package already is)."""
    import npe2

    pm = npe2.PluginManager.instance()
    if "napari-lesionmix" not in pm._manifests:
        pm.register(npe2.PluginManifest.from_file(MANIFEST))
    return pm


def pytest_collection_modifyitems(config, items):
    """Mark every test of this folder ``gui`` (they need napari and an X display)."""
    here = str(Path(__file__).parent)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.gui)
