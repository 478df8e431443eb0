"""The Examples sections of the engine's and the batch package's docstrings run as written."""

import doctest
import importlib
import pkgutil

import pytest

import napari_lesionmix.batch as batch
import napari_lesionmix.core as core

MODULES = sorted(m.name for pkg in (core, batch)
                 for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
