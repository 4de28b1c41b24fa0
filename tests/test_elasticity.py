"""The elastic solve of the core (cpp/elasticity.hpp): manufactured-solution convergence, stress-free
compatible eigenstrains, scale invariance, the adjoint stiffness gradient and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from pixelkinetics import _core
from pixelkinetics.mechanics import rotate_stiffness
from pixelkinetics.verification import taylor_test

#: an orthotropic plane-stress stiffness (Voigt, engineering shear), rotated 30 degrees off the grid
_Q = np.array([[1.0, 0.35, 0.0], [0.35, 1.6, 0.0], [0.0, 0.0, 0.45]])


D = rotate_stiffness(_Q, np.pi / 6)


def _batch(masks, h=1.0, stiffness=D):
    batch = _core.ElasticBatch([m.astype(np.uint8) for m in masks], [h] * len(masks))
    batch.factorize(stiffness)
    return batch


def _centres(batch, k, shape, h):
    pixel = np.asarray(batch.pixel(k))
    return (pixel % shape[1] + 0.5) * h, (pixel // shape[1] + 0.5) * h


def _ellipse(n=40):
    y, x = np.mgrid[0:n, 0:n] + 0.5
    return (x - n / 2) ** 2 / (0.45 * n) ** 2 + (y - n / 2) ** 2 / (0.33 * n) ** 2 < 1


# -- manufactured solution on the unit square ------------------------------------------------------------
# Displacement u* = (a sin(2x + y), b cos(x - 3y)); stress from the Airy function A p(x) p(y) with
# p = x^2 (1 - x)^2, so sigma = (phi_yy, phi_xx, -phi_xy) is divergence free and vanishes on every edge
# (traction free); the eigenstrain eps(u*) - D^-1 sigma then makes u* the exact solution.
_A, _AMP_X, _AMP_Y = 2.0, 0.01, 0.006


def _p(t):
    return t ** 2 * (1 - t) ** 2, 2 * t - 6 * t ** 2 + 4 * t ** 3, 2 - 12 * t + 12 * t ** 2


def _exact(x, y):
    """(strain xx, yy, xy, rotation) of u*, and the eigenstrain (xx, yy, xy) that produces it."""
    a, b = _AMP_X, _AMP_Y
    strain = np.column_stack([2 * a * np.cos(2 * x + y), 3 * b * np.sin(x - 3 * y),
                              (a * np.cos(2 * x + y) - b * np.sin(x - 3 * y)) / 2,
                              (-b * np.sin(x - 3 * y) - a * np.cos(2 * x + y)) / 2])
    (px, dpx, ddpx), (py, dpy, ddpy) = _p(x), _p(y)
    stress = 1e-3 * _A * np.column_stack([px * ddpy, ddpx * py, -dpx * dpy])
    compliance = np.linalg.solve(D, stress.T).T  # engineering shear
    eigenstrain = strain[:, :3] - compliance * np.array([1.0, 1.0, 0.5])
    return strain, eigenstrain


def test_manufactured_solution_converges_at_second_order():
    errors = []
    sizes = [16, 32, 64, 128]
    for n in sizes:
        h = 1.0 / n
        batch = _batch([np.ones((n, n), bool)], h)
        x, y = _centres(batch, 0, (n, n), h)
        strain, eigenstrain = _exact(x, y)
        ours = batch.strains([[eigenstrain]])[0][0]
        ours[:, 3] += np.mean(strain[:, 3] - ours[:, 3])  # the pinned rigid rotation
        errors.append(np.abs(ours - strain).max())
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[-1] < 1e-5 and rates.min() > 1.9, (errors, rates)


def test_compatible_eigenstrain_leaves_the_particle_stress_free():
    """Composition linear in x and y gives a linear (compatible) Vegard eigenstrain: the strain equals
    it at every pixel of an irregular particle, for an orthotropic stiffness at an angle to the grid."""
    mask = _ellipse(40)
    mask[5:12, 15:19] = True  # a knob on top
    batch = _batch([mask])
    x, y = _centres(batch, 0, mask.shape, 1.0)
    composition = 0.2 + 0.012 * x + 0.007 * y
    eigenstrain = np.column_stack([0.05 * composition, -0.019 * composition, 0.004 * composition])
    strain = batch.strains([[eigenstrain]])[0][0]
    np.testing.assert_allclose(strain[:, :3], eigenstrain, atol=1e-13)
    # compatibility fixes the rotation's gradient: d w/dx = d e_xy/dx - d e_xx/dy, d w/dy = d e_yy/dx - d e_xy/dy
    slope = [0.004 * 0.012 - 0.05 * 0.007, -0.019 * 0.012 - 0.004 * 0.007]
    rotation = strain[:, 3] - slope[0] * x - slope[1] * y
    assert np.ptp(rotation) < 1e-13  # beyond that, a rigid rotation only


def test_a_two_phase_particle_is_stressed_and_scaling_the_stiffness_leaves_its_strain():
    mask = _ellipse(40)
    batch = _batch([mask])
    x, _ = _centres(batch, 0, mask.shape, 1.0)
    phase = 0.5 * (1 + np.tanh((x - 20) / 2))
    eigenstrain = np.column_stack([0.05 * phase, -0.019 * phase, 0 * phase])
    strain = batch.strains([[eigenstrain]])[0][0]
    assert np.abs(strain[:, :3] - eigenstrain).max() > 3e-3  # the misfit is not met: elastic stress
    scaled = _batch([mask], stiffness=37.0 * D).strains([[eigenstrain]])[0][0]
    np.testing.assert_allclose(scaled, strain, rtol=0, atol=1e-12)
    # the pixel size scales displacements, not strains
    coarse = _batch([mask], h=2.5).strains([[eigenstrain]])[0][0]
    np.testing.assert_allclose(coarse, strain, rtol=0, atol=1e-12)


def test_stiffness_gradient_passes_taylor_test():
    mask = _ellipse(24)
    batch = _batch([mask, _ellipse(18)])
    rng = np.random.default_rng(0)
    fields = []
    for k, m in enumerate([mask, _ellipse(18)]):
        x, y = _centres(batch, k, m.shape, 1.0)
        c = 0.5 + 0.5 * np.sin(x / 3) * np.cos(y / 4)
        fields.append(np.column_stack([0.05 * c, -0.019 * c, 0.01 * c ** 2]))
    weights = [rng.standard_normal((f.shape[0], 4)) for f in fields]
    upper = np.triu_indices(3)

    def full(v):
        S = np.zeros((3, 3))
        S[upper] = v
        return S + np.triu(S, 1).T

    def loss(v):
        batch.factorize(full(v))
        return sum(np.sum(w * s[0]) for w, s in zip(weights, batch.strains([[f] for f in fields])))

    def gradient(v):
        batch.factorize(full(v))
        G = batch.stiffness_gradient(fields, weights)
        G = G + G.T - np.diag(np.diag(G))  # D(i, j) = D(j, i) is one parameter
        return G[upper]

    v0 = D[upper]
    rates = taylor_test(loss, v0, gradient(v0), rng.standard_normal(6) * 0.1, eps0=1e-2, n_halvings=4)
    assert rates.min() > 1.9, rates


def test_corner_contacts_and_pieces_are_separate_bodies():
    mask = np.zeros((12, 12), bool)
    mask[1:5, 1:5] = True
    mask[5:9, 5:9] = True  # touches the first block only at a corner: a hinge, not a joint
    mask[10:12, 0:3] = True
    batch = _batch([mask])
    assert len(set(batch.component(0))) == 3
    x, y = _centres(batch, 0, mask.shape, 1.0)
    eigenstrain = np.column_stack([0.01 * x, 0.02 * y, 0 * x])
    np.testing.assert_allclose(batch.strains([[eigenstrain]])[0][0][:, :3], eigenstrain, atol=1e-13)


def test_batch_solves_particles_in_parallel_like_one_by_one(restore_threads):
    masks = [_ellipse(n) for n in (20, 30, 26, 34)]
    rng = np.random.default_rng(1)
    fields = [[rng.standard_normal((int(m.sum()), 3)) * 1e-2] for m in masks]
    _core.set_num_threads(2)
    together = _batch(masks).strains(fields)
    for k, m in enumerate(masks):
        alone = _batch([m]).strains([fields[k]])[0][0]
        np.testing.assert_allclose(together[k][0], alone, rtol=0, atol=1e-15)


@pytest.mark.parametrize("stiffness, message", [
    (np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), "positive definite"),
    (np.array([[1.0, 0.1, 0.0], [0.2, 1.0, 0.0], [0.0, 0.0, 1.0]]), "symmetric"),
])
def test_bad_stiffness_is_refused(stiffness, message):
    batch = _core.ElasticBatch([_ellipse(10).astype(np.uint8)], [1.0])
    with pytest.raises(ValueError, match=message):
        batch.factorize(stiffness)


def test_bad_masks_and_fields_are_refused():
    with pytest.raises(ValueError, match="empty"):
        _core.ElasticBatch([np.zeros((5, 5), np.uint8)], [1.0])
    batch = _batch([_ellipse(10)])
    with pytest.raises(ValueError, match="one row per element"):
        batch.strains([[np.zeros((3, 3))]])
    with pytest.raises(ValueError, match="non-finite"):
        batch.strains([[np.full((int(_ellipse(10).sum()), 3), np.nan)]])
