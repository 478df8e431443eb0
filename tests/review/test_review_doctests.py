"""The Examples sections of the review package's docstrings run as written."""

import doctest
import importlib
import pkgutil

import pytest

import napari_lesionmix.review as review

MODULES = sorted(m.name for m in pkgutil.iter_modules(review.__path__, review.__name__ + "."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
