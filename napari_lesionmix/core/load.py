"""Target-load distributions P(v): each synthesised case draws one target load from it.

The reference loads are the per-case lesion loads of the training set in mm³, or a list
the recipe gives (``load.reference``).
"""

from __future__ import annotations

import numpy as np
from scipy import stats as st

from .recipe import LOAD_DISTRIBUTIONS


class LoadError(ValueError):
    """The distribution cannot be built from what it was given."""


class LoadDistribution:
    """One of real, uniform, gaussian, low, medium, high, fixed (``docs/recipe.md``).

    Parameters
    ----------
    kind : str
        The distribution.
    params : dict
        ``lo``/``hi`` (uniform), ``mean``/``std``/``hi`` (gaussian), ``value`` (fixed);
        missing ones come from the reference loads.
    reference : sequence of float
        Reference loads in mm³. Not needed for ``fixed`` nor for a fully specified
        ``uniform`` or ``gaussian``.

    Examples
    --------
    >>> d = LoadDistribution("high", {}, [100.0, 400.0, 700.0, 1000.0])
    >>> d.support()
    (700.0, 1000.0)
    >>> 700.0 <= d.sample(np.random.default_rng(0)) <= 1000.0
    True
    """

    def __init__(self, kind: str, params: dict | None = None, reference=None):
        self.kind = kind
        self.params = dict(params or {})
        ref = self.params.pop("reference", None)
        if ref is None:
            ref = reference
        self.reference = np.asarray([] if ref is None else ref, float)
        if self.reference.size and (not np.all(np.isfinite(self.reference))
                                    or (self.reference < 0).any()):
            raise LoadError("reference loads must be finite and non-negative")
        self._check()

    @classmethod
    def from_recipe(cls, recipe, reference_loads=None) -> LoadDistribution:
        """The recipe's distribution over the given reference loads."""
        return cls(recipe.load_distribution, recipe.load, reference_loads)

    # ------------------------------------------------------------------ checks
    def _need_reference(self) -> bool:
        p = self.params
        if self.kind == "fixed":
            return False
        if self.kind == "uniform":
            return not ("lo" in p and "hi" in p)
        if self.kind == "gaussian":
            return not ("mean" in p and "std" in p and "hi" in p)
        return True

    def _check(self) -> None:
        if self.kind not in LOAD_DISTRIBUTIONS:
            raise LoadError(f"unknown load distribution {self.kind!r}")
        if self.kind == "fixed" and "value" not in self.params:
            raise LoadError("the 'fixed' distribution needs load.value")
        if self._need_reference() and self.reference.size == 0:
            raise LoadError(f"the {self.kind!r} distribution needs reference loads: give "
                            "training cases with lesions or load.reference in the recipe")
        lo, hi = self.support()
        if lo > hi:
            raise LoadError(f"the {self.kind!r} distribution has load.lo {lo:g} above load.hi "
                            f"{hi:g} mm³ (a bound left out comes from the reference loads)")

    # ------------------------------------------------------------------ shape
    def support(self) -> tuple[float, float]:
        """The interval the draws fall in."""
        r, p, k = self.reference, self.params, self.kind
        if k == "fixed":
            return float(p["value"]), float(p["value"])
        if k == "real":
            return float(r.min()), float(r.max())
        if k == "uniform":
            return float(p.get("lo", r.min() if r.size else 0)), float(p.get("hi", r.max() if r.size else 0))
        if k == "gaussian":
            return 0.0, float(p["hi"] if "hi" in p else r.max())
        q = np.quantile(r, [0.0, 1 / 3, 2 / 3, 1.0])
        i = {"low": 0, "medium": 1, "high": 2}[k]
        return float(q[i]), float(q[i + 1])

    def _gauss(self) -> tuple[float, float, float]:
        r, p = self.reference, self.params
        mean = float(p["mean"]) if "mean" in p else float(r.mean())
        std = float(p["std"]) if "std" in p else float(r.std())
        hi = float(p["hi"]) if "hi" in p else float(r.max())
        return mean, max(std, 1e-9), hi

    def sample(self, rng: np.random.Generator) -> float:
        """One target load in mm³ (exactly one draw from ``rng`` whatever the kind)."""
        u = float(rng.random())
        if self.kind == "real":
            return float(self.reference[min(int(u * self.reference.size), self.reference.size - 1)])
        if self.kind == "gaussian":
            mean, std, hi = self._gauss()
            a, b = (0.0 - mean) / std, (hi - mean) / std
            if a >= b:
                return float(min(max(mean, 0.0), hi))
            return float(st.truncnorm.ppf(u, a, b, loc=mean, scale=std))
        lo, hi = self.support()
        return float(lo + u * (hi - lo))

    def density(self, x: np.ndarray) -> np.ndarray:
        """Probability density over ``x`` (for plots; ``real`` and ``fixed`` give spikes)."""
        x = np.asarray(x, float)
        if self.kind == "gaussian":
            mean, std, hi = self._gauss()
            a, b = (0.0 - mean) / std, (hi - mean) / std
            return st.truncnorm.pdf(x, a, b, loc=mean, scale=std)
        if self.kind in ("real", "fixed"):
            pts = self.reference if self.kind == "real" else np.array([self.params["value"]])
            width = max(float(np.ptp(np.append(pts, x))) / 100.0, 1e-9)
            return sum(np.exp(-0.5 * ((x - v) / width) ** 2) for v in pts) / (
                len(pts) * width * np.sqrt(2 * np.pi))
        lo, hi = self.support()
        inside = (x >= lo) & (x <= hi)
        return np.where(inside, 1.0 / max(hi - lo, 1e-9), 0.0)

    def describe(self) -> str:
        """One line for people: the kind and its effective parameters."""
        if self.kind == "gaussian":
            mean, std, hi = self._gauss()
            return f"gaussian(mean={mean:.1f}, std={std:.1f}, truncated to [0, {hi:.1f}]) mm³"
        if self.kind == "real":
            return f"real: one of {self.reference.size} reference loads"
        lo, hi = self.support()
        return f"{self.kind}: U[{lo:.1f}, {hi:.1f}] mm³" if lo != hi else f"fixed {lo:.1f} mm³"
