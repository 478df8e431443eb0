"""Bringing cases into one space for the likelihood map: check, register, or fall back.

The likelihood map sums lesion masks on one reference grid, which assumes every case is
in one physical space. Cases of different subjects, scanners or headers often are not
(an oblique header turns the whole head). For each case :func:`align_case` measures the
overlap (Dice) of its foreground (the placement mask, else its non-zero voxels: a
skull-stripped brain, a CT's field of view) with the reference's in physical space (an
organ's own shape varies too much between subjects to tell); when they overlap well the case is used as it is; else it is registered
to the reference with SimpleITK (a similarity transform, Mattes mutual information on the
first channel, two coarse levels, single-threaded and regularly sampled so the result is
the same on every run). When even registration leaves the overlap poor, the case falls
back to its own map and the caller tells the user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .geometry import Geometry
from .io_utils import atomic_path, parse_json, split_ext

__all__ = ["Alignment", "Reference", "align_case", "alignment_notices", "ALIGN_MODES",
           "ONE_SPACE", "ALIGNED"]

#: ``likelihood.align``: ``auto`` registers a case only when it does not overlap the
#: reference in physical space; ``register`` registers every case; ``none`` never does.
ALIGN_MODES = ("auto", "register", "none")
#: Dice of the allowed regions at or above which two cases share one space (choice).
ONE_SPACE = 0.9
#: Dice after registration below which alignment has failed (choice).
ALIGNED = 0.8


@dataclass
class Alignment:
    """How one case is put into the reference's space.

    Attributes
    ----------
    kind : {"physical", "registered", "own"}
        As it is, through ``params``, or not at all (the case uses its own map).
    dice : float
        Overlap of its allowed region with the reference's, in the reference's space,
        after alignment.
    params, fixed : list of float, optional
        The similarity transform (``sitk.Similarity3DTransform`` or ``Similarity2D``)
        parameters and fixed parameters: it maps reference points to the case's points.
    before : float, optional
        The overlap in physical space, before registration.
    """

    kind: str
    dice: float
    params: list | None = None
    fixed: list | None = None
    before: float | None = None

    def transform(self, ndim: int) -> sitk.Transform:
        """Reference → case physical points (identity unless registered)."""
        if self.kind != "registered":
            return sitk.Transform(ndim, sitk.sitkIdentity)
        t = sitk.Similarity3DTransform() if ndim == 3 else sitk.Similarity2DTransform()
        t.SetFixedParameters([float(v) for v in self.fixed])
        t.SetParameters([float(v) for v in self.params])
        return t

    def to_dict(self) -> dict:
        return {"kind": self.kind, "dice": float(self.dice), "params": self.params,
                "fixed": self.fixed, "before": self.before}

    @classmethod
    def from_dict(cls, d: dict) -> Alignment:
        return cls(d["kind"], float(d["dice"]), d.get("params"), d.get("fixed"), d.get("before"))


class Reference:
    """The case others are aligned to: its first channel and foreground.

    A float32 ``image`` is kept as it is given (not copied: the caller does not change
    it); the SimpleITK images registration needs are made when first needed.
    """

    def __init__(self, image: np.ndarray, region: np.ndarray, geometry: Geometry):
        self.geometry = geometry
        self._image = np.asarray(image, np.float32)
        self._region = np.asarray(region, bool)

    @cached_property
    def image(self) -> sitk.Image:
        """The first channel as a SimpleITK image."""
        return _image(self._image, self.geometry)

    @cached_property
    def region(self) -> sitk.Image:
        """The foreground as a SimpleITK image (uint8)."""
        return _image(self._region.astype(np.uint8), self.geometry)

    @property
    def shape(self) -> tuple:
        return self._region.shape

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(first channel, foreground) as arrays, for saving."""
        return self._image, self._region

    def dice(self, region: np.ndarray, geometry: Geometry,
             transform: sitk.Transform | None = None) -> float:
        """Dice of ``region`` (on ``geometry``) with the reference's region, on its grid."""
        moved = resample_mask(region, geometry, self, transform)
        den = int(moved.sum()) + int(self._region.sum())
        return 2.0 * float(np.count_nonzero(moved & self._region)) / den if den else 0.0


def _image(array: np.ndarray, geometry: Geometry) -> sitk.Image:
    img = sitk.GetImageFromArray(np.ascontiguousarray(array))
    geometry.apply_to(img)
    return img


def resample_mask(mask: np.ndarray, geometry: Geometry, ref: Reference,
                  transform: sitk.Transform | None = None) -> np.ndarray:
    """A mask of a case on the reference's grid (nearest neighbour) through ``transform``
    (reference → case points; identity: physical)."""
    if transform is None and geometry.matches(ref.geometry) and mask.shape == ref.shape:
        return np.asarray(mask, bool)  # already on the reference's grid
    img = _image(np.asarray(mask, np.uint8), geometry)
    t = transform if transform is not None else sitk.Transform(geometry.ndim, sitk.sitkIdentity)
    out = sitk.Resample(img, ref.region, t, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.GetArrayFromImage(out).astype(bool)


def register(image: np.ndarray, geometry: Geometry, ref: Reference) -> sitk.Transform:
    """Similarity transform (reference → case points) that best aligns ``image`` to the
    reference's first channel (Mattes mutual information)."""
    ndim = geometry.ndim
    moving = _image(np.asarray(image, np.float32), geometry)
    kind = sitk.Similarity3DTransform() if ndim == 3 else sitk.Similarity2DTransform()
    init = sitk.CenteredTransformInitializer(
        ref.image, moving, kind, sitk.CenteredTransformInitializerFilter.MOMENTS)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(32)
    reg.SetMetricSamplingStrategy(reg.REGULAR)
    reg.SetMetricSamplingPercentage(0.2, 1)  # a fixed seed: the default is the clock
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(1.0, 1e-3, 100, relaxationFactor=0.5)
    reg.SetOptimizerScalesFromPhysicalShift()
    finest = float(min(ref.geometry.spacing))
    reg.SetShrinkFactorsPerLevel([max(1, round(4.0 / finest)), max(1, round(2.0 / finest))])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(init, inPlace=False)
    reg.SetNumberOfThreads(1)  # the same result on every run and machine load
    result = reg.Execute(ref.image, moving)
    if isinstance(result, sitk.CompositeTransform):
        result = result.GetNthTransform(result.GetNumberOfTransforms() - 1)
    out = sitk.Similarity3DTransform() if ndim == 3 else sitk.Similarity2DTransform()
    out.SetFixedParameters(result.GetFixedParameters())
    # ITK's smoothing pyramid runs on its global thread pool, which leaves the optimum
    # different in the last bits from run to run; rounding to 1e-9 (radians, mm, scale)
    # makes two builds of the same map give the same transform, far below a voxel
    out.SetParameters([round(float(v), 9) for v in result.GetParameters()])
    return out


def align_case(image: np.ndarray, region: np.ndarray, geometry: Geometry, ref: Reference,
               mode: str = "auto") -> Alignment:
    """How a case (first channel ``image``, foreground ``region``) goes into ``ref``'s space.

    ``auto``: as it is when its region overlaps the reference's with Dice >= ONE_SPACE,
    else registered; ``register``: always registered; ``none``: as it is. A registration
    that leaves the Dice below ALIGNED gives kind ``own``.
    """
    if mode not in ALIGN_MODES:
        raise ValueError(f"likelihood.align: {mode!r} is not one of {', '.join(ALIGN_MODES)}")
    dice = ref.dice(region, geometry)
    if mode == "none" or (mode == "auto" and dice >= ONE_SPACE):
        return Alignment("physical", dice)
    try:
        t = register(image, geometry, ref)
    except RuntimeError:  # ITK gives up (e.g. no overlap at all): the case's own map
        return Alignment("own", dice, before=dice)
    after = ref.dice(region, geometry, t)
    if after < ALIGNED:
        return Alignment("own", after, before=dice)
    return Alignment("registered", after, [float(v) for v in t.GetParameters()],
                     [float(v) for v in t.GetFixedParameters()], before=dice)


def alignment_notices(alignment: dict, reference_name: str) -> list[str]:
    """One line per case that was not used as it is: registered, or on its own map."""
    out = []
    for name, a in alignment.items():
        if a.kind == "registered":
            out.append(f"{name}: not in the space of {reference_name} (overlap "
                       f"{a.before:.2f}); registered to it (overlap now {a.dice:.2f})")
        elif a.kind == "own":
            out.append(f"{name}: could not be aligned to {reference_name} (overlap "
                       f"{a.dice:.2f} after registration); it uses its own lesion map")
    return out


# ---------------------------------------------------------------- files
def align_path(map_path) -> Path:
    """The alignment file beside a map file: ``likelihood.nii.gz`` -> ``likelihood.align.npz``."""
    p = Path(map_path)
    return p.with_name(split_ext(p.name)[0] + ".align.npz")


def save_alignment(path, ref: Reference, alignment: dict, build: dict, notices: list,
                   overwrite: bool = False, tmp_dir=None) -> None:
    """Write the reference, the alignments, the build options and the notices (one file),
    atomically (the temporary file in ``tmp_dir``, default beside ``path``)."""
    image, region = ref.arrays()
    meta = {"geometry": ref.geometry.to_dict(), "build": build, "notices": list(notices),
            "alignment": {k: a.to_dict() for k, a in alignment.items()}}
    with atomic_path(path, overwrite=overwrite, tmp_dir=tmp_dir) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, image=image, region=region.astype(np.uint8),
                                meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))


def load_alignment(path) -> tuple[Reference, dict, dict, list]:
    """Read what :func:`save_alignment` wrote."""
    alignment, build, notices = load_alignment_meta(path)
    return load_reference(path), alignment, build, notices


def load_alignment_meta(path) -> tuple[dict, dict, list]:
    """The alignments, build and notices of what :func:`save_alignment` wrote, without the
    reference's arrays (:func:`load_reference` reads those when a new case needs them)."""
    try:
        with np.load(path) as z:
            meta = parse_json(bytes(z["meta"]).decode())
            missing = {"image", "region"} - set(z.files)
            if missing:
                raise KeyError(", ".join(sorted(missing)))
            Geometry.from_dict(meta["geometry"])
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable map alignment ({exc})") from None
    alignment = {k: Alignment.from_dict(d) for k, d in meta["alignment"].items()}
    return alignment, dict(meta["build"]), list(meta["notices"])


def load_reference(path) -> Reference:
    """The reference case of what :func:`save_alignment` wrote."""
    try:
        with np.load(path) as z:
            meta = parse_json(bytes(z["meta"]).decode())
            return Reference(z["image"], z["region"].astype(bool),
                             Geometry.from_dict(meta["geometry"]))
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable map alignment ({exc})") from None
