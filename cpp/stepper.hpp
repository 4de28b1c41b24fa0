#pragma once
/// \file stepper.hpp
/// Implicit time integration of one constraint group (MODEL.md sections 5-6).
///
/// Step n solves, for c^n and the border unknown y^n (V^n under rate driving, the group mean m^n
/// under potential driving),
///   F = (a0 c^n + a1 c^{n-1} + a2 c^{n-2}) / dt_n - R(c^n) - D div(c^n) = 0
///   E = mean_w(c^n) - target(t_n) = 0           (rate;  cbar = target(t_n) in mu)
///   E = m^n - mean_w(c^n) = 0                    (potential;  cbar = m^n in mu, V = V(t_n))
/// Backward Euler: a = (1, -1, 0). Variable-step BDF2 with omega = dt_n / dt_{n-1}:
///   a = ((1 + 2 omega)/(1 + omega), -(1 + omega), omega^2/(1 + omega)); its first step is BE.
/// Under rate driving mean_w(c^n) = target(t_n) at the solution, so using the target as cbar gives
/// the same solution map (and the same exact gradient) without a dense coupling in the Jacobian.

#include <Eigen/Core>
#include <vector>

#include "bordered_solver.hpp"
#include "movie.hpp"

namespace pixelkinetics {

/// Work counters of one solve.
struct SolverStats {
  long n_steps = 0;           ///< accepted time steps
  long n_newton = 0;          ///< Newton iterations, failed attempts included
  long n_halvings = 0;        ///< failed step attempts that were split in two
  long n_factorizations = 0;  ///< numeric factorisations (forward and adjoint)
  long n_symmetric = 0;       ///< of which symmetric LDLT
  long n_lu_fallbacks = 0;    ///< symmetric attempts that fell back to LU
  long n_adjoint_solves = 0;  ///< transposed solves in the backward sweep
  long n_tangent_solves = 0;  ///< solves in tangent-linear (forward-sensitivity) sweeps

  void add_linear(const LinearSolveStats& s) {
    n_factorizations += s.n_factorizations;
    n_symmetric += s.n_symmetric;
    n_lu_fallbacks += s.n_lu_fallbacks;
  }
  /// The work done since `before` was taken.
  SolverStats minus(const SolverStats& before) const {
    SolverStats d = *this;
    d.n_steps -= before.n_steps;
    d.n_newton -= before.n_newton;
    d.n_halvings -= before.n_halvings;
    d.n_factorizations -= before.n_factorizations;
    d.n_symmetric -= before.n_symmetric;
    d.n_lu_fallbacks -= before.n_lu_fallbacks;
    d.n_adjoint_solves -= before.n_adjoint_solves;
    d.n_tangent_solves -= before.n_tangent_solves;
    return d;
  }
};

/// One accepted step.
struct StepRecord {
  double t = 0.0;   ///< time at the end of the step [s]
  double dt = 0.0;  ///< step size [s]
  double a0 = 1.0, a1 = -1.0, a2 = 0.0;  ///< multistep coefficients of the step
  double V = 0.0;     ///< electrode potential at t
  double cbar = 0.0;  ///< group mean in the coherency term at t
  int frame = -1;     ///< frame index reached at t, or -1
};

/// The forward solution: every accepted state, as the discrete adjoint needs them all.
struct Trajectory {
  std::vector<StepRecord> steps;  ///< steps[0] is the initial state at frame 0
  std::vector<Eigen::VectorXd> c;  ///< c[n]: concentration after step n
  SolverStats stats;
};

/// Residual and border data of step n at a given state.
struct StepSystem {
  Eigen::VectorXd F;  ///< site residual
  double E = 0.0;     ///< border residual
  Eigen::VectorXd u;  ///< border column dF/dy
  Eigen::VectorXd w;  ///< border row dE/dc
  double corner = 0.0;  ///< dE/dy
};

/// Border column, row and corner of the Newton matrix at state `s` (they do not depend on the residual).
void border_of(const Movie& particle, const GlobalParams& g, const LocalState& s, StepSystem& sys);

/// Integrates one particle from its initial state through all frames.
/// Throws SolverError when a step fails after the last halving.
Trajectory integrate(const Movie& particle, const GlobalParams& g, const Eigen::VectorXd& theta,
                     const SolverSettings& settings);

}  // namespace pixelkinetics
