"""The blinded test: can a rater tell synthesised lesions from real ones?

A session draws ``n`` trials with a seed: half real lesions (connected components of the
original cases, or of the source files the provenance names when the dataset holds no
originals), half synthesised ones (the lesions added by populate operations, from the
provenance). With ``match_size`` (default) each real lesion is the one of closest volume
to a synthesised lesion, so size alone does not give the answer. Trials are shuffled and
shown unnamed, as zoomed three-plane crops of the image through the lesion's centre, the
same field of view for every trial and no outline.

Answers are saved at once (atomic rewrite) to ``<dataset>/qa/blinded/<rater>_<time>.json``;
the file also holds the truth, so the rater should not open it before the end. The score
is the accuracy with its exact (Clopper-Pearson) 95% binomial interval from
``scipy.stats.binomtest``, and the test's p-value against guessing (0.5). An interval that
holds 0.5 means the rater could not tell real from synthetic in these trials.

Examples
--------
>>> s = BlindedSession.new(review, rater="alice", n=20, seed=1)   # doctest: +SKIP
>>> t = s.next_trial(); s.answer(t.id, "synthetic")              # doctest: +SKIP
>>> s.score().accuracy                                           # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..core.image_io import read_image
from ..core.io_utils import atomic_write_text
from ..core.lesions import find_lesions
from ..core.provenance import Provenance
from .decisions import qa_folder
from .orient import Orienter
from .sheet import crop, window_of

__all__ = ["Trial", "Score", "BlindedSession", "ANSWERS", "FOV_MM"]

ANSWERS = ("real", "synthetic")
FOV_MM = 48.0
FORMAT = "napari-lesionmix/blinded-test"


@dataclass
class Trial:
    """One lesion shown to the rater; ``truth`` and where it comes from stay hidden."""

    id: str
    truth: str
    case: str
    image_paths: list
    centroid: list
    volume_mm3: float
    answer: str = ""
    time: str = ""


@dataclass
class Score:
    """The rater's result: ``correct`` of ``n`` answered trials."""

    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    p_value: float
    synthetic_found: tuple = (0, 0)
    real_found: tuple = (0, 0)

    def verdict(self) -> str:
        """The result in words."""
        if self.n == 0:
            return "no answers yet"
        head = (f"{self.correct}/{self.n} correct, accuracy {self.accuracy:.0%} (95% CI "
                f"{self.ci_low:.0%}–{self.ci_high:.0%}, exact binomial; p = {self.p_value:.3g} "
                f"against guessing)")
        if self.ci_low > 0.5:
            return head + ": this rater can tell synthesised lesions from real ones"
        if self.ci_high < 0.5:
            return head + ": worse than guessing: synthesised lesions look more real than " \
                          "the real ones to this rater"
        return head + ": the interval holds 50%: this rater could not tell them apart " \
                      f"in {self.n} trials"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _real_candidates(review) -> list:
    """(case, image paths, centroid, volume) of every real lesion."""
    sources = [(r.name, r.image_paths, r.label_path) for r in review.rows
               if r.kind == "original" and not r.problem]
    if not sources:  # no originals in the dataset: the source files named in provenance
        seen = set()
        for r in review.rows:
            if r.provenance_path is None:
                continue
            src = json.loads(Path(r.provenance_path).read_text())["source"]
            label = src.get("label_path")
            if label and label not in seen and Path(label).exists() and \
                    all(Path(p).exists() for p in src.get("image_paths", [])):
                seen.add(label)
                sources.append((src["case"], [Path(p) for p in src["image_paths"]], Path(label)))
    out = []
    for name, imgs, label in sources:
        labels, geom, _ = read_image(label)
        for les in find_lesions(labels, review.classes, geom.spacing_zyx,
                                review.recipe.min_voxels, review.recipe.connectivity):
            out.append((name, [str(p) for p in imgs], list(les.centroid), les.volume_mm3))
    return out


def _synthetic_candidates(review) -> list:
    out = []
    for r in review.rows:
        if r.provenance_path is None:
            continue
        prov = Provenance.load(r.provenance_path)
        vv = float(np.prod(review_spacing(r)))
        for op in prov.accepted:
            if op.kind == "populate" and op.voxels >= review.recipe.min_voxels:
                out.append((r.name, [str(p) for p in r.image_paths],
                            [float(c) for c in op.center], op.voxels * vv))
    return out


def review_spacing(row) -> tuple:
    """Voxel size of a case from its label file's header (no voxels read)."""
    import SimpleITK as sitk
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(row.label_path))
    reader.ReadImageInformation()
    return reader.GetSpacing()


@dataclass
class BlindedSession:
    """A rater's blinded test (see the module's docstring)."""

    path: Path
    rater: str
    seed: int
    trials: list = field(default_factory=list)
    created: str = ""
    dataset: str = ""

    @classmethod
    def new(cls, review, rater: str, n: int = 20, seed: int = 0,
            match_size: bool = True) -> BlindedSession:
        """Draw ``n`` trials (half real, half synthesised) and save the session.

        Raises
        ------
        ValueError
            The dataset has no synthesised or no real lesion to show.
        """
        if n < 2:
            raise ValueError(f"a blinded test needs at least 2 trials, got {n}")
        synth = _synthetic_candidates(review)
        real = _real_candidates(review)
        if not synth:
            raise ValueError(f"{review.root}: no synthesised lesion (no populate operation "
                             "in any provenance file): nothing to test")
        if not real:
            raise ValueError(f"{review.root}: no real lesion found (no original case in the "
                             "dataset and no readable source named in the provenance)")
        rng = np.random.default_rng(seed)
        k = min(n // 2, len(synth), len(real))
        picked_s = [synth[i] for i in rng.choice(len(synth), k, replace=False)]
        if match_size:
            pool = list(range(len(real)))
            picked_r = []
            for s in picked_s:
                j = min(pool, key=lambda i: abs(np.log(real[i][3]) - np.log(s[3])))
                pool.remove(j)
                picked_r.append(real[j])
        else:
            picked_r = [real[i] for i in rng.choice(len(real), k, replace=False)]
        trials = [Trial("", truth, *c) for truth, group in (("synthetic", picked_s),
                                                            ("real", picked_r)) for c in group]
        order = rng.permutation(len(trials))
        trials = [trials[i] for i in order]
        ids = rng.choice(16**6, len(trials), replace=False)
        for t, i in zip(trials, ids):
            t.id = f"{int(i):06x}"
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", rater) or "rater"
        path = qa_folder(review.root) / "blinded" / f"{safe}_{stamp}.json"
        out = cls(path, rater, int(seed), trials, _now(), str(review.root))
        out.save()
        return out

    @classmethod
    def load(cls, path) -> BlindedSession:
        try:
            d = json.loads(Path(path).read_text())
            if d.get("format") != FORMAT:
                raise ValueError("not a blinded-test file")
            trials = [Trial(**t) for t in d["trials"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: unreadable blinded-test session ({exc})") from None
        return cls(Path(path), d["rater"], d["seed"], trials, d.get("created", ""),
                   d.get("dataset", ""))

    def save(self) -> None:
        data = {"format": FORMAT, "version": 1, "rater": self.rater, "seed": self.seed,
                "created": self.created, "dataset": self.dataset,
                "trials": [asdict(t) for t in self.trials]}
        atomic_write_text(self.path, json.dumps(data, indent=1) + "\n")

    # ------------------------------------------------------------------ running
    def next_trial(self) -> Trial | None:
        """The first trial not answered yet (None when all are)."""
        return next((t for t in self.trials if not t.answer), None)

    @property
    def answered(self) -> int:
        return sum(1 for t in self.trials if t.answer)

    def answer(self, trial_id: str, answer: str) -> None:
        """Record ``answer`` ("real" or "synthetic") for a trial and save at once."""
        if answer not in ANSWERS:
            raise ValueError(f"answer must be 'real' or 'synthetic', got {answer!r}")
        trial = next((t for t in self.trials if t.id == trial_id), None)
        if trial is None:
            raise ValueError(f"{self.path}: no trial {trial_id!r}")
        trial.answer, trial.time = answer, _now()
        self.save()

    def score(self) -> Score:
        from scipy.stats import binomtest

        done = [t for t in self.trials if t.answer]
        correct = sum(t.answer == t.truth for t in done)
        if not done:
            return Score(0, 0, float("nan"), 0.0, 1.0, 1.0)
        res = binomtest(correct, len(done), 0.5)
        ci = res.proportion_ci(confidence_level=0.95, method="exact")

        def found(truth):
            group = [t for t in done if t.truth == truth]
            return sum(t.answer == truth for t in group), len(group)

        return Score(len(done), correct, correct / len(done), float(ci.low), float(ci.high),
                     float(res.pvalue), found("synthetic"), found("real"))


def trial_planes(trial: Trial, channel: int = 0, fov_mm: float = FOV_MM) -> dict:
    """The three planes through the trial's lesion (radiological, ``fov_mm`` wide).

    Returns
    -------
    dict
        ``planes``: plane name → 2D float32 array (NaN outside the image), ``pixel_size``:
        plane name → (row, col) mm, ``window``: display range of the whole image.
    """
    path = trial.image_paths[min(channel, len(trial.image_paths) - 1)]
    arr, geom, _ = read_image(path)
    o = Orienter(geom)
    canon = o.array(arr.astype(np.float32, copy=False))
    p = o.point(trial.centroid, arr.shape)
    planes = ("axial", "coronal", "sagittal") if arr.ndim == 3 else ("axial",)
    out = {"planes": {}, "pixel_size": {}, "window": window_of(canon)}
    for plane in planes:
        rs, cs = o.pixel_size(plane)
        half = (int(np.ceil(fov_mm / 2 / rs)), int(np.ceil(fov_mm / 2 / cs)))
        out["planes"][plane] = crop(o.plane(canon, plane, p), o.plane_point(plane, p,
                                                                              canon.shape), half)
        out["pixel_size"][plane] = (rs, cs)
    return out
