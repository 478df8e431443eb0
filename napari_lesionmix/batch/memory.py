"""Cases held in memory (e.g. from napari layers) as a source of a run.

A :class:`MemorySource` offers what :class:`~napari_lesionmix.batch.dataset.Dataset`
offers a run (case names, dataset.json fields, validation, the originals), for cases
that are arrays rather than files. A run over it executes in the calling process (the
arrays are not sent to worker processes). It may carry the lesion bank, the likelihood
map and the reference loads the caller already has (the napari plugin's), so that the
run uses those instead of building them from its cases.

Examples
--------
>>> from napari_lesionmix import GenerateOptions, generate                   # doctest: +SKIP
>>> source = MemorySource.from_case(case, bank=bank, lmap=lmap)             # doctest: +SKIP
>>> summary = generate(GenerateOptions(source, "out", n=10))                # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..core.case import Case
from ..core.io_utils import parse_json
from ..core.lesions import LesionBank
from ..core.likelihood import LikelihoodMap
from .dataset import BadCase, SourceCase
from .layout import OutputLayout

__all__ = ["MemorySource", "dataset_fields"]


def dataset_fields(case: Case) -> tuple[dict, dict, dict]:
    """``channel_names``, ``labels`` and other dataset.json fields for a case.

    When the case's label file lies in an nnU-Net dataset's ``labelsTr/`` whose
    dataset.json declares every label value of the case and as many channels, that file's
    fields are used; otherwise the channels are named after ``case.channel_names`` and
    the labels ``{"background": 0, "label_1": 1, ...}`` up to the largest value.

    Returns
    -------
    (channel_names, labels, meta) : dict, dict, dict
    """
    if case.label_path:
        djson = Path(case.label_path).parent.parent / "dataset.json"
        try:
            meta = parse_json(djson.read_text(encoding="utf-8"))
            labels = {str(k): int(v) for k, v in meta["labels"].items()}
            channels = dict(meta["channel_names"])
            if len(channels) == case.n_channels and case.label_values() <= set(labels.values()):
                return channels, labels, meta
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    top = int(case.labels.max()) if case.labels.size else 0
    channels = {str(c): (case.channel_names[c] if c < len(case.channel_names) else str(c))
                for c in range(case.n_channels)}
    labels = {"background": 0, **{f"label_{v}": v for v in range(1, top + 1)}}
    return channels, labels, {}


@dataclass
class MemorySource:
    """Cases in memory, with the dataset.json fields of the output.

    Attributes
    ----------
    memory : list of Case
        The cases (not modified by a run).
    channel_names, labels, meta : dict
        The output's dataset.json fields.
    bank : LesionBank, optional
        Use this bank instead of one built from the cases.
    lmap : LikelihoodMap, optional
        Use this map instead of one built from the cases (see ``lmap_given``).
    lmap_given : bool
        True when ``lmap`` is the caller's, even None (None then means uniform placement
        over each case's allowed region); False builds the map from the cases.
    reference_loads : list of float, optional
        The target distribution's reference loads (mm³); default the cases' loads.
    description : str
        What the plan names as the input.
    """

    memory: list[Case]
    channel_names: dict
    labels: dict
    meta: dict = field(default_factory=dict)
    bank: LesionBank | None = None
    lmap: LikelihoodMap | None = None
    lmap_given: bool = False
    reference_loads: list | None = None
    description: str = ""

    layout = "memory"
    file_ending = ".nii.gz"
    root = None

    @classmethod
    def from_case(cls, case: Case, *, bank: LesionBank | None = None,
                  lmap: LikelihoodMap | None = None, lmap_given: bool = True,
                  reference_loads=None) -> MemorySource:
        """One case (e.g. from napari layers); dataset.json fields from :func:`dataset_fields`."""
        channels, labels, meta = dataset_fields(case)
        where = case.label_path or f"in-memory case {case.name}"
        return cls([case], channels, labels, meta, bank, lmap, lmap_given,
                   None if reference_loads is None else [float(v) for v in reference_loads],
                   f"{where} (napari layers)")

    @property
    def cases(self) -> list[SourceCase]:
        """One :class:`SourceCase` per case, sorted by name; paths are where it came from."""
        return [SourceCase(c.name, [Path(p) for p in c.image_paths],
                           Path(c.label_path) if c.label_path else None)
                for c in sorted(self.memory, key=lambda c: c.name)]

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    def case(self, name: str) -> Case:
        """The case called ``name``."""
        for c in self.memory:
            if c.name == name:
                return c
        raise KeyError(name)

    def describe(self) -> str:
        return self.description or f"{len(self.memory)} in-memory case(s)"

    def label_values(self) -> set[int]:
        return {int(v) for v in self.labels.values()}

    def fingerprint(self) -> str:
        """Hash of every case's voxels, geometry and name."""
        h = hashlib.sha256()
        for c in sorted(self.memory, key=lambda c: c.name):
            h.update(f"{c.name}\n{c.geometry.to_dict()}\n".encode())
            h.update(c.channels.tobytes())
            h.update(c.labels.tobytes())
        return h.hexdigest()[:16]

    def iter_valid(self, bad: list[BadCase],
                   progress: Callable[[int, int], None] | None = None
                   ) -> Iterator[tuple[SourceCase, Case]]:
        """Each case (validated when it was built); label values outside ``labels`` are
        reported as bad."""
        allowed = self.label_values()
        total = len(self.memory)
        for i, source in enumerate(self.cases):
            case = self.case(source.name)
            extra = sorted(case.label_values() - allowed)
            if extra:
                bad.append(BadCase(source.name, f"case {source.name}: label values {extra} "
                                                f"are not declared in {self.labels}"))
            else:
                yield source, case
            if progress is not None:
                progress(i + 1, total)

    def write_original(self, source: SourceCase, layout: OutputLayout,
                       compression_level: int | None = None) -> list[Path]:
        """Write one case into the output under its own name (atomically)."""
        files = layout.image_paths(source.name) + [layout.label_path(source.name)]
        self.case(source.name).write(files[:-1], files[-1], overwrite=True,
                                     compression_level=compression_level, tmp_dir=layout.tmp)
        return files
