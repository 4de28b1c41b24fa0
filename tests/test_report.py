"""The fit report (pixelkinetics.report) on small Results built in code, without a solver run.

Tested: write_report writes every expected figure as a valid, non-trivial PNG plus a summary.txt with the
figures of merit and the truth comparison; it creates the output directory, honours max_particles (largest
particles first), and without carbon maps, truth or iterations skips theta_vs_carbon.png and still draws
history.png; the residuals follow the fit's misfit (frame 0 only with fit_initial, per-pixel sigma when given);
theta_correlation is 1 for identical maps, -1 for negated ones, and removes per-particle means on request.
"""
from __future__ import annotations

import numpy as np
import pytest

from pixelkinetics import Params
from pixelkinetics.kinetics.report import _residuals, write_report
from pixelkinetics.kinetics.results import FittedMovie, Results
from pixelkinetics.kinetics.truth import theta_correlation

SIGMA = 0.02
DPI = 60
CHI2 = 1.2345


def disk(radius: float, shape=(12, 14)) -> np.ndarray:
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - (shape[0] - 1) / 2) ** 2 + (xx - (shape[1] - 1) / 2) ** 2 <= radius ** 2


def particle(rng: np.random.Generator, mask: np.ndarray, carbon: bool, sigma_map: bool, n_frames: int = 4):
    on = lambda a: np.where(mask, a, np.nan)  # noqa: E731
    shape = (n_frames,) + mask.shape
    fitted = on(np.clip(np.linspace(0.1, 0.9, n_frames)[:, None, None] + 0.1 * rng.standard_normal(shape), 0, 1))
    observed = on(fitted + SIGMA * rng.standard_normal(shape))
    observed[rng.random(shape) < 0.05] = np.nan  # missing pixels
    theta = on(0.5 * rng.standard_normal(mask.shape))
    return FittedMovie(
        mask=mask, time=np.linspace(0.0, 30.0, n_frames), observed=observed, fitted=fitted, theta=theta,
        c0=fitted[0], voltage=np.linspace(-1.0, -2.0, n_frames),
        carbon_thickness=on(5.0 + 2.0 * theta + 0.3 * rng.standard_normal(mask.shape)) if carbon else None,
        sigma=np.full(shape, 2 * SIGMA) if sigma_map else None)


def make_results(carbon: bool = True, truth: bool = True, n_iter: int = 5, fit_initial: bool = False,
                 seed: int = 0) -> Results:
    rng = np.random.default_rng(seed)
    particles = {"small": particle(rng, disk(4.0), carbon, sigma_map=True),
                 "large": particle(rng, disk(5.5), carbon, sigma_map=False)}
    params = Params(k0=0.021, alpha=0.5, Omega=4.2, kappa=2.0, B=1.0, b=[0.0, 0.1], j0_base="sqrt")
    history = {"iteration": np.arange(n_iter), "loss": np.geomspace(5.0, 0.6, n_iter),
               "grad_norm": np.geomspace(1.0, 1e-4, n_iter), "n_fev": np.arange(n_iter) + 1,
               "wall_time": 0.1 * np.arange(n_iter)}
    fit = {"sigma": SIGMA, "reduced_chi2": CHI2, "n_iter": n_iter, "n_fev": n_iter + 2, "free": ["k0", "Omega"],
           "fit_initial": fit_initial}
    true = None
    if truth:
        true_theta = {n: p.theta + 0.2 * rng.standard_normal(p.mask.shape) for n, p in particles.items()}
        true = (Params(k0=0.02, Omega=4.5, kappa=2.0, b=[0.0], j0_base="sqrt"), true_theta)
    return Results(params=params, particles=particles, history=history, fit=fit, truth=true)


def assert_png(path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), path
    assert len(data) > 2000, f"{path} is only {len(data)} bytes"


def test_full_report_writes_every_figure_and_the_summary(tmp_path):
    outdir = tmp_path / "new" / "report"
    written = write_report(make_results(), outdir, dpi=DPI)
    names = ["frames_large.png", "frames_small.png", "theta_vs_carbon.png", "residuals.png", "kinetics.png",
             "history.png", "summary.txt"]
    assert [p.name for p in written] == names  # largest particle first, summary last
    assert sorted(p.name for p in outdir.iterdir()) == sorted(names)
    for path in written[:-1]:
        assert_png(path)
    summary = (outdir / "summary.txt").read_text()
    assert f"reduced chi-square: {CHI2:.4f}" in summary
    assert "free parameters: k0, Omega" in summary
    assert "iterations: 5" in summary and "loss-and-gradient evaluations: 7" in summary
    assert "theta vs carbon thickness: r = " in summary and "theta vs true theta: r = " in summary
    assert "+5%" in summary  # k0 0.021 against the truth 0.02


def test_minimal_report_without_carbon_truth_or_history(tmp_path):
    written = write_report(make_results(carbon=False, truth=False, n_iter=0), tmp_path, max_particles=1, dpi=DPI)
    assert [p.name for p in written] == ["frames_large.png", "residuals.png", "kinetics.png", "history.png",
                                         "summary.txt"]
    assert not (tmp_path / "theta_vs_carbon.png").exists()
    for path in written[:-1]:
        assert_png(path)
    summary = (tmp_path / "summary.txt").read_text()
    assert "iterations: 0" in summary and "carbon" not in summary and "truth" not in summary


@pytest.mark.parametrize("fit_initial", [False, True])
def test_residuals_follow_the_misfit(fit_initial):
    results = make_results(fit_initial=fit_initial)
    by_frame = _residuals(results)
    assert sorted(by_frame) == ([0, 1, 2, 3] if fit_initial else [1, 2, 3])
    n_obs = sum(np.isfinite(p.observed[0 if fit_initial else 1:][:, p.mask]).sum()
                for p in results.particles.values())
    assert sum(d.size for d, _ in by_frame.values()) == n_obs
    noise = np.concatenate([s for _, s in by_frame.values()])
    assert set(np.unique(noise)) == {SIGMA, 2 * SIGMA}  # "small" has a per-pixel sigma map of 2 SIGMA


def test_theta_correlation():
    results = make_results(truth=False)
    theta = {n: p.theta for n, p in results.particles.items()}
    masks = {n: p.mask for n, p in results.particles.items()}
    assert theta_correlation(theta, theta, masks) == pytest.approx(1.0)
    assert theta_correlation(theta, {n: -t for n, t in theta.items()}, masks) == pytest.approx(-1.0)

    shifted = {"small": theta["small"] + 3.0, "large": theta["large"] - 2.0}
    assert theta_correlation(theta, shifted, masks, remove_mean=True) == pytest.approx(1.0)
    assert theta_correlation(theta, shifted, masks, remove_mean=False) < 0.9

    # NaN pixels inside a mask are left out; a particle without a map is an error.
    holed = {n: np.where(np.random.default_rng(1).random(t.shape) < 0.2, np.nan, t) for n, t in theta.items()}
    assert theta_correlation(theta, holed, masks) == pytest.approx(1.0)
    with pytest.raises(KeyError, match="small"):
        theta_correlation({"large": theta["large"]}, theta, masks)
