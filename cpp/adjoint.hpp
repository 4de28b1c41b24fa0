#pragma once
/// \file adjoint.hpp
/// Discrete adjoint of the time stepper (MODEL.md section 7).
///
/// With H^n(u^n, c^{n-1}, c^{n-2}; p) = 0 the residual of step n (stepper.hpp) and J the misfit at the
/// frame steps, the multipliers solve, backward in time, one transposed bordered system per step:
///   (dH^n/du^n)^T lambda^n = dJ/du^n - (a1^{n+1}/dt_{n+1}) lambda^{n+1} - (a2^{n+2}/dt_{n+2}) lambda^{n+2}
/// and dJ/dp = sum_n (lambda^n)^T df^n/dp, where f = R + D div is the right-hand side of the ODE.
/// The initial state enters steps 1 and 2 only: dJ/dc^0 = -(a1^1/dt_1) lambda^1 - (a2^2/dt_2) lambda^2.

#include <Eigen/Core>
#include <vector>

#include "movie.hpp"
#include "step_linearizer.hpp"
#include "stepper.hpp"

namespace pixelkinetics {

/// Loss of one particle and its gradient (or, from gauss_newton_product, a Hessian-vector product).
struct LossGradient {
  double loss = 0.0;            ///< misfit + theta penalty
  double misfit = 0.0;          ///< data term alone
  Eigen::VectorXd globals;      ///< d loss / d (k0, alpha, Omega, kappa, B, D, a_1.., b_0..)
  Eigen::VectorXd theta;        ///< d loss / d theta_i
  /// d loss / d c^0_i, total: under rate driving the frame-0 target is mean_w(c^0) (Movie::with_initial_state).
  Eigen::VectorXd c0;
  Eigen::VectorXd drive;        ///< d loss / d drive_f, the frame values of the target mean or of V, c^0 held
};

/// Loss of a solved trajectory (misfit at the frames from settings.first_fitted_frame(), plus the theta penalty).
double trajectory_loss(const Movie& particle, const Trajectory& traj, const Eigen::VectorXd& theta,
                       const SolverSettings& settings);

/// The backward sweep for an objective whose derivative with respect to the state at frame f is
/// frame_source[f] (empty: none; frame 0 acts on c^0 directly): fills every sensitivity of `out` except
/// the theta penalty. The step matrices come from `steps` (built for the same particle, parameters and
/// trajectory); adds its work to traj.stats.
void adjoint_sweep(const Movie& particle, const GlobalParams& g, Trajectory& traj,
                   const std::vector<Eigen::VectorXd>& frame_source, StepLinearizer& steps, LossGradient& out);

/// Loss and exact discrete gradient: the misfit derivatives as frame sources of adjoint_sweep. Re-factorises
/// the Newton matrix at each converged state, keeping the factors in `steps` when given.
LossGradient loss_and_gradient(const Movie& particle, const GlobalParams& g, const Eigen::VectorXd& theta,
                               const SolverSettings& settings, Trajectory& traj, StepLinearizer* steps = nullptr);

}  // namespace pixelkinetics
