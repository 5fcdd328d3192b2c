"""Mori–Tanaka, Hashin–Shtrikman and Maxwell Garnett against limits, identities and Eshelby."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fem.errors import ConfigError
from validation.effective import (
    e_nu_from_kg,
    hashin_shtrikman,
    hashin_shtrikman_conductivity,
    kg_from_e_nu,
    maxwell_garnett,
    mori_tanaka,
)

E = st.floats(0.1, 100.0)
NU = st.floats(0.0, 0.45)
DIM = st.sampled_from([2, 3])
REL = 1e-10  # relative tolerance of closed-form identities (rounding only)


@settings(max_examples=40, deadline=None)
@given(E, NU, DIM)
def test_e_nu_round_trip(e, nu, dim):
    """E, ν → K, G → E, ν (rel. 1e-10)."""
    K, G = kg_from_e_nu(e, nu, dim)
    e2, nu2 = e_nu_from_kg(K, G, dim)
    assert e2 == pytest.approx(e, rel=REL) and nu2 == pytest.approx(nu, rel=REL, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(E, NU, E, NU, DIM)
def test_end_points_are_the_phases(em, num, ei, nui, dim):
    """MT at f = 0 is the matrix, at f = 1 the inclusion; the HS bounds too (rel. 1e-10)."""
    Km, Gm = kg_from_e_nu(em, num, dim)
    Ki, Gi = kg_from_e_nu(ei, nui, dim)
    assert np.allclose(mori_tanaka(Km, Gm, Ki, Gi, 0.0, dim), (Km, Gm), rtol=REL)
    assert np.allclose(mori_tanaka(Km, Gm, Ki, Gi, 1.0, dim), (Ki, Gi), rtol=REL)
    for f, ref in ((0.0, (Km, Gm)), (1.0, (Ki, Gi))):
        for bound in hashin_shtrikman(Km, Gm, Ki, Gi, f, dim):
            assert np.allclose(bound, ref, rtol=REL)


def _stiff(em, num, ratio, nui, dim):
    """A matrix and an inclusion stiffer in both K and G (well-ordered phases)."""
    Km, Gm = kg_from_e_nu(em, num, dim)
    Ki, Gi = kg_from_e_nu(em * ratio, nui, dim)
    return Km, Gm, max(Ki, Km), max(Gi, Gm)


@settings(max_examples=60, deadline=None)
@given(E, NU, st.floats(1.0, 1000.0), NU, st.floats(0.0, 1.0), DIM)
def test_mt_is_the_hs_lower_bound_for_stiff_inclusions(em, num, ratio, nui, f, dim):
    """Stiffer inclusions: HS lower = MT ≤ HS upper (rel. 1e-10)."""
    Km, Gm, Ki, Gi = _stiff(em, num, ratio, nui, dim)
    K, G = mori_tanaka(Km, Gm, Ki, Gi, f, dim)
    (K_lo, G_lo), (K_hi, G_hi) = hashin_shtrikman(Km, Gm, Ki, Gi, f, dim)
    assert K_lo == pytest.approx(K, rel=REL) and G_lo == pytest.approx(G, rel=REL)
    assert K <= K_hi * (1 + REL) and G <= G_hi * (1 + REL)
    assert min(Km, Ki) * (1 - REL) <= K and G <= max(Gm, Gi) * (1 + REL)


@settings(max_examples=40, deadline=None)
@given(E, NU, st.floats(1.0, 1000.0), NU, st.floats(0.0, 1.0))
def test_hs_lower_is_hashin_shtrikman_1963_and_hashin_1965(em, num, ratio, nui, f):
    """The bounds in their original closed forms (3D: HS 1963; 2D transverse: Hashin 1965)."""
    Km, Gm, Ki, Gi = _stiff(em, num, ratio, nui, 3)
    (K_lo, G_lo), _ = hashin_shtrikman(Km, Gm, Ki, Gi, f)
    if Ki > Km:
        assert K_lo == pytest.approx(Km + f / (1 / (Ki - Km) + 3 * (1 - f) / (3 * Km + 4 * Gm)),
                                     rel=REL)
    if Gi > Gm:
        tail = 6 * (1 - f) * (Km + 2 * Gm) / (5 * Gm * (3 * Km + 4 * Gm))
        assert G_lo == pytest.approx(Gm + f / (1 / (Gi - Gm) + tail), rel=REL)
    Km, Gm, Ki, Gi = _stiff(em, num, ratio, nui, 2)
    (K_lo, G_lo), _ = hashin_shtrikman(Km, Gm, Ki, Gi, f, dim=2)
    if Ki > Km:
        assert K_lo == pytest.approx(Km + f / (1 / (Ki - Km) + (1 - f) / (Km + Gm)), rel=REL)
    if Gi > Gm:
        tail = (1 - f) * (Km + 2 * Gm) / (2 * Gm * (Km + Gm))
        assert G_lo == pytest.approx(Gm + f / (1 / (Gi - Gm) + tail), rel=REL)


def _eshelby_dilute_slopes(Km, Gm, Ki, Gi, dim):
    """dK/df, dG/df at f = 0 from Eshelby's tensor: sphere, or circular cylinder in plane strain."""
    _, nu = e_nu_from_kg(Km, Gm, dim)
    if dim == 3:
        alpha, beta = (1 + nu) / (3 * (1 - nu)), 2 * (4 - 5 * nu) / (15 * (1 - nu))
    else:
        alpha, beta = 1 / (2 * (1 - nu)), (3 - 4 * nu) / (4 * (1 - nu))
    return ((Ki - Km) / (1 + alpha * (Ki - Km) / Km), (Gi - Gm) / (1 + beta * (Gi - Gm) / Gm))


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("ratio, nui", [(10.0, 0.2), (0.1, 0.4), (1e-6, 0.0)])
def test_dilute_slope_is_eshelby(dim, ratio, nui):
    """(MT(f) − M_m)/f → Eshelby's dilute slope with an O(f) remainder (halving f halves it)."""
    Km, Gm = kg_from_e_nu(1.0, 0.3, dim)
    Ki, Gi = kg_from_e_nu(ratio, nui, dim)
    slopes = _eshelby_dilute_slopes(Km, Gm, Ki, Gi, dim)
    h = 1e-4
    for j, (m0, s) in enumerate(zip((Km, Gm), slopes, strict=True)):
        err = [abs((mori_tanaka(Km, Gm, Ki, Gi, f, dim)[j] - m0) / f - s) for f in (h, h / 2)]
        assert err[0] < 1e-3 * abs(s)
        assert err[0] / err[1] == pytest.approx(2.0, rel=1e-2)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.01, 100.0), st.floats(0.01, 100.0), st.floats(0.0, 1.0), DIM)
def test_maxwell_garnett_is_maxwell_and_an_hs_bound(km, ki, f, dim):
    """Maxwell's (k−k_m)/(k+(d−1)k_m) = f (k_i−k_m)/(k_i+(d−1)k_m); HS lower (upper) bound
    when the matrix conducts less (more) (rel. 1e-10)."""
    q = f * (ki - km) / (ki + (dim - 1) * km)
    k = maxwell_garnett(km, ki, f, dim)
    assert k == pytest.approx(km * (1 + (dim - 1) * q) / (1 - q), rel=REL)
    lo, hi = hashin_shtrikman_conductivity(km, ki, f, dim)
    assert lo <= hi * (1 + REL)
    assert k == pytest.approx(lo if km <= ki else hi, rel=REL)
    assert min(km, ki) * (1 - REL) <= lo and hi <= max(km, ki) * (1 + REL)


def test_voids_stay_finite():
    """Empty inclusions (K_i = G_i = 0): finite MT; HS lower bound 0 for f > 0."""
    Km, Gm = kg_from_e_nu(1.0, 0.3)
    K, G = mori_tanaka(Km, Gm, 0.0, 0.0, 0.3)
    (K_lo, G_lo), (K_hi, G_hi) = hashin_shtrikman(Km, Gm, 0.0, 0.0, 0.3)
    assert 0 < K < Km and 0 < G < Gm
    assert K_lo == 0 and G_lo == 0
    assert K_hi == pytest.approx(K, rel=REL) and G_hi == pytest.approx(G, rel=REL)


@pytest.mark.parametrize("call, key", [(lambda: mori_tanaka(1, 1, 2, 2, 1.5), "f"),
                                       (lambda: hashin_shtrikman(1, 1, 2, 2, 0.5, dim=4), "dim"),
                                       (lambda: maxwell_garnett(-1, 2, 0.5), "moduli")])
def test_bad_arguments_name_their_key(call, key):
    """ConfigError naming the argument."""
    with pytest.raises(ConfigError) as err:
        call()
    assert err.value.key == key
