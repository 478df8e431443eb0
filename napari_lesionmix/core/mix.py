"""Populate and inpaint, one lesion at a time, and the loop that reaches a target load.

Every change to a case is an :class:`Edit`: a box, the new image and label values in it.
Applying an edit returns its inverse, which is what the GUI's Undo keeps. Synthesis
records every draw in a :class:`Provenance`; :func:`replay` applies the recorded edits
again and gives the same arrays bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .blend import blend_weights
from .case import Case
from .inpaint import inpaint_patch, region_for, ring_label
from .io_utils import atomic_write_text
from .lesions import (
    BankError,
    Lesion,
    LesionBank,
    find_lesions,
    lesion_classes_of,
    lesion_mask,
    placement_region,
)
from .likelihood import LikelihoodError, LikelihoodMap
from .load import LoadDistribution
from .recipe import Recipe
from .transforms import LesionParams, augment, sample_params

PROVENANCE_VERSION = 1


# ---------------------------------------------------------------------- edits
@dataclass
class Edit:
    """New values for a box of a case.

    Attributes
    ----------
    slices : tuple of slice
        The box in the case's array.
    channels : ndarray, (C, *box)
    labels : ndarray, (*box)
    """

    slices: tuple
    channels: np.ndarray
    labels: np.ndarray

    def apply(self, case: Case) -> Edit:
        """Write the edit into ``case`` in place; return the edit that undoes it."""
        full = (slice(None),) + tuple(self.slices)
        old = Edit(self.slices, case.channels[full].copy(), case.labels[self.slices].copy())
        case.channels[full] = self.channels
        case.labels[self.slices] = self.labels
        return old

    def box(self) -> list:
        """The box as ``[[start, stop], ...]`` (JSON-ready)."""
        return [[int(s.start), int(s.stop)] for s in self.slices]


class CaseContext:
    """What placement needs of a target case, computed once per case.

    Parameters
    ----------
    case : Case
        The target.
    recipe : Recipe
        Its lesion classes, organ label and placement options.
    """

    def __init__(self, case: Case, recipe: Recipe):
        self.recipe = recipe
        self.classes = lesion_classes_of(case.labels, recipe.lesion_classes, recipe.organ_label)
        self.allowed = placement_region(case, recipe.organ_label)
        self.stats = case.intensity_stats(self.allowed)
        self.voxel_volume = float(case.geometry.voxel_volume)
        self.spacing_zyx = np.asarray(case.geometry.spacing_zyx, float)
        kind = case.labels.dtype
        top = (np.iinfo(kind).max + 1 if kind.itemsize <= 2
               else max(int(case.labels.max(initial=0)), max(self.classes, default=0)) + 1)
        self.is_lesion = np.zeros(top, bool)
        self.is_lesion[[c for c in self.classes if c < top]] = True

    def lesion_voxels(self, labels: np.ndarray) -> np.ndarray:
        """Boolean map of lesion-class voxels of a label patch (a table look-up)."""
        lut = self.is_lesion
        if labels.dtype.itemsize > 2 and labels.size and int(labels.max()) >= lut.size:
            lut = np.concatenate([lut, np.zeros(int(labels.max()) + 1 - lut.size, bool)])
        return lut[labels]


@dataclass
class Prepared:
    """An augmented lesion ready to place: image in the target's intensities, mask, alpha."""

    image: np.ndarray
    mask: np.ndarray
    alpha: np.ndarray
    guard: np.ndarray
    centroid: np.ndarray
    label: int

    @property
    def voxels(self) -> int:
        return int(self.mask.sum())


def prepare_lesion(entry, params: LesionParams, ctx: CaseContext) -> Prepared:
    """Augment a bank lesion in its own patch and map its intensities to the target.

    The patch is resampled onto the target's voxel size when the source's differs (the
    lesion keeps its size in mm), and padded so that the soft blend and the ``min_gap``
    guard fit inside.
    """
    opts = ctx.recipe.populate
    target = None if np.allclose(entry.spacing_zyx, ctx.spacing_zyx, rtol=1e-6) \
        else ctx.spacing_zyx
    image, mask = augment(entry.image, entry.mask, params, opts.interpolation,
                          stats=entry.stats, spacing=entry.spacing_zyx, target_spacing=target)
    sigma = opts.blend_sigma if opts.blend == "soft" else 0.0
    pad = max(int(opts.min_gap), int(np.ceil(3 * sigma)))
    if pad:
        width = [(0, 0)] + [(pad, pad)] * mask.ndim
        image = np.pad(image, width, mode="edge")
        mask = np.pad(mask, width[1:])
    if not np.array_equal(entry.stats, ctx.stats):
        src, dst = entry.stats, ctx.stats
        for c in range(image.shape[0]):
            cs = min(c, len(src) - 1)
            image[c] = (image[c] - src[cs, 0]) / src[cs, 1] * dst[c, 1] + dst[c, 0]
    alpha = blend_weights(mask, opts.blend, sigma)
    if opts.min_gap > 0 and mask.any():
        guard = ndi.binary_dilation(mask, ndi.generate_binary_structure(mask.ndim, mask.ndim),
                                    iterations=int(opts.min_gap))
    else:
        guard = mask
    centroid = (np.array(ndi.center_of_mass(mask)) if mask.any()
                else (np.array(mask.shape) - 1) / 2.0)
    return Prepared(image.astype(np.float32, copy=False), mask, alpha, guard, centroid,
                    int(entry.lesion.label))


def _boxes(shape, corner, patch_shape):
    """Target slices and patch slices of a patch at ``corner``, clipped to ``shape``."""
    tgt, src = [], []
    for c, p, n in zip(corner, patch_shape, shape):
        a, b = max(c, 0), min(c + p, n)
        if a >= b:
            return None, None
        tgt.append(slice(a, b))
        src.append(slice(a - c, b - c))
    return tuple(tgt), tuple(src)


def check_location(case: Case, prep: Prepared, center, ctx: CaseContext) -> str:
    """Why ``prep`` cannot go at ``center`` ("" if it can)."""
    total = prep.voxels
    if total == 0:
        return "empty lesion after augmentation"
    corner = np.rint(np.asarray(center, float) - prep.centroid).astype(int)
    tgt, src = _boxes(case.labels.shape, corner, prep.mask.shape)
    if tgt is None:
        return "outside the image"
    if (ctx.lesion_voxels(case.labels[tgt]) & prep.guard[src]).any():
        return "touches an existing lesion"
    inside = np.count_nonzero(ctx.allowed[tgt] & prep.mask[src])
    if inside < ctx.recipe.populate.min_inside * total:
        return f"only {inside / total:.0%} inside the allowed region"
    return ""


def place_edit(case: Case, prep: Prepared, center, ctx: CaseContext) -> Edit:
    """The edit that inserts ``prep`` centred at ``center`` (no checks)."""
    corner = np.rint(np.asarray(center, float) - prep.centroid).astype(int)
    tgt, src = _boxes(case.labels.shape, corner, prep.mask.shape)
    if tgt is None:
        raise ValueError(f"the lesion centred at {tuple(center)} lies outside the image")
    mask = prep.mask[src]
    alpha = prep.alpha[src] * (ctx.allowed[tgt] | mask)
    background = case.channels[(slice(None),) + tgt]
    channels = (alpha * prep.image[(slice(None),) + src] + (1 - alpha) * background)
    channels = np.where(alpha > 0, channels, background).astype(case.channels.dtype)
    labels = case.labels[tgt].copy()
    labels[mask] = prep.label
    return Edit(tgt, channels, labels)


def populate_edit(case: Case, entry, params: LesionParams, center, ctx: CaseContext,
                  check: bool = True) -> tuple[Edit | None, str]:
    """Augment ``entry`` with ``params`` and insert it at ``center``.

    Returns
    -------
    edit : Edit or None
        ``None`` when ``check`` is on and the location is refused.
    reason : str
        Why it was refused ("" when it fits).
    """
    prep = prepare_lesion(entry, params, ctx)
    if check:
        reason = check_location(case, prep, center, ctx)
        if reason:
            return None, reason
    return place_edit(case, prep, center, ctx), ""


def inpaint_edit(case: Case, lesion: Lesion, ctx: CaseContext, noise_seed: int) -> Edit:
    """The edit that removes ``lesion``: Telea fill of its dilated region, ring label.

    The fill draws only on voxels of the allowed region (foreground, organ or placement
    mask) that are not lesions, so neither the background nor other lesions bleed in.

    Only the lesion's own voxels change label (to the most common non-lesion label of the
    ring around it); the dilation changes image values only, so context labels stay.
    """
    opts = ctx.recipe.inpaint
    pad = int(opts.dilate) + int(np.ceil(opts.radius)) + 3
    mask, box = lesion_mask(case.labels, lesion, ctx.recipe.connectivity, pad=pad)
    labels = case.labels[box]
    others = ctx.lesion_voxels(labels) & ~mask
    region = region_for(mask, opts.dilate, others, ctx.recipe.connectivity)
    channels = inpaint_patch(case.channels[(slice(None),) + box], region, opts,
                             np.random.default_rng(noise_seed),
                             known=ctx.allowed[box] & ~(region | others))
    new_labels = labels.copy()
    new_labels[mask] = ring_label(labels, region, ctx.classes)
    return Edit(box, channels.astype(case.channels.dtype, copy=False), new_labels)


# ---------------------------------------------------------------------- provenance
@dataclass
class Operation:
    """One draw of the loop: what was tried, and whether it changed the case."""

    kind: str
    accepted: bool
    reason: str = ""
    entry: str | None = None
    params: dict | None = None
    center: list | None = None
    lesion: dict | None = None
    noise_seed: int | None = None
    tries: int = 0
    voxels: int = 0
    load_mm3: float = 0.0
    box: list | None = None


@dataclass
class Provenance:
    """Everything needed to say what a synthesised case is and to rebuild it.

    ``status`` says how the loop ended: ``reached`` (achieved load within tolerance of
    the target), ``stuck`` (``max_tries`` draws in a row found no lesion that fits
    without passing the target band, or no lesion is small enough to remove), ``cap``
    (``max_operations`` reached), ``no_lesions`` (nothing left to inpaint). A step never
    takes the load past the far edge of the band [target − tol, target + tol].
    Loads are in mm³.
    """

    recipe: dict
    recipe_hash: str
    seed: dict
    source: dict
    target_load_mm3: float
    start_load_mm3: float
    achieved_load_mm3: float = 0.0
    start_voxels: int = 0
    achieved_voxels: int = 0
    tolerance_mm3: float = 0.0
    direction: str = "none"
    status: str = "reached"
    operations: list = field(default_factory=list)
    bank_sources: dict = field(default_factory=dict)
    version: int = PROVENANCE_VERSION

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        d["operations"] = [asdict(o) if isinstance(o, Operation) else o
                           for o in self.operations]
        return d

    def to_json(self, path: str | Path | None = None, overwrite: bool = False) -> str:
        """Indented JSON; written atomically to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        if path is not None:
            atomic_write_text(path, text, overwrite=overwrite)
        return text

    @classmethod
    def from_dict(cls, d: dict) -> Provenance:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["operations"] = [Operation(**o) for o in d.get("operations", [])]
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> Provenance:
        """Read a provenance sidecar."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{path}: not a readable provenance file ({exc})") from None

    @property
    def accepted(self) -> list:
        return [o for o in self.operations if o.accepted]


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
               progress=None, name: str | None = None) -> SynthResult:
    """Populate or inpaint ``case`` until its lesion load reaches a drawn target.

    Parameters
    ----------
    case : Case
        The source case; it is not modified.
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
    ctx = CaseContext(case, recipe)
    if target_load is None:
        refs = reference_loads
        if refs is None and recipe.load_distribution != "fixed":
            refs = list(bank.loads_by_case().values())
        target = LoadDistribution.from_recipe(recipe, refs).sample(rng)
    else:
        target = float(target_load)
    counts = np.bincount(case.labels.ravel().astype(np.int64, copy=False)) \
        if case.labels.size else np.zeros(1, np.int64)
    voxels = int(sum(counts[c] for c in ctx.classes if c < counts.size))
    load = voxels * ctx.voxel_volume
    tol = recipe.tolerance * target
    prov = Provenance(recipe.to_dict(), recipe.hash(),
                      {"entropy": int(ss.entropy) if not isinstance(ss.entropy, (list, tuple))
                       else [int(e) for e in ss.entropy], "spawn_key": list(ss.spawn_key)},
                      {"case": case.name, "image_paths": list(case.image_paths or []),
                       "label_path": case.label_path},
                      float(target), float(load), start_voxels=voxels,
                      tolerance_mm3=float(tol))
    out = case.copy()
    if name:
        out.name = name
    if load < target - tol:
        prov.direction = "populate"
        voxels = _populate_loop(out, bank, lmap, ctx, rng, prov, voxels, target, tol, progress)
    elif load > target + tol:
        prov.direction = "inpaint"
        voxels = _inpaint_loop(out, ctx, rng, prov, voxels, target, tol, progress)
    prov.achieved_voxels = int(voxels)
    prov.achieved_load_mm3 = float(voxels * ctx.voxel_volume)
    if abs(prov.achieved_load_mm3 - target) <= tol:
        prov.status = "reached"
    return SynthResult(out, prov)


def _fits(load: float, change: float, target: float, tol: float) -> bool:
    """A step keeps the load from passing the far edge of the target band."""
    new = load + change
    return new <= target + tol if change >= 0 else new >= target - tol


def location_sampler(case: Case, lmap: LikelihoodMap | None, ctx: CaseContext):
    """The sampler placement draws from: the map without disallowed or lesion voxels.

    ``None`` gives a uniform map over the allowed region. Raises
    :class:`LikelihoodError` when the map is zero everywhere lesions are allowed.
    """
    if lmap is None:
        lmap = LikelihoodMap(ctx.allowed.astype(np.float32), case.geometry)
    occupied = ctx.lesion_voxels(case.labels) if lmap.on_grid(case.geometry, case.labels.shape) \
        else None
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
        estimate = entry.lesion.voxels * params.scale ** case.ndim * ctx.voxel_volume
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
    for t in range(opts.max_tries):
        center = sampler.sample(rng)
        op.tries = t + 1
        if center is None:
            op.reason = "sampled location outside the image"
            continue
        op.reason = check_location(case, prep, center, ctx)
        if not op.reason:
            edit = place_edit(case, prep, center, ctx)
            edit.apply(case)
            op.accepted, op.center, op.voxels, op.box = True, list(center), prep.voxels, edit.box()
            return op
    op.reason = f"no location found in {opts.max_tries} tries (last: {op.reason})"
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
    for n_op in range(recipe.max_operations):
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


def _inpaint_loop(out, ctx, rng, prov, voxels, target, tol, progress) -> int:
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
        if k is None:
            prov.status = "no_lesions" if not lesions else "stuck"
            break
        op = inpaint_step(out, lesions.pop(k), ctx, rng)
        voxels += op.voxels
        op.load_mm3 = voxels * vv
        prov.operations.append(op)
        if progress is not None:
            progress(n_op + 1, recipe.max_operations)
    return voxels


# ---------------------------------------------------------------------- replay
def replay(provenance, case: Case, bank: LesionBank) -> Case:
    """Rebuild a synthesised case from its provenance, the source case and the bank.

    Only the accepted operations are applied, with their recorded parameters, so no
    random draw happens: the result equals the original output bit for bit.
    """
    prov = provenance if isinstance(provenance, Provenance) else Provenance.from_dict(provenance)
    recipe = Recipe.from_dict(prov.recipe)
    ctx = CaseContext(case, recipe)
    out = case.copy()
    for op in prov.accepted:
        if op.kind == "populate":
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
