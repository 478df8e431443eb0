"""The loop that populates or inpaints a case until its lesion load reaches a target.

Synthesis records every draw in a :class:`~.provenance.Provenance`; :func:`replay`
applies the recorded edits again and gives the same arrays bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .case import Case
from .edits import (
    CaseContext,
    find_location,
    inpaint_edit,
    place_edit,
    prepare_lesion,
)
from .image_io import label_dtype
from .lesions import BankError, Lesion, LesionBank, find_lesions
from .likelihood import LikelihoodError, LikelihoodMap
from .load import LoadDistribution
from .provenance import Operation, Provenance
from .recipe import Recipe
from .transforms import LesionParams, sample_params


@dataclass
class SynthResult:
    """A synthesised case and how it was made."""

    case: Case
    provenance: Provenance


def case_seeds(seed: int, n: int) -> list[np.random.SeedSequence]:
    """One independent stream per output case: ``SeedSequence(seed).spawn(n)``."""
    return np.random.SeedSequence(seed).spawn(n)


def _seed_sequence(seed, recipe: Recipe) -> np.random.SeedSequence:
    if seed is None:
        return np.random.SeedSequence(recipe.seed)
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return np.random.SeedSequence(int(seed))


# ---------------------------------------------------------------------- the loop
def synthesize(case: Case, bank: LesionBank, lmap: LikelihoodMap | None, recipe: Recipe,
               seed=None, target_load: float | None = None, reference_loads=None,
               progress=None, name: str | None = None, stats=None,
               in_place: bool = False) -> SynthResult:
    """Populate or inpaint ``case`` until its lesion load reaches a drawn target.

    Parameters
    ----------
    case : Case
        The source case; it is not modified (unless ``in_place``).
    bank : LesionBank
        Lesions to populate with (may be empty when only inpainting is needed).
    lmap : LikelihoodMap or None
        Where lesions go; ``None`` means uniform over the allowed region.
    recipe : Recipe
        Every option.
    seed : int or SeedSequence, optional
        This case's stream (default: ``recipe.seed``).
    target_load : float, optional
        Use this target (mm³) instead of drawing one.
    reference_loads : sequence of float, optional
        Reference loads for the distribution (default: the bank's per-case loads).
    progress : callable(done_ops, cap), optional
    name : str, optional
        Name of the output case (default ``<source>_lmix``).
    stats : ndarray (C, 2), optional
        Intensity statistics of the case, when ``case`` is a patch of a larger one
        (training-time patches): default, measured on ``case``.
    in_place : bool
        Synthesise into ``case`` itself, which becomes the result's case (a caller that
        has no further use for the source saves a copy of the whole case).

    Returns
    -------
    SynthResult
        The new case and its provenance.

    Examples
    --------
    >>> out = synthesize(case, bank, lmap, Recipe(load_distribution="high"), seed=7)  # doctest: +SKIP
    >>> out.provenance.achieved_load_mm3                                              # doctest: +SKIP
    """
    ss = _seed_sequence(seed, recipe)
    rng = np.random.default_rng(ss)
    ctx = CaseContext(case, recipe, bank.classes(), stats)
    if target_load is None:
        refs = reference_loads
        if refs is None and recipe.load_distribution != "fixed":
            refs = list(bank.loads_by_case().values())
        target = LoadDistribution.from_recipe(recipe, refs).sample(rng)
    else:
        target = float(target_load)
    if not (np.isfinite(target) and target >= 0):
        raise ValueError(f"target load {target!r} mm³: must be a finite load >= 0")
    voxels = ctx.count_lesion_voxels(case.labels)
    load = voxels * ctx.voxel_volume
    tol = recipe.tolerance * target
    prov = Provenance(recipe.to_dict(), recipe.hash(),
                      {"entropy": int(ss.entropy) if not isinstance(ss.entropy, (list, tuple))
                       else [int(e) for e in ss.entropy], "spawn_key": list(ss.spawn_key)},
                      {"case": case.name, "image_paths": list(case.image_paths or []),
                       "label_path": case.label_path},
                      float(target), float(load), start_voxels=voxels,
                      lesion_classes=list(ctx.classes),
                      tolerance_mm3=float(tol))
    out = fit_labels(case if in_place else case.copy(), ctx.classes)
    if name:
        out.name = name
    if load < target - tol:
        prov.direction = "populate"
        voxels = _populate_loop(out, bank, lmap, ctx, rng, prov, voxels, target, tol, progress)
    elif load > target + tol:
        prov.direction = "inpaint"
        voxels = _inpaint_loop(out, ctx, rng, prov, voxels, target, tol, progress,
                               can_refill=len(bank) > 0)
        if voxels * ctx.voxel_volume < target - tol and prov.status == "refill":
            # removing went below the band on purpose (every lesion left was too large to
            # remove within it): add smaller lesions back up into the band
            prov.direction = "inpaint+populate"
            voxels = _populate_loop(out, bank, lmap, ctx, rng, prov, voxels, target, tol,
                                    progress)
    prov.achieved_voxels = int(voxels)
    prov.achieved_load_mm3 = float(voxels * ctx.voxel_volume)
    if abs(prov.achieved_load_mm3 - target) <= tol:
        prov.status = "reached"
    return SynthResult(out, prov)


def _fits(load: float, change: float, target: float, tol: float) -> bool:
    """A step keeps the load from passing the far edge of the target band."""
    new = load + change
    return new <= target + tol if change >= 0 else new >= target - tol


def fit_labels(case: Case, classes) -> Case:
    """Widen ``case.labels`` in place if a lesion class does not fit its dtype; return it."""
    top = max(classes, default=0)
    if top > np.iinfo(case.labels.dtype).max:
        case.labels = case.labels.astype(label_dtype(top))
    return case


def location_sampler(case: Case, lmap: LikelihoodMap | None, ctx: CaseContext):
    """The sampler placement draws from: the map without disallowed or lesion voxels.

    ``None`` gives a uniform map over the allowed region. Raises
    :class:`LikelihoodError` when the case has no voxel where lesions may go, or when the
    map is zero everywhere they may.
    """
    if not ctx.allowed.any():
        where = (f"the organ label {ctx.recipe.organ_label} is absent"
                 if ctx.recipe.organ_label is not None and case.placement is None
                 else "the placement mask is empty" if case.placement is not None
                 else "the image has no non-zero voxel")
        raise LikelihoodError(f"{case.name}: no voxel where lesions may go ({where})")
    if lmap is None:
        lmap = LikelihoodMap(ctx.allowed.astype(np.float32), case.geometry)
    else:
        # the map on this case's grid, through its alignment (registered, its own map, or
        # physical space), so that disallowed and occupied voxels can leave the draws
        on_case = lmap.for_case(case, ctx.name)
        if on_case is not lmap and not (on_case.prob[ctx.allowed] > 0).any():
            raise LikelihoodError(f"{case.name}: the likelihood map, read on this case's grid, is "
                                  "zero everywhere lesions are allowed; set likelihood.floor > 0 "
                                  "or check that the case overlaps the map in physical space")
        lmap = on_case
    occupied = ctx.lesion_voxels(case.labels)
    sampler = lmap.sampler_for(case.geometry, case.labels.shape, ctx.allowed, occupied)
    if sampler.mass <= 0:
        raise LikelihoodError(f"{case.name}: the likelihood map is zero everywhere lesions are "
                              "allowed in this case; set likelihood.floor > 0 or change the "
                              "placement")
    return sampler


def populate_step(case: Case, bank: LesionBank, sampler, ctx: CaseContext,
                  rng: np.random.Generator, load: float = 0.0,
                  target: float | None = None, tol: float = 0.0) -> Operation:
    """One populate operation on ``case`` in place: pick, augment, place, insert.

    Draws a bank lesion and its parameters, then up to ``max_tries`` locations from
    ``sampler`` (:func:`location_sampler`). With a ``target`` load (mm³) a lesion that
    would take ``load`` past ``target + tol`` is refused; one whose volume, estimated
    from its size and scale, is far too large is refused before it is augmented.
    The returned :class:`Operation` says what happened.
    """
    opts = ctx.recipe.populate
    entry = bank[bank.pick(rng, opts.pick)]
    params = sample_params(rng, opts, case.ndim)
    op = Operation("populate", False, entry=entry.key, params=params.to_dict())
    if target is not None:
        estimate = entry.lesion.volume_mm3 * params.scale ** case.ndim
        if not _fits(load, 0.5 * estimate, target, tol):
            op.reason = "would overshoot the target (estimated)"
            return op
    prep = prepare_lesion(entry, params, ctx)
    if prep.voxels == 0:
        op.reason = "empty lesion after augmentation"
        return op
    if target is not None and not _fits(load, prep.voxels * ctx.voxel_volume, target, tol):
        op.reason = "would overshoot the target"
        return op
    center, reason, op.tries = find_location(case, prep, sampler, ctx, rng, opts.max_tries)
    if center is None:
        op.reason = f"no location found in {opts.max_tries} tries (last: {reason})"
        return op
    edit = place_edit(case, prep, center, ctx)
    before = int(np.count_nonzero(ctx.lesion_voxels(case.labels[edit.slices])))
    edit.apply(case)
    added = int(np.count_nonzero(ctx.lesion_voxels(edit.labels))) - before
    op.accepted, op.center, op.voxels, op.box = True, list(center), added, edit.box()
    return op


def inpaint_step(case: Case, lesion: Lesion, ctx: CaseContext,
                 rng: np.random.Generator) -> Operation:
    """One inpaint operation on ``case`` in place; the operation records the change."""
    noise_seed = int(rng.integers(2**63))
    edit = inpaint_edit(case, lesion, ctx, noise_seed)
    before = int(np.count_nonzero(ctx.lesion_voxels(case.labels[edit.slices])))
    edit.apply(case)
    after = int(np.count_nonzero(ctx.lesion_voxels(case.labels[edit.slices])))
    return Operation("inpaint", True, lesion=lesion.to_dict(), noise_seed=noise_seed,
                     voxels=after - before, box=edit.box())


def _populate_loop(out, bank, lmap, ctx, rng, prov, voxels, target, tol, progress) -> int:
    recipe = ctx.recipe
    if len(bank) == 0:
        raise BankError("the lesion bank is empty: no lesion to populate with (the training "
                        "cases have no lesion of the chosen classes with at least "
                        f"{recipe.min_voxels} voxels)")
    sampler = location_sampler(out, lmap, ctx)
    vv = ctx.voxel_volume
    rejected_in_a_row = 0
    prov.status = "cap"
    for n_op in range(len(prov.operations), recipe.max_operations):
        load = voxels * vv
        if load >= target - tol:
            prov.status = "reached"
            break
        if rejected_in_a_row >= recipe.populate.max_tries:
            prov.status = "stuck"
            break
        op = populate_step(out, bank, sampler, ctx, rng, load, target, tol)
        if op.accepted:
            voxels += op.voxels
            prov.bank_sources.setdefault(op.entry, bank[bank.index_of(op.entry)].source)
        rejected_in_a_row = 0 if op.accepted else rejected_in_a_row + 1
        op.load_mm3 = voxels * vv
        prov.operations.append(op)
        if progress is not None:
            progress(n_op + 1, recipe.max_operations)
    return voxels


def pick_lesion_to_remove(lesions: list, rng: np.random.Generator, mode: str = "uniform",
                          load: float | None = None, target: float | None = None,
                          tol: float = 0.0) -> int | None:
    """Index of the lesion to inpaint, among those whose removal keeps ``load`` at or
    above ``target - tol``.

    ``None`` when no lesion qualifies.
    """
    candidates = [k for k, les in enumerate(lesions)
                  if target is None or _fits(load, -les.volume_mm3, target, tol)]
    if not candidates:
        return None
    if mode == "size":
        w = np.array([lesions[k].voxels for k in candidates], float)
        cdf = np.cumsum(w / w.sum())
        return candidates[min(int(np.searchsorted(cdf, rng.random(), side="right")),
                              len(candidates) - 1)]
    return candidates[int(rng.integers(len(candidates)))]


def _inpaint_loop(out, ctx, rng, prov, voxels, target, tol, progress,
                  can_refill: bool = False) -> int:
    """Remove lesions until the load is in the band.

    When every lesion left would take the load below the band, the one that lands closest
    to the target is removed: then, with ``can_refill`` (a lesion bank to populate from),
    the status is ``refill`` and the caller adds lesions back up into the band; without,
    it is ``closest`` and the loop stops there (only if that is closer than now, and never
    when it would leave no lesion while the target is above zero).
    """
    recipe = ctx.recipe
    lesions = find_lesions(out.labels, ctx.classes, out.geometry.spacing_zyx,
                           recipe.min_voxels, recipe.connectivity, out.name)
    vv = ctx.voxel_volume
    prov.status = "cap"
    for n_op in range(recipe.max_operations):
        load = voxels * vv
        if load <= target + tol:
            prov.status = "reached"
            break
        k = pick_lesion_to_remove(lesions, rng, recipe.inpaint.pick, load, target, tol)
        last = None
        if k is None:
            if can_refill:
                k, last = _closest_removal(lesions, load, target, below_ok=True), "refill"
            else:
                k, last = _closest_removal(lesions, load, target, keep_one=target > 0), "closest"
            if k is None:
                prov.status = "no_lesions" if not lesions else "stuck"
                break
        op = inpaint_step(out, lesions.pop(k), ctx, rng)
        voxels += op.voxels
        op.load_mm3 = voxels * vv
        prov.operations.append(op)
        if progress is not None:
            progress(n_op + 1, recipe.max_operations)
        if last:
            prov.status = last if voxels * vv < target - tol else "reached"
            break
    return voxels


def _closest_removal(lesions: list, load: float, target: float, below_ok: bool = False,
                     keep_one: bool = False) -> int | None:
    """The lesion whose removal brings ``load`` closest to ``target``; ties go to the first.

    None when no removal is closer than ``load`` itself (unless ``below_ok``: going below
    is fine, the caller refills), or when ``keep_one`` and only one lesion is left.
    """
    if keep_one and len(lesions) <= 1:
        return None
    gaps = [abs(load - les.volume_mm3 - target) for les in lesions]
    if not gaps or (min(gaps) >= abs(load - target) and not below_ok):
        return None
    return int(np.argmin(gaps))


# ---------------------------------------------------------------------- replay
def replay(provenance, case: Case, bank: LesionBank, stats=None) -> Case:
    """Rebuild a synthesised case from its provenance, the source case and the bank.

    Only the accepted operations are applied, with their recorded parameters, so no
    random draw happens: the result equals the original output bit for bit. ``stats``:
    the intensity statistics :func:`synthesize` was given, if any.
    """
    prov = provenance if isinstance(provenance, Provenance) else Provenance.from_dict(provenance)
    recipe = Recipe.from_dict(prov.recipe)
    ctx = CaseContext(case, recipe, prov.lesion_classes or (), stats)
    out = fit_labels(case.copy(), ctx.classes)
    shape = np.asarray(case.spatial_shape, float)
    for op in prov.accepted:
        if op.kind == "populate":
            c = np.asarray(op.center, float)
            if c.shape != shape.shape or np.any(c < 0) or np.any(c > shape - 1):
                raise ValueError(f"provenance: center {op.center} lies outside the case "
                                 f"{case.name!r} of shape {case.spatial_shape}")
            entry = bank[bank.index_of(op.entry)]
            prep = prepare_lesion(entry, LesionParams.from_dict(op.params), ctx)
            place_edit(out, prep, op.center, ctx).apply(out)
        elif op.kind == "inpaint":
            inpaint_edit(out, Lesion.from_dict(op.lesion), ctx, op.noise_seed).apply(out)
        else:
            raise ValueError(f"unknown operation kind {op.kind!r} in provenance")
    return out


def replay_from_files(provenance) -> Case:
    """Rebuild a case from its provenance alone, reading the source files it names."""
    prov = provenance if isinstance(provenance, Provenance) else (
        Provenance.load(provenance) if isinstance(provenance, (str, Path))
        else Provenance.from_dict(provenance))
    recipe = Recipe.from_dict(prov.recipe)
    src = prov.source
    if not src.get("image_paths") or not src.get("label_path"):
        raise ValueError("the provenance does not name the source case's files; replay needs "
                         "the source case and the bank in memory (core.mix.replay)")
    case = Case.read(src["image_paths"], src["label_path"], name=src["case"])
    cases = {}
    for info in prov.bank_sources.values():
        key = info["label_path"]
        if key not in cases:
            cases[key] = case if key == src["label_path"] else Case.read(
                info["image_paths"], info["label_path"], name=info["case"])
    bank = LesionBank.from_recipe(list(cases.values()), recipe)
    return replay(prov, case, bank)
