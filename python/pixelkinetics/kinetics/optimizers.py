"""The optimisers of a fit: a trust-region Newton-CG on the Gauss-Newton Hessian (the default) and SciPy's
L-BFGS-B, with the monitor that records their iterations, shows progress and saves checkpoints."""
from __future__ import annotations

import time
from typing import Dict

import numpy as np
from scipy import optimize

from ..floor.checkpoint import Checkpoint
from ..floor.progress import progress as progress_bar
from .config import FitConfig
from .objective import FitObjective


def steihaug_cg(g: np.ndarray, hessp, radius: float, rtol: float, max_iter: int):
    """Approximate minimiser of the model m(p) = g.p + p.Hp/2 within |p| <= radius by conjugate gradients
    (Steihaug-Toint): stops at the boundary, on non-positive curvature, or when the model gradient fell
    to rtol |g|. Returns (p, predicted decrease -m(p), iterations, on_boundary)."""
    p = np.zeros_like(g)
    Hp = np.zeros_like(g)  # H p, kept so that the model value needs no extra product
    r = g.copy()
    d = -r
    rr = float(r @ r)
    target = rtol * np.sqrt(rr)
    n_iter = 0
    on_boundary = False

    def to_boundary(d):
        pd, dd, pp = float(p @ d), float(d @ d), float(p @ p)
        return (-pd + np.sqrt(pd * pd + dd * (radius * radius - pp))) / dd

    for n_iter in range(1, max_iter + 1):  # noqa: B007 (returned)
        Hd = hessp(d)
        curvature = float(d @ Hd)
        a = rr / curvature if curvature > 0.0 else np.inf
        if curvature <= 0.0 or np.linalg.norm(p + a * d) >= radius:
            tau = to_boundary(d)
            p, Hp, on_boundary = p + tau * d, Hp + tau * Hd, True
            break
        p, Hp = p + a * d, Hp + a * Hd
        r = r + a * Hd
        rr_new = float(r @ r)
        if np.sqrt(rr_new) <= target:
            break
        d = -r + (rr_new / rr) * d
        rr = rr_new
    return p, -float(g @ p + 0.5 * p @ Hp), n_iter, on_boundary


#: Per-iteration records of a fit (the results' /history).
HISTORY = ("iteration", "loss", "grad_norm", "n_fev", "n_hessp", "wall_time")


class Monitor:
    """History, progress bar and checkpoints of one fit: one record per accepted iteration. ``show``: draw
    the progress bar (on one rank)."""

    def __init__(self, config: FitConfig, objective: FitObjective, checkpoint: Checkpoint, history: Dict[str, list],
                 limit: int, t_start: float, show: bool):
        self.config, self.objective, self.checkpoint, self.history = config, objective, checkpoint, history
        self.limit, self.t_start = limit, t_start
        self.done = int(history["iteration"][-1]) if history["iteration"] else 0
        self.bar = progress_bar(limit, "fit", "it", show=show, initial=min(self.done, limit))

    def counters(self, **extra) -> Dict[str, float]:
        return dict(n_fev=self.objective.n_fev, n_hessp=self.objective.n_hessp,
                    wall_time=time.perf_counter() - self.t_start, **extra)

    def record(self, u: np.ndarray, f: float, g: np.ndarray, checkpoint: bool = True, **extra) -> None:
        """Append an iteration; save a checkpoint every ``checkpoint_every`` (with ``extra`` counters)
        unless ``checkpoint`` is false (the caller saves once its own step is complete)."""
        self.done += 1
        n_obs = self.objective.space.n_obs
        gnorm = float(np.linalg.norm(g))
        h = self.history
        h["iteration"].append(self.done)
        h["loss"].append(f * n_obs)
        h["grad_norm"].append(gnorm)
        h["n_fev"].append(self.objective.n_fev)
        h["n_hessp"].append(self.objective.n_hessp)
        h["wall_time"].append(time.perf_counter() - self.t_start)
        self.bar.update(1)
        postfix = dict(loss=f"{f * n_obs:.6g}", grad=f"{gnorm:.2e}", fev=self.objective.n_fev)
        if self.objective.n_hessp:
            postfix["Hv"] = self.objective.n_hessp
        self.bar.set_postfix(**postfix, refresh=False)
        if checkpoint and self.done % self.config.checkpoint_every == 0:
            self.save(u, **extra)

    def save(self, u: np.ndarray, **extra) -> None:
        """Checkpoint the point u, the preconditioner that gives it its meaning, the history and the counters
        (``extra``: the optimiser's own scalars, such as the trust radius)."""
        self.checkpoint.save(dict(u=u, space=self.objective.space.state(),
                                  history={k: np.asarray(v) for k, v in self.history.items()},
                                  **self.counters(**extra)))

    def loss_settled(self) -> bool:
        """The loss fell by less than loss_tol over the last loss_window iterations."""
        losses, window = self.history["loss"], self.config.loss_window
        return len(losses) > window and losses[-1 - window] - losses[-1] < self.config.loss_tol

    def close(self) -> None:
        self.bar.close()


def minimize_gauss_newton(objective: FitObjective, monitor: Monitor, u: np.ndarray, radius: float, fresh: bool):
    """Trust-region Newton-CG on the Gauss-Newton Hessian: each iteration solves the quadratic model by
    Steihaug CG with Hessian-vector products from the kept linearisation (two triangular solves per time
    step, no Newton iterations), then solves the model at the trial point. Converged when the model
    predicts a decrease below loss_tol (chi-square / 2 units): nothing the data could tell apart remains.

    The state is (u, radius, fresh), fresh meaning that the preconditioner was built at u; checkpoints
    hold all three and are written only between whole steps, so a resumed fit retraces this one."""
    config, space, n_obs = monitor.config, objective.space, objective.space.n_obs
    f, g = objective(u, keep=True)
    success, message = False, "no iterations left (max_iter reached)"

    def reprecondition():
        nonlocal u, f, g, fresh
        space.recentre(u)
        space.precondition()
        u = np.zeros(space.size)
        f, g = objective(u, keep=True)
        fresh = True
        monitor.save(u, trust_radius=radius, fresh=int(fresh))

    while monitor.done < monitor.limit:
        p, predicted, _, on_boundary = steihaug_cg(g, objective.hessp, radius, config.cg_forcing, config.max_cg)
        if predicted * n_obs < config.loss_tol:
            if fresh:
                success = True
                message = f"converged: the Gauss-Newton model predicts a decrease of the loss below {config.loss_tol}"
                break
            # Stale coordinates can hide a descent direction from a truncated CG: confirm in fresh ones.
            reprecondition()
            continue
        f_new, g_new = objective(u + p, keep=True)
        rho = (f - f_new) / predicted
        if rho < 0.25:
            radius = 0.25 * float(np.linalg.norm(p))
        elif rho > 0.75 and on_boundary:
            radius = 2.0 * radius
        if rho > 1e-4:
            u, f, g = u + p, f_new, g_new
            fresh = False
            # The pixel blocks change as the maps take shape: at the listed iterations the step ends with a
            # re-preconditioning, and its checkpoint comes after it.
            rebuild = monitor.done + 1 in config.precondition_at
            monitor.record(u, f, g, checkpoint=not rebuild, trust_radius=radius, fresh=int(fresh))
            if rebuild:
                reprecondition()
        else:
            objective(u, keep=True)  # the products belong to the point, not the rejected trial
        if radius < 1e-8:
            message = "stopped: the trust region collapsed (the model and the loss disagree at every step)"
            break
    monitor.save(u, trust_radius=radius, fresh=int(fresh))
    return u, success, message


def minimize_lbfgsb(objective: FitObjective, monitor: Monitor, u: np.ndarray):
    """SciPy's L-BFGS-B, restarted at each re-preconditioning (its curvature pairs belong to the old
    coordinates); the first warmup_iter iterations hold the globals.

    Checkpoints are written at the restarts alone: L-BFGS-B's curvature memory cannot be saved, so a fit
    resumed from the middle of a stage would take another path. Resumed from a restart, it retraces the
    uninterrupted fit exactly, at the price of repeating the iterations since the last restart."""
    config, space = monitor.config, objective.space

    def callback(u):
        f, g = objective.at(u)
        monitor.record(u, f, g, checkpoint=False)
        if monitor.done > config.warmup_iter + config.loss_window and monitor.loss_settled():
            raise StopIteration  # L-BFGS-B returns the current point

    success, message = False, "no iterations left (max_iter reached)"
    while monitor.done < monitor.limit:
        done_before = monitor.done
        warmup = done_before < config.warmup_iter
        stop = min([k for k in config.precondition_at + [config.warmup_iter] if k > done_before] + [monitor.limit])
        res = optimize.minimize(objective, u, jac=True, method="L-BFGS-B", bounds=space.bounds(warmup),
                                callback=callback,
                                options=dict(maxiter=stop - done_before, maxfun=max(10 * (stop - done_before), 50),
                                             maxcor=config.maxcor, gtol=config.gtol, ftol=config.ftol))
        u, message = res.x, str(res.message)
        if not warmup and monitor.loss_settled():
            success = True
            message = (f"converged: the loss fell by less than {config.loss_tol} over the last "
                       f"{config.loss_window} iterations")
            break
        if monitor.done == done_before:  # no progress in a fresh start: L-BFGS-B's own stop is final
            break
        # The end of a stage, or an early stop of L-BFGS-B (a failed line search): re-precondition here.
        if monitor.done < monitor.limit:
            space.recentre(u)
            space.precondition()
            u = np.zeros(space.size)
            monitor.save(u)
    return u, success, message
