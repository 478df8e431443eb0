"""Fixtures of the review tests: an export made by ``lesionmix generate`` on the bundled
brain sample (6 sources, 6 synthesised cases), built once and copied where a test
changes it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.review.review_helpers import generate


@pytest.fixture(scope="session")
def export_ro(tmp_path_factory) -> Path:
    """An export of the brain sample; tests must not change it (use ``export``)."""
    return generate(tmp_path_factory.mktemp("review") / "Dataset900_Brain")


@pytest.fixture
def export(export_ro, tmp_path) -> Path:
    """A fresh copy of the export, for tests that change it."""
    return Path(shutil.copytree(export_ro, tmp_path / export_ro.name))
