"""Fixtures of the batch tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.batch.helpers import make_nnunet


@pytest.fixture
def nnunet_ds(tmp_path) -> Path:
    """A 4-case, 2-channel 3D nnU-Net dataset; the last case has no lesion."""
    return make_nnunet(tmp_path / "Dataset001_Test")
