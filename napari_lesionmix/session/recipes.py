"""Which recipe a session uses when a new case arrives with (or without) its dataset's.

A dataset may ship a ``lesionmix_recipe.json`` (the liver sample's says organ label 1,
tumour class 2). The session remembers where its recipe came from:

``default``
    never changed;
``dataset``
    adopted from a dataset's file and not edited since;
``edited``
    changed by hand in the docks;
``file``
    loaded by the user from a recipe file.

When the layers of a case are chosen, :func:`decide` says what to do with the recipe.
A recipe nobody chose by hand follows the data: the new dataset's recipe is adopted, and
a dataset without one gets the default recipe back (so the liver's organ label does not
stay on a brain). A recipe edited or loaded by hand is never replaced silently: the user
is asked.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ORIGINS", "decide"]

ORIGINS = ("default", "dataset", "edited", "file")


def _same_file(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


def decide(origin: str, source: str | None, dataset_recipe: str | None) -> str:
    """What to do with the recipe when a case from another dataset is chosen.

    Parameters
    ----------
    origin : str
        One of :data:`ORIGINS`: where the current recipe came from.
    source : str or None
        The file the current recipe was adopted or loaded from.
    dataset_recipe : str or None
        The new case's dataset recipe file, if it has one.

    Returns
    -------
    str
        ``"keep"`` (nothing to do), ``"adopt"`` (use the dataset's recipe), ``"default"``
        (back to the default recipe) or ``"ask"`` (the recipe was chosen by hand and the
        dataset brings another one: the user decides).

    Examples
    --------
    >>> decide("default", None, "liver/lesionmix_recipe.json")
    'adopt'
    >>> decide("dataset", "liver/lesionmix_recipe.json", None)
    'default'
    >>> decide("edited", None, "liver/lesionmix_recipe.json")
    'ask'
    >>> decide("edited", None, None)
    'keep'
    """
    if origin not in ORIGINS:
        raise ValueError(f"unknown recipe origin {origin!r}")
    if dataset_recipe is None:
        return "default" if origin == "dataset" else "keep"
    if origin == "dataset" and _same_file(source, dataset_recipe):
        return "keep"
    if origin in ("default", "dataset"):
        return "adopt"
    if origin == "file" and _same_file(source, dataset_recipe):
        return "keep"
    return "ask"
