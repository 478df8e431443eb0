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
from .errors import SessionError
from .session import EditSession

__all__ = ["outside_batch", "preview_add", "preview_remove", "sample_location"]


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


#: LesionParams field -> (recipe.populate probability field, range field, the "off" value)
BATCH_FIELDS = {
    "rotate": ("rotate_p", "rotate_deg", 0.0),
    "scale": ("scale_p", "scale", 1.0),
    "elastic_sigma": ("elastic_p", "elastic_sigma", 0.0),
    "brightness": ("brightness_p", "brightness", 1.0),
    "noise_std": ("noise_p", "noise_std", 0.0),
}


def outside_batch(params: LesionParams, populate) -> dict[str, str]:
    """The exact values batch generation would never draw with ``populate``'s ranges.

    A rotation is drawn as an angle in the range with either sign; a value equal to the
    transform's "off" value (no rotation, scale 1, ...) is drawn whenever its probability
    is below 1. The elastic strength is the recipe's own value.

    Parameters
    ----------
    params : LesionParams
    populate : PopulateOptions

    Returns
    -------
    dict
        ``{field: why}`` for each :class:`LesionParams` field out of the batch's reach
        (``rotate0``, ``rotate1``, ``rotate2`` for the angles, ``flip`` for the flips).

    Examples
    --------
    >>> from napari_lesionmix.core.recipe import PopulateOptions
    >>> p = LesionParams.identity(3)
    >>> outside_batch(p, PopulateOptions())
    {}
    >>> from dataclasses import replace
    >>> outside_batch(replace(p, scale=2.5), PopulateOptions())
    {'scale': 'outside the batch range [0.5, 1.8]'}
    """
    out: dict[str, str] = {}

    def check(name: str, value: float, prob: float, bounds: tuple, off: float,
              magnitude: bool = False) -> None:
        lo, hi = bounds
        v = abs(value) if magnitude else value
        if value == off:
            if prob >= 1.0 and not (lo <= v <= hi):
                out[name] = f"the batch always applies it (p = 1), range [{lo:g}, {hi:g}]"
            return
        if prob <= 0.0:
            out[name] = "the batch never applies it (p = 0)"
        elif not lo - 1e-9 <= v <= hi + 1e-9:
            out[name] = f"outside the batch range [{lo:g}, {hi:g}]"

    for field, (p_field, range_field, off) in BATCH_FIELDS.items():
        prob, bounds = getattr(populate, p_field), getattr(populate, range_field)
        if field == "rotate":
            for k, angle in enumerate(params.rotate):
                check(f"rotate{k}", angle, prob, bounds, off, magnitude=True)
        else:
            check(field, getattr(params, field), prob, bounds, off)
    if params.elastic_sigma and params.elastic_magnitude != populate.elastic_magnitude:
        out["elastic_magnitude"] = (f"the batch uses the recipe's strength "
                                    f"{populate.elastic_magnitude:g}")
    if any(params.flip) and populate.flip_p <= 0.0:
        out["flip"] = "the batch never flips (p = 0)"
    return out
