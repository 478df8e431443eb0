"""Add and remove previews and location sampling for one lesion, with the engine.

These are what the Augment dock computes; each takes an :class:`EditSession` and calls
the engine's own functions (:mod:`napari_lesionmix.core.edits`,
:func:`~napari_lesionmix.core.mix.location_sampler`), so a preview is what the batch
engine would write and "the batch engine would accept this location" is its own check.
"""

from __future__ import annotations

import numpy as np

from ..core.edits import check_location, find_location, inpaint_edit, place_edit, prepare_lesion
from ..core.likelihood import LikelihoodError
from ..core.mix import location_sampler
from ..core.transforms import LesionParams
from .session import EditSession, SessionError

__all__ = ["preview_add", "preview_remove", "sample_location"]


def _entry(session: EditSession):
    entry = session.selected_entry()
    if entry is None:
        raise SessionError("select a lesion first")
    return entry


def preview_add(session: EditSession, params: LesionParams) -> str:
    """Preview the selected lesion, augmented with ``params``, centred at the location.

    Returns
    -------
    str
        Why the batch engine would refuse this location ("" when it would accept it).

    Raises
    ------
    SessionError
        No lesion selected or no location; the preview is cleared.
    """
    if session.location is None:
        session.clear_preview()
        raise SessionError("no location: pick one on the canvas or sample one from the "
                           "heatmap")
    entry = _entry(session)
    case, ctx = session.case, session.context
    prep = prepare_lesion(entry, params, ctx)
    reason = check_location(case, prep, session.location, ctx)
    session.show_preview(place_edit(case, prep, session.location, ctx), "add", reason)
    return reason


def preview_remove(session: EditSession, noise_seed: int) -> None:
    """Preview the inpainting of the selected lesion (``recipe.inpaint``'s options).

    Raises
    ------
    SessionError
        No lesion selected.
    """
    lesion = session.selected_lesion
    if lesion is None:
        raise SessionError("select a lesion first")
    edit = inpaint_edit(session.case, lesion, session.context, int(noise_seed))
    session.show_preview(edit, "remove")


def sample_location(session: EditSession, params: LesionParams,
                    rng: np.random.Generator) -> tuple[tuple | None, str]:
    """Draw a location from the likelihood map (uniform over the allowed region without
    one) where the batch engine would accept the selected lesion with ``params``.

    The engine's one location search (:func:`~napari_lesionmix.core.edits.find_location`,
    over the per-case sampler without occupied voxels) makes up to
    ``recipe.populate.max_tries`` draws. A location found becomes the session's.

    Returns
    -------
    (location, reason)
        The location (or None) and, when none fitted, why the last draw was refused.
    """
    entry = _entry(session)
    case, ctx = session.case, session.context
    try:
        sampler = location_sampler(case, session.likelihood, ctx)
    except LikelihoodError as exc:
        return None, str(exc)
    prep = prepare_lesion(entry, params, ctx)
    tries = session.recipe.populate.max_tries
    chosen, reason, _ = find_location(case, prep, sampler, ctx, rng, tries)
    if chosen is None:
        return None, (f"no location where the batch engine would accept this lesion in "
                      f"{tries} draws (last: {reason})")
    session.set_location(chosen)
    return tuple(int(v) for v in chosen), ""
