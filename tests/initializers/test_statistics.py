"""Statistical tests: sampled moments and distributions match ``describe()`` (issue 2).

For every random initializer and three shapes (2-D, conv 3x3x16x32, 1-D bias) we draw
N >= 100,000 values (fixed seed) and check
- the mean within 5 standard errors (SE = std/sqrt(N)),
- the variance within 5 standard errors (SE estimated from the sample's fourth moment),
- a Kolmogorov-Smirnov test against the stated distribution: p > 1e-3.
Orthogonal and delta-orthogonal kernels are not i.i.d.: their variance is exact (checked) and
their structure is checked in tests/initializers/test_structured.py. Sparse kernels: exactly k nonzeros per
unit, and a KS test of the nonzero values against N(0, stddev^2).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import RANDOM_CLASSES, example, supports, to_np
from scipy import stats

import kerasinit
from kerasinit.initializers.describe import sample

N = 100_000
SHAPES = [(400, 300), (3, 3, 16, 32), (2000,)]
CASES = [
    (cls, shape, defaults)
    for cls in RANDOM_CLASSES
    for shape in SHAPES
    for defaults in (True, False)
    if supports(cls, shape, defaults) and (defaults or cls.__name__ in ("RandomUniform", "VarianceScaling", "KwonNormal", "TruncatedNormal", "SparseNormal"))
]


def _init(cls, defaults):
    return cls(seed=1) if defaults else example(cls, seed=1)


def _cdf(desc):
    if desc.distribution == "uniform":
        lo, hi = desc.bounds
        return stats.uniform(loc=lo, scale=hi - lo).cdf
    if desc.distribution == "normal":
        return stats.norm(loc=desc.mean, scale=desc.std).cdf
    if desc.distribution == "truncated_normal":
        lo, hi = desc.bounds
        sigma = (hi - lo) / 4.0  # truncation at +-2 sigma of the parent normal
        mid = (hi + lo) / 2.0
        return stats.truncnorm(-2.0, 2.0, loc=mid, scale=sigma).cdf
    raise AssertionError(desc.distribution)


@pytest.mark.parametrize(
    "cls, shape, defaults", CASES, ids=[f"{c.__name__}-{'x'.join(map(str, s))}-{'default' if d else 'args'}" for c, s, d in CASES]
)
def test_moments_and_distribution(cls, shape, defaults):
    init = _init(cls, defaults)
    desc = kerasinit.describe(init, shape)
    x = sample(init, shape, n=N, seed=2024)
    assert x.size >= N
    n = x.size
    mean, var = x.mean(), x.var()
    se_mean = desc.std / np.sqrt(n)
    assert abs(mean - desc.mean) <= 5 * se_mean, (mean, desc.mean, se_mean)
    se_var = np.sqrt(np.var((x - mean) ** 2) / n)
    assert abs(var - desc.variance) <= 5 * se_var, (var, desc.variance, se_var)
    if desc.bounds is not None:
        lo, hi = desc.bounds
        tol = 1e-6 * max(1.0, abs(lo), abs(hi))
        assert x.min() >= lo - tol and x.max() <= hi + tol
    if desc.distribution in ("orthogonal", "delta_orthogonal"):
        return
    if desc.distribution == "sparse_normal":
        density = desc.params["density"]
        assert np.count_nonzero(x) == round(density * x.size)  # exactly k per unit, every draw
        nonzero = x[x != 0]
        p = stats.kstest(nonzero, stats.norm(scale=init.stddev).cdf).pvalue
        assert p > 1e-3, f"KS p-value {p:.2e} for the nonzero sparse values"
        return
    p = stats.kstest(x, _cdf(desc)).pvalue
    assert p > 1e-3, f"KS p-value {p:.2e} for {desc.distribution}"


@pytest.mark.parametrize("shape", [(50, 30), (30, 50), (3, 3, 8, 16)])
def test_orthogonal_is_orthogonal(shape):
    gain = 1.5
    w = to_np(kerasinit.Orthogonal(gain=gain, seed=3)(shape)).reshape(-1, shape[-1]).astype("float64")
    rows, cols = w.shape
    gram = w.T @ w if rows >= cols else w @ w.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), atol=1e-4)
    desc = kerasinit.describe(kerasinit.Orthogonal(gain=gain), shape)
    assert np.mean(w**2) == pytest.approx(desc.std**2, rel=1e-4)


def test_truncated_normal_std_factor():
    """The 0.8796 factor: std of N(0,1) truncated to [-2, 2]."""
    from kerasinit.initializers.base import TRUNCATED_STD_FACTOR

    assert stats.truncnorm(-2, 2).std() == pytest.approx(TRUNCATED_STD_FACTOR, rel=1e-12)


def test_summarize_matches_expected():
    s = kerasinit.summarize("xavier_uniform", shape=(10, 10), n=1000, seed=0)
    assert s.n == 1000
    assert -0.316228 <= s.min < s.max <= 0.316228
    assert abs(s.std - s.expected.std) < 5 * s.expected.std / np.sqrt(2 * 1000)
