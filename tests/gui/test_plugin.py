"""The plugin as napari sees it: manifest, reader, sample data, docks, demo."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import MANIFEST

from napari_lesionmix._layers import GEOMETRY_KEY
from napari_lesionmix.core.geometry import Geometry
from napari_lesionmix.core.image_io import write_image


def test_manifest_is_valid():
    import npe2

    manifest = npe2.PluginManifest.from_file(MANIFEST)
    manifest.validate_imports()
    widgets = [w.display_name for w in manifest.contributions.widgets]
    assert widgets == ["LesionMix (all steps)", "Three-plane view", "Case", "Likelihood",
                       "Augment", "Synthesise", "Review"]
    assert {s.key for s in manifest.contributions.sample_data} == {"brain_mr", "liver_ct"}
    assert {tuple(w.layer_types) for w in manifest.contributions.writers} == {
        ("image",), ("labels",)}


def test_viewer_opens_files_and_samples_through_the_plugin(make_napari_viewer, tmp_path,
                                                           registered_plugin):
    geom = Geometry((0.5, 0.5, 3.0), (1.0, 2.0, 3.0), tuple(np.eye(3).ravel()))
    lab = np.zeros((4, 6, 6), np.uint8)
    lab[1:3, 2:4, 2:4] = 1
    write_image(lab, geom, tmp_path / "sub_seg.nrrd")
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(tmp_path / "sub_seg.nrrd"), plugin="napari-lesionmix")
    assert layer.__class__.__name__ == "Labels"
    assert np.allclose(layer.scale, (3.0, 0.5, 0.5)) and [str(u) for u in layer.units] == ["millimeter"] * 3
    assert layer.metadata[GEOMETRY_KEY]["origin"] == [1.0, 2.0, 3.0]
    np.testing.assert_allclose(layer.data_to_world((1, 1, 1)), (6.0, 2.5, 1.5))
    viewer.open_sample("napari-lesionmix", "brain_mr")
    kinds = [lay.__class__.__name__ for lay in viewer.layers]
    assert kinds == ["Labels", "Image", "Labels"]
    assert np.allclose(viewer.layers[1].scale, (2.0, 2.0, 2.0))
    np.testing.assert_allclose(viewer.layers[1].affine.affine_matrix,
                               viewer.layers[2].affine.affine_matrix)


@pytest.mark.parametrize("name", ["LesionMix (all steps)", "Three-plane view", "Case",
                                  "Likelihood", "Augment", "Synthesise"])
def test_docks_open_from_the_plugins_menu(make_napari_viewer, registered_plugin, name):
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-lesionmix", name)
    assert widget is not None


def test_demo_opens_the_sample_with_every_dock(make_napari_viewer):
    from napari_lesionmix._demo import open_demo
    from napari_lesionmix._widgets.viewer_link import get_link

    viewer = make_napari_viewer()
    _, docks = open_demo(viewer)
    assert set(docks) == {"Case", "Likelihood", "Augment", "Synthesise", "Planes"}
    st = get_link(viewer).session
    assert st.case is not None and st.case.spatial_shape == viewer.layers[0].data.shape
    assert len(st.lesions) > 0 and docks["Case"].table.rowCount() == len(st.lesions)


def test_lesionmix_demo_entry_point_starts_the_demo(monkeypatch):
    """``lesionmix demo`` calls ``_demo.main()`` with sys.argv still holding "demo"."""
    import sys

    import napari

    from napari_lesionmix import _demo
    from napari_lesionmix.cli import main as cli_main

    opened, ran = [], []
    monkeypatch.setattr(_demo, "open_demo", lambda viewer=None, sample="brain_mr", planes=True:
                        opened.append(sample) or (None, {}))
    monkeypatch.setattr(napari, "run", lambda *a, **k: ran.append(1))
    monkeypatch.setattr(sys, "argv", ["lesionmix", "demo"])
    assert cli_main(["demo"]) == 0
    assert opened == ["brain_mr"] and ran == [1]
    assert _demo.main(["--sample", "liver_ct"]) == 0
    assert opened[-1] == "liver_ct"


def test_the_liver_sample_brings_its_recipe(make_napari_viewer, registered_plugin):
    from napari_lesionmix._widgets.viewer_link import get_link

    viewer = make_napari_viewer()
    viewer.open_sample("napari-lesionmix", "liver_ct")
    st = get_link(viewer).session  # the case is built from the sample's layers
    assert st.recipe.organ_label == 1 and st.recipe.lesion_classes == [2]
    assert st.recipe_source.endswith("lesionmix_recipe.json") and st.recipe_origin == "dataset"
    assert st.lesions and {les.label for les in st.lesions} == {2}  # tumours, not the liver
