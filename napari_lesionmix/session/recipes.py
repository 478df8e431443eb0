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

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.recipe import Recipe, RecipeError
from .errors import SessionError

__all__ = ["ORIGINS", "RecipeRules", "decide"]

#: recipe fields that change what a lesion is (the lesion list, bank and context follow)
STRUCTURAL = ("lesion_classes", "organ_label", "min_voxels", "connectivity")

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


class RecipeRules:
    """Setting, editing, loading and adopting the recipe: the part of
    :class:`~napari_lesionmix.session.session.EditSession` that keeps ``recipe``,
    ``recipe_origin`` and ``recipe_source`` (it uses the session's case and signals)."""

    def set_recipe(self, recipe: Recipe, origin: str = "edited",
                   source: str | None = None) -> None:
        """Use ``recipe``; the lesion list, context and bank follow when a structural
        field changed (lesion classes, organ label, min_voxels, connectivity, margin)."""
        old = self.recipe
        self.recipe, self.recipe_origin, self.recipe_source = recipe, origin, source
        structural = (any(getattr(old, f) != getattr(recipe, f) for f in STRUCTURAL)
                      or old.populate.margin != recipe.populate.margin)
        self.recipe_changed.emit()
        if structural and self.case is not None:
            self.clear_preview()
            self._context = self._entry_cache = None
            if self._bank_from_case:
                self._bank = None
                self.bank_changed.emit()
            self.refresh_lesions()

    def update_recipe(self, section: str | None = None, **fields: Any) -> Recipe:
        """Change some recipe fields by hand; ``section`` is populate, inpaint or likelihood.

        Raises
        ------
        SessionError
            A bad value (the message names the field); the recipe is unchanged.
        """
        data = self.recipe.to_dict()
        target = data if section is None else data[section]
        for key, value in fields.items():
            target[key] = list(value) if isinstance(value, tuple) else value
        try:
            recipe = Recipe.from_dict(data)
        except RecipeError as exc:
            raise SessionError(str(exc)) from None
        if recipe != self.recipe:
            self.set_recipe(recipe, "edited")
        return recipe

    def set_lesion_classes(self, classes: Sequence[int] | None) -> None:
        """Set ``recipe.lesion_classes`` (None = every non-zero label but the organ)."""
        self.update_recipe(lesion_classes=None if not classes else [int(c) for c in classes])

    def set_organ_label(self, value: int | None) -> None:
        """Set ``recipe.organ_label``: the context label that bounds placement."""
        self.update_recipe(organ_label=None if not value else int(value))

    def load_recipe(self, path: str) -> Recipe:
        """Use the recipe of a file the user chose.

        Raises
        ------
        SessionError
            The file is unreadable or holds a bad recipe (nothing changed).
        """
        try:
            recipe = Recipe.from_json(path)
        except RecipeError as exc:
            raise SessionError(str(exc)) from None
        self.set_recipe(recipe, "file", str(path))
        return recipe

    def adopt_dataset_recipe(self, path: str) -> bool:
        """Use a dataset's recipe file (a broken one is reported, the recipe stays)."""
        try:
            recipe = Recipe.from_json(path)
        except RecipeError as exc:
            self.message.emit("warning", f"the dataset's recipe is not used: {exc}")
            return False
        self.set_recipe(recipe, "dataset", str(path))
        return True

    def _follow_dataset(self, path: str | None) -> None:
        action = decide(self.recipe_origin, self.recipe_source, path)
        if action == "adopt":
            self.adopt_dataset_recipe(path)
        elif action == "default":
            self.set_recipe(Recipe(), "default")
        elif action == "ask":
            self.recipe_question.emit(path)

