"""napari opens an exported dataset in the Review dock (it said "Could not find a
backend" before)."""

from __future__ import annotations

import pytest

from napari_lesionmix._widgets.review_dock import ReviewDock
from napari_lesionmix._widgets.review_layers import NAMES

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("where,plugin", [("dataset.json", None), ("", "napari-lesionmix"),
                                          ("imagesTr", "napari-lesionmix")])
def test_napari_opens_an_export_in_the_review_dock(make_napari_viewer, export_ro, where,
                                                   plugin):
    viewer = make_napari_viewer()
    viewer.open(str(export_ro / where) if where else str(export_ro), plugin=plugin)
    docks = [w.inner_widget() for w in viewer.window._wrapped_dock_widgets.values()]
    (dock,) = [d for d in docks if isinstance(d, ReviewDock)]
    assert dock.session.review.root == export_ro.resolve()
    assert dock.session.current.name == "brain01"
    assert NAMES["result"] in viewer.layers
    assert dock.cases.rowCount() == 12
    # a second dataset.json opens in the same dock
    viewer.open(str(export_ro / "dataset.json"), plugin=None)
    docks = [w.inner_widget() for w in viewer.window._wrapped_dock_widgets.values()]
    assert [d for d in docks if isinstance(d, ReviewDock)] == [dock]
