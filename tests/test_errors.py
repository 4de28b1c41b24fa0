"""Bad input raises ValueError naming the argument and the value; a step that fails after the last
halving raises pixelkinetics.SolverError naming the particle, the time and the residual. Nothing
crashes the interpreter."""
import numpy as np
import pytest

import pixelkinetics as pk
from pixelkinetics import _core
from pixelkinetics.kinetics.synthetic import make_movies


@pytest.fixture(scope="module")
def movie():
    movies, _ = make_movies(n_particles=1, sites=(30, 40), n_frames=3, seed=1)
    return movies[0]


def replace(movie, **changes):
    fields = dict(name=movie.name, mask=movie.mask, concentration=movie.concentration, time=movie.time)
    fields.update(changes)
    return pk.Movie(**fields)


def test_concentration_shape_that_disagrees_with_mask_is_refused(movie):
    with pytest.raises(ValueError, match=r"concentration must be \(T, H, W\) with \(H, W\) = mask shape"):
        replace(movie, mask=np.ones((3, 3), bool))


def test_time_shape_that_disagrees_with_frames_is_refused(movie):
    with pytest.raises(ValueError, match=r"time must have shape \(3,\)"):
        replace(movie, time=np.arange(4.0))


def test_non_increasing_times_are_refused(movie):
    with pytest.raises(ValueError, match=r"time must increase strictly, but time\[2\] = 1.0 <= time\[1\] = 5.0"):
        replace(movie, time=np.array([0.0, 5.0, 1.0]))


def test_concentration_outside_unit_interval_is_refused(movie):
    bad = movie.concentration.copy()
    bad[1][movie.mask] = 1.7
    with pytest.raises(ValueError, match=r"concentration must lie in \[0, 1\].*1.7"):
        replace(movie, concentration=bad)


def test_empty_mask_is_refused(movie):
    with pytest.raises(ValueError, match="mask is empty"):
        replace(movie, mask=np.zeros_like(movie.mask))


def test_frame_without_observed_pixel_is_refused(movie):
    bad = movie.concentration.copy()
    bad[2] = np.nan
    with pytest.raises(ValueError, match="frame 2 has no observed pixel"):
        replace(movie, concentration=bad)


@pytest.mark.parametrize("name,value,message", [
    ("k0", np.nan, "parameter k0 must be finite"),
    ("Omega", np.inf, "parameter Omega must be finite"),
    ("alpha", 1.2, r"parameter alpha must lie in \(0, 1\), got 1.2"),
    ("kappa", -1.0, "parameter kappa must be >= 0"),
    ("D", -0.1, "parameter D must be >= 0"),
])
def test_bad_parameter_is_refused_by_name(movie, name, value, message):
    problem = pk.Problem([movie], n_sub=4)
    with pytest.raises(ValueError, match=message):
        problem.loss(pk.Params().replace(**{name: value}))


def test_unknown_j0_base_is_refused():
    with pytest.raises(ValueError, match="j0_base must be one of"):
        pk.Params(j0_base="cubic")


def test_unknown_scheme_is_refused(movie):
    with pytest.raises(ValueError, match="scheme must be 'be' or 'bdf2', got 'rk4'"):
        pk.Problem([movie], scheme="rk4")


def test_theta_of_wrong_shape_is_refused(movie):
    problem = pk.Problem([movie], n_sub=4)
    with pytest.raises(ValueError, match=r"theta\['particle_000'\] must have the mask shape"):
        problem.loss(pk.Params(), {movie.name: np.zeros((2, 2))})


def core_particle(mask, c0, times, drive=None):
    n, T = int(mask.sum()), len(times)
    drive = np.full(T, 0.5) if drive is None else drive
    return _core.Movie("direct", mask.astype(np.uint8), 1.0, True, np.ones(n), c0, times, "rate", drive,
                          np.zeros((T, n)), np.ones((T, n)))


def test_core_refuses_initial_concentration_outside_open_interval():
    mask = np.ones((2, 2), bool)
    with pytest.raises(ValueError, match=r"initial concentration must lie strictly inside \(0, 1\), got 1.5"):
        core_particle(mask, np.array([0.5, 1.5, 0.5, 0.5]), np.array([0.0, 1.0]))


def test_core_refuses_non_increasing_times():
    mask = np.ones((2, 2), bool)
    with pytest.raises(ValueError, match=r"particle 'direct': times must increase strictly"):
        core_particle(mask, np.full(4, 0.5), np.array([0.0, 0.0]))


def test_core_refuses_empty_mask():
    with pytest.raises(ValueError, match="mask is empty"):
        core_particle(np.zeros((2, 2), bool), np.zeros(0), np.array([0.0, 1.0]))


def test_core_refuses_arrays_that_disagree_with_the_mask():
    with pytest.raises(ValueError, match="c0 has 3 entries, expected 4"):
        core_particle(np.ones((2, 2), bool), np.full(3, 0.5), np.array([0.0, 1.0]))


def test_failed_step_raises_solver_error_naming_particle_time_and_residual(movie):
    problem = pk.Problem([movie], n_sub=2)
    problem.settings.newton_tol = 1e-300  # below round-off: no step can converge
    problem.settings.max_newton = 3
    problem.settings.max_halvings = 1
    with pytest.raises(pk.SolverError, match=r"particle 'particle_000': .* at t = 0\.0+ s \(residual [0-9.e+-]+\)"):
        problem.simulate(pk.Params())
    # The interpreter survives and the problem still works with sane settings.
    problem.settings.newton_tol, problem.settings.max_newton, problem.settings.max_halvings = 1e-12, 20, 12
    assert np.isfinite(problem.loss(pk.Params()))


def test_solver_error_is_a_runtime_error():
    assert issubclass(pk.SolverError, RuntimeError)


def test_non_hdf5_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "movie.h5"
    path.write_text("not an HDF5 file")
    with pytest.raises(ValueError, match=r"movie.h5: not a readable HDF5 file"):
        pk.load_movies(path)


def test_missing_dataset_is_named(tmp_path, movie):
    import h5py

    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("particles/p0")
        g["mask"] = movie.mask
        g["time"] = movie.time
    with pytest.raises(ValueError, match=r"data.h5: dataset /particles/p0/concentration is missing"):
        pk.load_movies(path)
