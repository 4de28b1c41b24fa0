#pragma once
/// \file tangent.hpp
/// Tangent-linear (forward-sensitivity) sweep of the time stepper and the Gauss-Newton
/// Hessian-vector product it gives with the adjoint sweep.
///
/// Differentiating step n, H^n(u^n, c^{n-1}, c^{n-2}; p) = 0 with u = (c, y) (stepper.hpp), along a
/// direction dp of the parameters gives one bordered solve per step, forward in time, with the same
/// Newton matrix as the step:
///   [dF/dc dF/dy; dE/dc dE/dy] [dc^n; dy^n] = [-(a1 dc^{n-1} + a2 dc^{n-2})/dt + df/dp dp;  -dE/dp dp]
/// The misfit is (1/2) r^T r with r = sqrt(w) (c(t_f) - chat) / sigma, so its Gauss-Newton Hessian
/// is J^T J: the adjoint sweep (adjoint.hpp) with the frame sources w dc(t_f) / sigma^2.

#include <Eigen/Core>
#include <vector>

#include "adjoint.hpp"
#include "movie.hpp"
#include "stepper.hpp"

namespace pixelkinetics {

/// A direction in the parameters of one particle.
struct Direction {
  Eigen::VectorXd globals;  ///< raw globals (k0, alpha, Omega, kappa, B, D, a_1.., b_0..)
  Eigen::VectorXd theta;    ///< per site
  Eigen::VectorXd c0;       ///< per site; under rate driving it moves the frame-0 target with it
};

/// dc^n along `dir` for every state of a solved trajectory (result[0] = dir.c0). The step matrices come
/// from `steps` (built for the same particle, parameters and trajectory).
std::vector<Eigen::VectorXd> tangent_sweep(const Movie& particle, const GlobalParams& g, Trajectory& traj,
                                           StepLinearizer& steps, const Direction& dir);

/// The Gauss-Newton Hessian of the loss (misfit at the frames from settings.first_fitted_frame(), plus
/// the exact Hessian of the theta penalty) applied to `dir`: (globals, theta, c0) of the result hold the
/// product; `misfit` holds dir^T H_misfit dir / 2 (the misfit's quadratic model). Adds its work to traj.stats.
LossGradient gauss_newton_product(const Movie& particle, const GlobalParams& g, const SolverSettings& settings,
                                  Trajectory& traj, StepLinearizer& steps, const Direction& dir);

}  // namespace pixelkinetics
