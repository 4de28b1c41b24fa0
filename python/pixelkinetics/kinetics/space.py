"""The optimiser's vector and its preconditioning: u <-> (globals, theta maps, initial states)."""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .config import FitConfig
from .coordinates import POSITIVE, FitCoordinates, from_z, to_z
from .observations import EPS, first_fitted_frame
from .problem import Problem


def _site_degrees(mask: np.ndarray) -> np.ndarray:
    """Number of 4-neighbour edges of each site, in site order."""
    m = np.pad(mask, 1)
    deg = m[:-2, 1:-1].astype(int) + m[2:, 1:-1] + m[1:-1, :-2] + m[1:-1, 2:]
    return deg[mask]


class ParameterSpace:
    """Optimiser vector u <-> (Params, theta site vectors, c^0 site vectors).

    u = 0 is the starting point. Globals: z = z_start + step * u (z the log/logit/identity transform).
    Pixels: (theta_i, c^0_i) = start_i + M_i u_i, with M_i = L_i^-T from the Cholesky factor of the 2 x 2
    (or 1 x 1) Gauss-Newton block of pixel i, so that L-BFGS-B sees a Hessian close to the identity in
    every pixel and every global (:meth:`precondition`). M_i is upper triangular, so c^0_i depends on
    its own coordinate alone and stays inside [EPS, 1 - EPS] through a simple bound.
    """

    def __init__(self, config: FitConfig, problem: Problem, n_obs: int):
        self.config = config
        self.problem = problem
        self.names = list(config.initial.names())
        self.free = [n for n in self.names if n in config.free]
        self.sizes = [m.n_sites for m in problem.movies]
        self.n_sites = int(sum(self.sizes))
        self.n_obs = n_obs
        self.dim = int(config.fit_theta) + int(config.fit_initial)  # unknowns per pixel
        self.coordinates = FitCoordinates(self.free)
        self.z_start = self.coordinates.z(config.initial)
        self.step = np.ones(len(self.free))
        self.theta_start = np.concatenate(problem.theta_vectors(None))
        self.c0_start = np.concatenate(problem.initial_states())
        self.block = np.tile(np.eye(self.dim), (self.n_sites, 1, 1))

    @property
    def size(self) -> int:
        return len(self.free) + self.dim * self.n_sites

    def bounds(self, fix_globals: bool = False) -> List[Tuple[Optional[float], Optional[float]]]:
        """L-BFGS-B bounds on u: the configured bounds of the globals (or u = 0 when ``fix_globals``) and
        [EPS, 1 - EPS] on c^0."""
        out: List[Tuple[Optional[float], Optional[float]]] = []
        for i, n in enumerate(self.free):
            if fix_globals:
                out.append((0.0, 0.0))
                continue
            low, high = self.config.bounds.get(n, (-np.inf, np.inf))
            zl = -np.inf if (n in POSITIVE and low <= 0) or low == -np.inf else to_z(n, low)
            zh = np.inf if high == np.inf else to_z(n, high)
            out.append((None if zl == -np.inf else (zl - self.z_start[i]) / self.step[i],
                        None if zh == np.inf else (zh - self.z_start[i]) / self.step[i]))
        pixels = [[(None, None)] * self.n_sites for _ in range(self.dim)]
        if self.config.fit_initial:
            scale = self.block[:, -1, -1]
            pixels[-1] = list(zip((EPS - self.c0_start) / scale, (1.0 - EPS - self.c0_start) / scale))
        return out + [b for pixel in zip(*pixels) for b in pixel]

    def _pixels(self, u: np.ndarray) -> np.ndarray:
        """(n_sites, dim) pixel unknowns from u: the start plus the preconditioned step."""
        up = u[len(self.free):].reshape(self.n_sites, self.dim)
        return np.einsum("nij,nj->ni", self.block, up)

    def unpack(self, u: np.ndarray):
        """(Params, theta vectors, c0 vectors or None, d raw / d z of the free globals, c0 as one array)."""
        u = np.asarray(u, dtype=float)
        z = self.z_start + self.step * u[:len(self.free)]
        params, jac = self.coordinates.params(self.config.initial, z), self.coordinates.jacobian(z)
        pixels = self._pixels(u)
        split = np.cumsum(self.sizes)[:-1]
        theta = self.theta_start.copy()  # held at its start unless fitted
        if self.config.fit_theta:
            theta = self.theta_start + pixels[:, 0]
            if self.config.theta_mean == "zero":
                theta -= theta.mean()
        c0 = None
        if self.config.fit_initial:
            c0 = np.clip(self.c0_start + pixels[:, -1], EPS, 1.0 - EPS)
        return params, np.split(theta, split), None if c0 is None else np.split(c0, split), jac, c0

    def _c0_free(self, c0: Optional[np.ndarray]) -> np.ndarray:
        """1 where c^0 lies strictly inside its clip range (the map u -> c^0 has slope there), else 0."""
        if c0 is None:
            return np.ones(self.n_sites)
        return ((c0 > EPS) & (c0 < 1.0 - EPS)).astype(float)

    def chain(self, grad_globals: np.ndarray, grad_theta: Sequence[np.ndarray], grad_c0: Sequence[np.ndarray],
              jac: np.ndarray, c0: Optional[np.ndarray] = None) -> np.ndarray:
        """Gradient in u from a raw gradient (globals in Params.names() order, theta and c^0 per particle);
        ``c0`` (from :meth:`unpack`) zeroes the entries its clip holds."""
        grad = dict(zip(self.names, grad_globals))
        g_globals = np.array([grad[n] * jac[i] * self.step[i] for i, n in enumerate(self.free)])
        cols = []
        if self.config.fit_theta:
            g = np.concatenate(grad_theta)
            cols.append(g - g.mean() if self.config.theta_mean == "zero" else g)
        if self.config.fit_initial:
            cols.append(np.concatenate(grad_c0) * self._c0_free(c0))
        g_pixels = np.einsum("nji,nj->ni", self.block, np.stack(cols, axis=1)) if cols else np.zeros((0, 0))
        return np.concatenate([g_globals, g_pixels.ravel()])

    def push(self, v: np.ndarray, jac: np.ndarray, c0: Optional[np.ndarray] = None):
        """The raw direction of a direction v in u (the transpose of :meth:`chain`): (globals in
        Params.names() order, theta per particle, c^0 per particle)."""
        d_globals = np.zeros(len(self.names))
        for i, n in enumerate(self.free):
            d_globals[self.names.index(n)] = jac[i] * self.step[i] * v[i]
        pixels = np.einsum("nij,nj->ni", self.block, v[len(self.free):].reshape(self.n_sites, self.dim))
        split = np.cumsum(self.sizes)[:-1]
        d_theta = np.zeros(self.n_sites)
        if self.config.fit_theta:
            d_theta = pixels[:, 0] - (pixels[:, 0].mean() if self.config.theta_mean == "zero" else 0.0)
        d_c0 = pixels[:, -1] * self._c0_free(c0) if self.config.fit_initial else np.zeros(self.n_sites)
        return d_globals, np.split(d_theta, split), np.split(d_c0, split)

    # -- preconditioning -------------------------------------------------------------------------------
    def precondition(self, eps: float = 1e-4, seed: int = 0) -> None:
        """Scale every global and every pixel block by its Gauss-Newton curvature at the start.

        Sensitivities of the frames come from finite differences of forward solves: one per free global,
        and two per kind of pixel unknown, each perturbing one checkerboard colour with random balanced
        signs, so that the group mean (held by the drive) barely moves and neighbours do not add up.
        """
        problem, config = self.problem, self.config
        u0 = np.zeros(self.size)
        params, thetas, c0s, _, c0 = self.unpack(u0)
        base = problem.simulate_vectors(params, thetas, c0s)
        first = first_fitted_frame(config.fit_initial)
        weights = [w / (config.sigma ** 2 * self.n_obs) for w in problem.obs_weights]
        for w in weights:
            w[:first] = 0.0

        def curvature(responses):
            return np.concatenate([np.sum(w * r * r, axis=0) for w, r in zip(weights, responses)])

        for i, name in enumerate(self.free):
            z = self.z_start[i] + eps
            changed = problem.simulate_vectors(params.replace(**{name: from_z(name, z)[0]}), thetas, c0s)
            h = float(np.sum(curvature([(a - b) / eps for a, b in zip(changed, base)])))
            self.step[i] = 1.0 / np.sqrt(h) if h > 0 else 1.0

        if self.dim == 0:
            return
        rng = np.random.default_rng(seed)
        colours, signs = [], []
        for m in problem.movies:
            rows, cols = np.nonzero(m.mask)
            colour = (rows + cols) % 2
            sign = np.empty(m.n_sites)
            for k in (0, 1):
                idx = np.flatnonzero(colour == k)
                sign[idx] = np.where(np.arange(idx.size) % 2 == 0, 1.0, -1.0)[rng.permutation(idx.size)]
            colours.append(colour)
            signs.append(sign)

        def pixel_response(kind):
            """d c_i(t_f) / d (theta_i or c0_i), per particle (T, n)."""
            out = [np.zeros_like(b) for b in base]
            for k in (0, 1):
                delta = [eps * s * (c == k) for s, c in zip(signs, colours)]
                if kind == "theta":
                    changed = problem.simulate_vectors(params, [t + d for t, d in zip(thetas, delta)], c0s)
                else:
                    # Inward at the bounds: a concentration on one must stay inside (0, 1).
                    inward = [np.where(c + d < 1.0 - EPS / 2, d, -d) for c, d in zip(c0s, delta)]
                    delta = [np.where(c + d > EPS / 2, d, -d) for c, d in zip(c0s, inward)]
                    changed = problem.simulate_vectors(params, thetas, [c + d for c, d in zip(c0s, delta)])
                for o, a, b, d, c in zip(out, changed, base, delta, colours):
                    on = c == k
                    o[:, on] = (a[:, on] - b[:, on]) / d[on]
            return out

        responses = []
        if config.fit_theta:
            responses.append(pixel_response("theta"))
        if config.fit_initial:
            responses.append(pixel_response("c0"))
        H = np.empty((self.n_sites, self.dim, self.dim))
        for a in range(self.dim):
            for b in range(a, self.dim):
                H[:, a, b] = H[:, b, a] = np.concatenate(
                    [np.sum(w * ra * rb, axis=0) for w, ra, rb in zip(weights, responses[a], responses[b])])
        if config.fit_theta:
            degrees = np.concatenate([_site_degrees(m.mask) for m in problem.movies])
            H[:, 0, 0] += (config.lam_s * degrees + config.lam_0) / self.n_obs
        for a in range(self.dim):  # pixels without information keep a finite step
            H[:, a, a] += 1e-3 * np.median(H[:, a, a]) + 1e-12
        L = np.linalg.cholesky(H)
        self.block = np.transpose(np.linalg.inv(L), (0, 2, 1))

    def recentre(self, u: np.ndarray) -> None:
        """Make the point u the new start (u = 0); call :meth:`precondition` next."""
        params, thetas, _, _, c0 = self.unpack(u)
        self.z_start = self.coordinates.z(params)
        self.theta_start = np.concatenate(thetas)
        if c0 is not None:
            self.c0_start = c0

    _STATE = ("z_start", "step", "theta_start", "c0_start", "block")

    def state(self) -> Dict[str, np.ndarray]:
        return {k: np.asarray(getattr(self, k)) for k in self._STATE}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        for k in self._STATE:
            setattr(self, k, np.asarray(state[k], dtype=float))
