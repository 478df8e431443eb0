"""napari opens an exported dataset (it said "Could not find a backend" before)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("where,plugin", [("dataset.json", None), ("", "napari-lesionmix"),
                                          ("imagesTr", "napari-lesionmix")])
def test_napari_opens_an_export(make_napari_viewer, export_ro, where, plugin):
    viewer = make_napari_viewer()
    viewer.open(str(export_ro / where) if where else str(export_ro), plugin=plugin)
    assert [(layer.name, type(layer).__name__) for layer in viewer.layers] == \
        [("brain01_0000", "Image"), ("brain01", "Labels")]
    assert viewer.layers["brain01"].data.max() == 1
