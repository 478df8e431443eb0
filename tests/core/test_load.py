"""Target-load distributions."""

import numpy as np
import pytest

from napari_lesionmix.core.load import LoadDistribution, LoadError

REF = [100.0, 250.0, 400.0, 900.0, 1600.0, 3000.0]


def draws(kind, params=None, n=4000, ref=REF):
    d = LoadDistribution(kind, params or {}, ref)
    rng = np.random.default_rng(0)
    return d, np.array([d.sample(rng) for _ in range(n)])


def test_real_draws_only_reference_values_and_all_of_them():
    _, x = draws("real")
    assert set(np.unique(x)) == set(REF)


def test_uniform_defaults_to_reference_range_and_honours_bounds():
    _, x = draws("uniform")
    assert x.min() >= 100 and x.max() <= 3000 and abs(np.median(x) - 1550) < 150
    _, y = draws("uniform", {"lo": 10, "hi": 20})
    assert y.min() >= 10 and y.max() <= 20


def test_gaussian_is_truncated_to_zero_and_hi():
    d, x = draws("gaussian", {"mean": 100, "std": 500})
    assert x.min() >= 0 and x.max() <= max(REF)
    d2, y = draws("gaussian")
    assert abs(np.mean(y) - np.mean(REF)) < 0.5 * np.std(REF)


def test_tertiles_split_the_reference_range():
    q = np.quantile(REF, [0, 1 / 3, 2 / 3, 1])
    for i, kind in enumerate(("low", "medium", "high")):
        _, x = draws(kind, n=500)
        assert x.min() >= q[i] - 1e-9 and x.max() <= q[i + 1] + 1e-9
    assert draws("low")[1].mean() < draws("medium")[1].mean() < draws("high")[1].mean()


def test_fixed_and_reference_override():
    _, x = draws("fixed", {"value": 42.0}, n=10, ref=None)
    assert np.all(x == 42.0)
    d = LoadDistribution("real", {"reference": [5.0, 6.0]}, REF)
    assert set(d.sample(np.random.default_rng(i)) for i in range(50)) == {5.0, 6.0}


def test_one_draw_per_sample_keeps_streams_aligned():
    for kind in ("real", "uniform", "gaussian", "low", "fixed"):
        d = LoadDistribution(kind, {"value": 1.0} if kind == "fixed" else {}, REF)
        a, b = np.random.default_rng(3), np.random.default_rng(3)
        d.sample(a)
        b.random()
        assert a.random() == b.random()


def test_missing_reference_is_a_clear_error():
    with pytest.raises(LoadError, match="needs reference loads"):
        LoadDistribution("real", {}, [])
    with pytest.raises(LoadError, match="value"):
        LoadDistribution("fixed", {}, REF)


def test_density_integrates_to_one_for_continuous_kinds():
    x = np.linspace(0, 3500, 20001)
    for kind in ("uniform", "gaussian", "medium"):
        d = LoadDistribution(kind, {}, REF)
        assert abs(np.trapezoid(d.density(x), x) - 1.0) < 0.02


def test_uniform_bounds_that_cross_are_an_error():
    with pytest.raises(LoadError, match="load.lo 5000 above load.hi 3000"):
        LoadDistribution("uniform", {"lo": 5000.0}, REF)
