"""Provenance: what each synthesised case is and every draw that made it."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .io_utils import atomic_write_text, parse_json

PROVENANCE_VERSION = 1


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


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
    (``max_operations`` reached), ``no_lesions`` (nothing left to inpaint), ``closest``
    (inpainting: every lesion left would take the load below the band, so the one
    whose removal lands closest to the target was removed last). Apart from that last
    removal, a step never takes the load past the far edge of the band
    [target − tol, target + tol].
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
    lesion_classes: list | None = None
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
        """Inverse of :meth:`to_dict`; ValueError naming the field for what no run writes
        (a version this package does not know, an unknown operation, a non-finite load or
        centre)."""
        if not isinstance(d, dict):
            raise ValueError(f"expected a JSON object, got {type(d).__name__}")
        d = dict(d)
        version = d.get("version", PROVENANCE_VERSION)
        if not isinstance(version, int) or not 1 <= version <= PROVENANCE_VERSION:
            raise ValueError(f"version {version!r}: this napari-lesionmix reads provenance "
                             f"version 1 to {PROVENANCE_VERSION}")
        ops = d.get("operations", [])
        if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
            raise ValueError("operations must be a list of objects")
        d["operations"] = [Operation(**o) for o in ops]
        out = cls(**d)
        for key in ("target_load_mm3", "start_load_mm3", "achieved_load_mm3"):
            if not _finite(getattr(out, key)):
                raise ValueError(f"{key} {getattr(out, key)!r} is not a finite number")
        for i, op in enumerate(out.operations):
            if op.kind not in ("populate", "inpaint"):
                raise ValueError(f"operations[{i}]: unknown kind {op.kind!r}")
            if op.accepted and op.kind == "populate" and (
                    not isinstance(op.center, list) or not all(map(_finite, op.center))):
                raise ValueError(f"operations[{i}]: center {op.center!r} is not a list of "
                                 "finite numbers")
        return out

    @classmethod
    def load(cls, path: str | Path) -> Provenance:
        """Read a provenance sidecar."""
        try:
            return cls.from_dict(parse_json(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{path}: not a usable provenance file ({exc})") from None

    @property
    def accepted(self) -> list:
        return [o for o in self.operations if o.accepted]
