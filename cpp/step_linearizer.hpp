#pragma once
/// \file step_linearizer.hpp
/// The linearisation of each step of a solved trajectory, for the sensitivity sweeps: the local state at
/// the converged solution and the factorised Newton matrix with its forward and transposed borders.
/// Streaming (one slot, refilled at every step) for a single adjoint sweep; kept (every step stored)
/// when many sweeps follow at one point, as in Gauss-Newton Hessian-vector products, which then cost
/// two triangular solves per step and no factorisation.

#include <Eigen/Core>
#include <memory>
#include <vector>

#include "bordered_solver.hpp"
#include "local_state.hpp"
#include "movie.hpp"
#include "stepper.hpp"

namespace pixelkinetics {

/// One linearised step.
struct StepFactor {
  LocalState state;      ///< at the converged state of the step, flux fields included
  BorderedSolver solver;  ///< factorised there; transposed border set, the forward one too when kept
  StepFactor(LinearSolverKind kind, const JacobianAssembler* pattern)
      : solver(pattern ? BorderedSolver(kind, *pattern) : BorderedSolver(kind)) {}
};

class StepLinearizer {
 public:
  /// `keep`: store every step once built (memory: a sparse factor and a dozen site vectors per step).
  /// A streaming linearizer serves one adjoint sweep: it sets only the transposed border.
  StepLinearizer(const Movie& particle, const GlobalParams& g, const Eigen::VectorXd& theta,
                 const SolverSettings& settings, bool keep);
  bool keeps() const { return keep_; }

  /// The linearisation of step n >= 1 of `traj`; throws SolverError when its matrix is singular.
  const StepFactor& at(const Trajectory& traj, int n);

  /// Linear-algebra work since the last call (added to a trajectory's statistics by the sweeps).
  LinearSolveStats take_stats();

 private:
  const Movie& particle_;
  const GlobalParams& g_;
  const SolverSettings& settings_;
  Eigen::VectorXd exp_theta_;
  bool keep_;
  std::vector<std::unique_ptr<StepFactor>> steps_;  // kept: index n; streaming: one slot
  const JacobianAssembler* pattern_ = nullptr;      // of the first step built, shared by the later ones
  LinearSolveStats stats_;
};

}  // namespace pixelkinetics
