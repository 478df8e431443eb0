"""The Recipe: every option of LesionMix in one validated, JSON-serialisable object.

A recipe is what a user edits by hand, what the GUI saves and what the command line
reads. Its top-level field names are part of the user interface (``docs/recipe.md``), so
they are kept stable. Missing fields take their defaults; an unknown field or a bad value
raises :class:`RecipeError` naming the field.

Values marked *(paper)* come from Basaran et al. 2023; values marked *(choice)* are ours.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .io_utils import parse_json

#: The values of every choice field, by its dotted name: the one list the validation, the
#: engine and the GUI's menus read.
CHOICES: dict[str, tuple] = {
    "load_distribution": ("real", "uniform", "gaussian", "low", "medium", "high", "fixed"),
    "connectivity": ("full", "face"),
    "populate.pick": ("uniform", "class", "size"),
    "populate.interpolation": ("linear", "cubic"),
    "populate.mask_interpolation": ("distance", "linear"),
    "populate.brightness_mode": ("contrast", "raw"),
    "likelihood.align": ("auto", "register", "none"),
    "populate.blend": ("soft", "hard"),
    "inpaint.pick": ("uniform", "size"),
    "inpaint.method": ("slices", "slice-axis", "3d"),
    "online.direction": ("both", "populate"),
}

_INF = math.inf
#: The inclusive ``(low, high)`` bounds of every number field, by its dotted name (for a
#: ``[low, high]`` range field, of both its ends): the one table the validation and the
#: GUI's boxes and sliders read.
BOUNDS: dict[str, tuple] = {
    "lesion_classes": (1, 2**31 - 1),
    "organ_label": (1, 2**31 - 1),
    "load.lo": (0.0, _INF),
    "load.hi": (0.0, _INF),
    "load.mean": (-_INF, _INF),
    "load.std": (0.0, _INF),
    "load.value": (0.0, _INF),
    "load.reference": (0.0, _INF),
    "min_voxels": (1, 10**9),
    "populate.flip_p": (0.0, 1.0),
    "populate.rotate_p": (0.0, 1.0),
    "populate.rotate_deg": (0.0, 180.0),
    "populate.scale_p": (0.0, 1.0),
    "populate.scale": (0.05, 20.0),
    "populate.elastic_p": (0.0, 1.0),
    "populate.elastic_sigma": (0.1, 100.0),
    "populate.elastic_magnitude": (0.0, 50.0),
    "populate.brightness_p": (0.0, 1.0),
    "populate.brightness": (0.0, 10.0),
    "populate.noise_p": (0.0, 1.0),
    "populate.noise_std": (0.0, 10.0),
    "populate.blend_sigma": (0.0, 20.0),
    "populate.min_inside": (0.0, 1.0),
    "populate.surround_tol": (0.0, 100.0),
    "populate.min_gap": (0, 100),
    "populate.max_tries": (1, 100000),
    "populate.margin": (0, 100),
    "inpaint.axis": (0, 2),
    "inpaint.dilate": (0, 50),
    "inpaint.radius": (1.0, 50.0),
    "inpaint.seam_sigma": (0.0, 20.0),
    "likelihood.sigma_mm": (0.0, 1000.0),
    "likelihood.floor": (0.0, 1.0),
    "online.p": (0.0, 1.0),
    "tolerance": (0.0, 1.0),
    "max_operations": (1, 10**6),
    "seed": (0, 2**63 - 1),
}

LOAD_DISTRIBUTIONS = CHOICES["load_distribution"]
INPAINT_METHODS = CHOICES["inpaint.method"]


class RecipeError(ValueError):
    """A recipe field is unknown or holds a bad value. The message names the field."""


#: the recipe a dataset folder may ship beside its dataset.json; the plugin adopts it when
#: the dataset's layers are chosen and the command line reads it when no --recipe is given
DATASET_RECIPE_FILE = "lesionmix_recipe.json"


def dataset_recipe_path(folder: str | Path) -> Path | None:
    """``folder/lesionmix_recipe.json`` if ``folder`` is a directory that ships one."""
    path = Path(folder) / DATASET_RECIPE_FILE
    return path if Path(folder).is_dir() and path.is_file() else None


def _range(name: str, value: Any) -> tuple:
    lo, hi = BOUNDS[name]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise RecipeError(f"{name}: expected a [low, high] pair, got {value!r}")
    a, b = (_number(f"{name}[{i}]", v, lo, hi) for i, v in enumerate(value))
    if a > b:
        raise RecipeError(f"{name}: low {a} is greater than high {b}")
    return (a, b)


def _number(name: str, value: Any, lo: float | None = None, hi: float | None = None) -> float:
    if lo is None:
        lo, hi = BOUNDS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RecipeError(f"{name}: expected a finite number, got {value!r}")
    if not lo <= value <= hi:
        raise RecipeError(f"{name}: {value} is outside the allowed range [{lo}, {hi}]")
    return float(value)


def _integer(name: str, value: Any, bounds: str | None = None) -> int:
    lo, hi = BOUNDS[bounds or name]
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise RecipeError(f"{name}: expected a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise RecipeError(f"{name}: {value} is outside the allowed range [{lo}, {hi}]")
    return int(value)


def _choice(name: str, value: Any) -> Any:
    options = CHOICES[name]
    if value not in options:
        raise RecipeError(f"{name}: {value!r} is not one of {', '.join(map(repr, options))}")
    return value


@dataclass
class PopulateOptions:
    """Populate: pick, augment, place and insert one lesion.

    Parameters
    ----------
    pick : {"uniform", "class", "size"}
        How a lesion is drawn from the bank: uniformly over lesions (paper default),
        uniformly over classes then lesions, or weighted by volume (choice).
    flip_p : float
        Probability of flipping each axis (paper: 0.5).
    rotate_p, rotate_deg : float, (float, float)
        Probability of rotating about each axis and the angle range in degrees
        (paper: 0.5, [1, 89]). The sign of the angle is drawn with p = 0.5 (choice).
    scale_p, scale : float, (float, float)
        Probability and range of the isotropic resize factor (paper: [0.5, 1.8]; p = 1 choice).
    elastic_p, elastic_sigma, elastic_magnitude : float, (float, float), float
        Elastic deformation: probability (choice 0.5), Gaussian sigma range of the smoothed
        random displacement field in voxels (paper: [3, 7]), and its largest displacement in
        voxels (choice: 2).
    brightness_p, brightness : float, (float, float)
        Brightness factor (paper: [0.9, 1.1]; p = 1 choice).
    brightness_mode : {"contrast", "raw"}
        ``contrast`` (choice, default): the factor scales the lesion's contrast to its
        surroundings, so it means the same in every modality, and the lesion keeps that
        contrast where it is placed (it is set relative to the tissue around its new
        place); ``raw`` (the paper's): the factor multiplies the raw intensities and the
        lesion keeps its z-scores.
    restore : bool
        Give a resampled lesion back its donor's contrast and texture (choice: on);
        rotation, resizing and elastic deformation average neighbouring voxels and lower
        both.
    noise_p, noise_std : float, (float, float)
        Additive Gaussian noise, std range in normalised (z-score) units (choice: [0, 0.1]).
    interpolation : {"linear", "cubic"}
        Image interpolation.
    mask_interpolation : {"distance", "linear"}
        ``distance`` (choice, default): the mask is resampled through its signed distance
        to the lesion's surface (shape-based interpolation), so lesions from thick slices
        are not box-shaped on thin slices; ``linear``: linear then thresholded at 0.5.
    blend : {"soft", "hard"}
        Soft (default) blends with the mask smoothed by ``blend_sigma`` voxels.
    blend_sigma : float
        Gaussian sigma of the soft blend in voxels (choice: 1).
    min_inside : float
        Fraction of the lesion mask that must lie in the allowed region (choice: 1, the
        whole lesion). Below 1 a lesion may be placed across the region's edge, but only
        its part inside is written.
    min_gap : int
        Voxels between a new lesion and any existing lesion (choice: 1).
    surround_tol : float
        A location is accepted only where its surroundings look like the donor lesion's
        own: in every channel, the middle half (25th to 75th percentile) of the tissue
        under and 2 voxels around the placed lesion lies within ``surround_tol`` (z-score
        units of the target) of the median of the 2-voxel ring around the lesion in its
        source case (choice: 0.7; 0 turns the check off). So white-matter lesions land in
        white matter, learnt from the data, with no atlas.
    max_tries : int
        Locations tried before a lesion is skipped (choice: 50).
    margin : int
        Voxels of context kept around each lesion in the bank (choice: 3).
    """

    pick: str = "uniform"
    flip_p: float = 0.5
    rotate_p: float = 0.5
    rotate_deg: tuple = (1.0, 89.0)
    scale_p: float = 1.0
    scale: tuple = (0.5, 1.8)
    elastic_p: float = 0.5
    elastic_sigma: tuple = (3.0, 7.0)
    elastic_magnitude: float = 2.0
    brightness_p: float = 1.0
    brightness: tuple = (0.9, 1.1)
    noise_p: float = 1.0
    noise_std: tuple = (0.0, 0.1)
    brightness_mode: str = "contrast"
    restore: bool = True
    interpolation: str = "linear"
    mask_interpolation: str = "distance"
    blend: str = "soft"
    blend_sigma: float = 1.0
    min_inside: float = 1.0
    min_gap: int = 1
    surround_tol: float = 0.7
    max_tries: int = 50
    margin: int = 3

    def validate(self, where: str = "populate") -> None:
        p = f"{where}."
        _choice(p + "pick", self.pick)
        for name in ("flip_p", "rotate_p", "scale_p", "elastic_p", "brightness_p", "noise_p",
                     "elastic_magnitude", "blend_sigma", "min_inside", "surround_tol"):
            setattr(self, name, _number(p + name, getattr(self, name)))
        for name in ("rotate_deg", "scale", "elastic_sigma", "brightness", "noise_std"):
            setattr(self, name, _range(p + name, getattr(self, name)))
        for name in ("min_gap", "max_tries", "margin"):
            setattr(self, name, _integer(p + name, getattr(self, name)))
        _choice(p + "interpolation", self.interpolation)
        _choice(p + "mask_interpolation", self.mask_interpolation)
        _choice(p + "brightness_mode", self.brightness_mode)
        _choice(p + "blend", self.blend)
        if not isinstance(self.restore, bool):
            raise RecipeError(f"{p}restore: expected true or false, got {self.restore!r}")


@dataclass
class InpaintOptions:
    """Inpaint: remove one lesion by a fast-marching (Telea) fill.

    Parameters
    ----------
    pick : {"uniform", "size"}
        How the lesion to remove is chosen (paper: uniform).
    method : {"slices", "slice-axis", "3d"}
        ``slices`` fills 2D slices along each axis with OpenCV's Telea method and averages
        them (default); ``slice-axis`` fills along ``axis`` only; ``3d`` is a true 3D fill
        in fast-marching (distance) order with Telea-style weights.
    axis : int
        The axis for ``slice-axis`` (numpy order: 0 is the slowest axis, z in 3D).
    dilate : int
        The lesion mask is dilated by this many voxels to form the region (choice: 1).
    radius : float
        Neighbourhood radius of the Telea fill in voxels (choice: 3).
    seam_sigma : float
        Gaussian sigma in voxels of the smoothing across the region after the fill
        (choice: 1; 0 turns it off).
    texture : bool
        Add noise with the grain of the same tissue around the region: a robust std of
        the high-pass residual of the ring voxels that look like the fill (choice: on).
    """

    pick: str = "uniform"
    method: str = "slices"
    axis: int = 0
    dilate: int = 1
    radius: float = 3.0
    seam_sigma: float = 1.0
    texture: bool = True

    def validate(self, where: str = "inpaint") -> None:
        p = f"{where}."
        _choice(p + "pick", self.pick)
        _choice(p + "method", self.method)
        self.axis = _integer(p + "axis", self.axis)
        self.dilate = _integer(p + "dilate", self.dilate)
        self.radius = _number(p + "radius", self.radius)
        self.seam_sigma = _number(p + "seam_sigma", self.seam_sigma)
        if not isinstance(self.texture, bool):
            raise RecipeError(f"{p}texture: expected true or false, got {self.texture!r}")


@dataclass
class LikelihoodOptions:
    """Lesion likelihood map options.

    Parameters
    ----------
    sigma_mm : float
        Gaussian smoothing of the summed masks, in mm (choice: 0 = none).
    floor : float
        Share of the placement draws that go uniformly anywhere in the allowed region
        (the rest follow the summed lesion masks), so that locations never seen with a
        lesion stay possible and a case whose own lesions make up the whole map (a
        one-case dataset) can still be populated (choice: 0.05, i.e. 5 % of the draws).
    align : {"auto", "register", "none"}
        How cases are put into one space before their masks are summed, and the map read
        on each (choice: ``auto``): ``auto`` registers (SimpleITK, similarity transform) a
        case whose foreground (placement mask, else non-zero voxels) overlaps the first
        case's with Dice < 0.9 in physical space; ``register`` registers every case; ``none`` trusts the headers. A case
        still overlapping with Dice < 0.8 after registration uses its own map, and the
        user is told.
    """

    sigma_mm: float = 0.0
    floor: float = 0.05
    align: str = "auto"

    def validate(self, where: str = "likelihood") -> None:
        self.sigma_mm = _number(f"{where}.sigma_mm", self.sigma_mm)
        self.floor = _number(f"{where}.floor", self.floor)
        _choice(f"{where}.align", self.align)


@dataclass
class OnlineOptions:
    """On-the-fly LesionMix in a training pipeline (TorchIO, MONAI, nnU-Net).

    Only the training-time transforms read this section; ``lesionmix generate`` ignores
    it, so a batch recipe runs unchanged.

    Parameters
    ----------
    p : float
        Probability that a training sample gets LesionMix at all (choice: 0.5, the
        usual share for an augmentation that changes what a sample holds).
    direction : {"both", "populate"}
        ``both`` (default): each sample draws a target load from ``load_distribution``
        and lesions are added or removed to reach it, as offline; ``populate``: lesions
        are only added, and a sample whose load is already at or above its drawn target
        is left as it is.
    """

    p: float = 0.5
    direction: str = "both"

    def validate(self, where: str = "online") -> None:
        self.p = _number(f"{where}.p", self.p)
        _choice(f"{where}.direction", self.direction)


LOAD_KEYS = {
    "real": {"reference"},
    "uniform": {"lo", "hi", "reference"},
    "gaussian": {"mean", "std", "hi", "reference"},
    "low": {"reference"},
    "medium": {"reference"},
    "high": {"reference"},
    "fixed": {"value"},
}


@dataclass
class Recipe:
    """Every option of a LesionMix run.

    Parameters
    ----------
    lesion_classes : list of int, optional
        Label values that are lesions. ``None`` means every non-zero label other than
        ``organ_label`` (binary case).
    organ_label : int, optional
        Context label that bounds placement and builds an organ-style likelihood map.
    load_distribution : str
        One of real, uniform, gaussian, low, medium, high, fixed.
    load : dict
        The distribution's parameters in mm³: ``lo``, ``hi`` (uniform), ``mean``, ``std``,
        ``hi`` (gaussian), ``value`` (fixed), ``reference`` (a list of reference loads that
        replaces the training set's).
    min_voxels : int
        Smallest connected component counted as a lesion (choice: 3).
    connectivity : {"full", "face"}
        ``full`` is 26-connectivity in 3D and 8 in 2D (choice); ``face`` is 6 / 4.
    populate, inpaint, likelihood : options objects
        See :class:`PopulateOptions`, :class:`InpaintOptions`, :class:`LikelihoodOptions`.
    online : OnlineOptions
        How the training-time transforms apply LesionMix (see :class:`OnlineOptions`);
        ignored by the batch path.
    tolerance : float
        Relative tolerance on the target load (choice: 0.05).
    max_operations : int
        Cap on operations per synthesised case (choice: 200).
    seed : int
        The recipe's seed; each output case gets its own child stream.

    Examples
    --------
    >>> r = Recipe(load_distribution="high")
    >>> Recipe.from_dict(r.to_dict()) == r
    True
    """

    lesion_classes: list | None = None
    organ_label: int | None = None
    load_distribution: str = "real"
    load: dict = field(default_factory=dict)
    min_voxels: int = 3
    connectivity: str = "full"
    populate: PopulateOptions = field(default_factory=PopulateOptions)
    inpaint: InpaintOptions = field(default_factory=InpaintOptions)
    likelihood: LikelihoodOptions = field(default_factory=LikelihoodOptions)
    online: OnlineOptions = field(default_factory=OnlineOptions)
    tolerance: float = 0.05
    max_operations: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        for name, cls in _SECTIONS:
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, _section(cls, value, name))
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check every field; raise :class:`RecipeError` naming the first bad one."""
        if self.lesion_classes is not None:
            if not isinstance(self.lesion_classes, (list, tuple)) or not self.lesion_classes:
                raise RecipeError(
                    f"lesion_classes: expected a non-empty list of label values or null, "
                    f"got {self.lesion_classes!r}")
            self.lesion_classes = sorted(
                {_integer(f"lesion_classes[{i}]", v, "lesion_classes")
                 for i, v in enumerate(self.lesion_classes)})
        if self.organ_label is not None:
            self.organ_label = _integer("organ_label", self.organ_label)
            if self.lesion_classes and self.organ_label in self.lesion_classes:
                raise RecipeError(
                    f"organ_label: {self.organ_label} is also listed in lesion_classes")
        _choice("load_distribution", self.load_distribution)
        self._validate_load()
        self.min_voxels = _integer("min_voxels", self.min_voxels)
        _choice("connectivity", self.connectivity)
        for name, cls in _SECTIONS:
            if not isinstance(getattr(self, name), cls):
                raise RecipeError(f"{name}: expected an object, got {getattr(self, name)!r}")
            getattr(self, name).validate(name)
        self.tolerance = _number("tolerance", self.tolerance)
        self.max_operations = _integer("max_operations", self.max_operations)
        self.seed = _integer("seed", self.seed)

    def _validate_load(self) -> None:
        if not isinstance(self.load, dict):
            raise RecipeError(f"load: expected an object, got {self.load!r}")
        allowed = LOAD_KEYS[self.load_distribution]
        clean: dict = {}
        for key, value in self.load.items():
            if key not in allowed:
                raise RecipeError(
                    f"load.{key}: not a parameter of the {self.load_distribution!r} "
                    f"distribution (it takes: {', '.join(sorted(allowed))})")
            if value is None:
                continue
            if key == "reference":
                if not isinstance(value, (list, tuple)) or not value:
                    raise RecipeError("load.reference: expected a non-empty list of loads in mm³")
                clean[key] = [_number(f"load.reference[{i}]", v, *BOUNDS["load.reference"])
                              for i, v in enumerate(value)]
            else:
                clean[key] = _number(f"load.{key}", value)
        if self.load_distribution == "fixed" and "value" not in clean:
            raise RecipeError("load.value: the 'fixed' distribution needs a value in mm³")
        if "lo" in clean and "hi" in clean and clean["lo"] > clean["hi"]:
            raise RecipeError(f"load.lo: {clean['lo']} is greater than load.hi {clean['hi']}")
        self.load = clean

    # ------------------------------------------------------------------ conversion
    def to_dict(self) -> dict:
        """Plain JSON-ready dict holding every field, defaults included."""
        d = dataclasses.asdict(self)
        for section, _ in _SECTIONS:
            d[section] = {k: list(v) if isinstance(v, tuple) else v
                          for k, v in d[section].items()}
        return d

    @classmethod
    def from_dict(cls, data: dict, source: str | None = None) -> Recipe:
        """Build a recipe from a dict; ``source`` (a file name) prefixes error messages."""
        try:
            if not isinstance(data, dict):
                raise RecipeError(f"expected a JSON object at the top level, got {type(data).__name__}")
            return _section(cls, data, None)
        except RecipeError as exc:
            if source:
                raise RecipeError(f"{source}: {exc}") from None
            raise

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialise to indented JSON; write it atomically to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=2)
        # keep [low, high] pairs and short lists on one line: easier to edit by hand
        text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]",
                      lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]",
                      text) + "\n"
        if path is not None:
            from .io_utils import atomic_write_text
            atomic_write_text(Path(path), text)
        return text

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> Recipe:
        """Load a recipe from a JSON file path (or a JSON string starting with ``{``)."""
        if isinstance(path_or_text, str) and path_or_text.lstrip().startswith("{"):
            text, source = path_or_text, None
        else:
            source = str(path_or_text)
            try:
                text = Path(path_or_text).read_text()
            except OSError as exc:
                raise RecipeError(f"{source}: cannot read the recipe ({exc.strerror})") from None
        try:
            data = parse_json(text)
        except json.JSONDecodeError as exc:
            where = f"{source}: " if source else ""
            raise RecipeError(f"{where}not valid JSON (line {exc.lineno}, column {exc.colno}: "
                              f"{exc.msg})") from None
        return cls.from_dict(data, source)

    def hash(self) -> str:
        """Short SHA-256 of the canonical JSON (the seed excluded): names the recipe.

        The ``online`` section counts only when it differs from its defaults, so a recipe
        that does not use it keeps the hash it had before the section existed.
        """
        d = self.to_dict()
        d.pop("seed")
        if d["online"] == dataclasses.asdict(OnlineOptions()):
            d.pop("online")
        canon = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> Recipe:
        """A validated copy with some top-level fields changed."""
        d = self.to_dict()
        d.update(changes)
        return Recipe.from_dict(d)


_SECTIONS = (("populate", PopulateOptions), ("inpaint", InpaintOptions),
             ("likelihood", LikelihoodOptions), ("online", OnlineOptions))


def _section(cls, data: dict, where: str | None):
    names = {f.name for f in fields(cls)}
    for key in data:
        if key not in names:
            full = f"{where}.{key}" if where else key
            raise RecipeError(f"{full}: unknown field (known: {', '.join(sorted(names))})")
    kwargs = {}
    for key, value in data.items():
        if isinstance(value, list) and cls is not Recipe:
            value = tuple(value)
        kwargs[key] = value
    obj = cls(**kwargs)
    if cls is not Recipe:
        obj.validate(where)
    return obj
