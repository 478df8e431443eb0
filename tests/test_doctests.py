"""The Examples sections of the engine's, the batch package's, the session's and the layer
module's docstrings run as written."""

import doctest
import importlib
import pkgutil

import pytest

import napari_lesionmix.batch as batch
import napari_lesionmix.core as core
import napari_lesionmix.session as session

MODULES = sorted(m.name for pkg in (core, batch, session)
                 for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."))
MODULES += ["napari_lesionmix._layers", "napari_lesionmix._widgets.meshes"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
