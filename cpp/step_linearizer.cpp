#include "step_linearizer.hpp"

#include "errors.hpp"

namespace pixelkinetics {

StepLinearizer::StepLinearizer(const Movie& particle, const GlobalParams& g, const Eigen::VectorXd& theta,
                               const SolverSettings& settings, bool keep)
    : particle_(particle), g_(g), settings_(settings), exp_theta_(theta.array().exp()), keep_(keep) {}

const StepFactor& StepLinearizer::at(const Trajectory& traj, int n) {
  const std::size_t slot = keep_ ? static_cast<std::size_t>(n) : 0;
  if (steps_.size() <= slot) steps_.resize(keep_ ? traj.steps.size() : 1);
  if (keep_ && steps_[slot]) return *steps_[slot];
  if (!steps_[slot]) {
    // Later steps start from the patterns and ordering of the first one built.
    steps_[slot] = std::make_unique<StepFactor>(settings_.linear_solver, pattern_);
    if (!pattern_) pattern_ = &steps_[slot]->solver.assembler();
  }
  StepFactor& out = *steps_[slot];
  const StepRecord& rec = traj.steps[n];
  evaluate_local_state(particle_, g_, exp_theta_, traj.c[n], rec.V, rec.cbar, out.state, /*with_flux=*/true);
  const LinearSolveStats before = out.solver.stats();
  const bool ok = out.solver.factorize(particle_.grid, g_, out.state, rec.a0 / rec.dt);
  const LinearSolveStats& after = out.solver.stats();
  stats_.n_factorizations += after.n_factorizations - before.n_factorizations;
  stats_.n_symmetric += after.n_symmetric - before.n_symmetric;
  stats_.n_lu_fallbacks += after.n_lu_fallbacks - before.n_lu_fallbacks;
  if (!ok) throw SolverError(particle_.name, rec.t, 0.0, "sensitivity sweep: Newton matrix is singular");
  StepSystem sys;
  border_of(particle_, g_, out.state, sys);
  // The forward border costs a block solve, which only the tangent sweeps over kept steps need.
  if ((keep_ && !out.solver.set_border(sys.u, sys.w, sys.corner)) ||
      !out.solver.set_border_transposed(sys.u, sys.w, sys.corner))
    throw SolverError(particle_.name, rec.t, 0.0, "sensitivity sweep: bordered system is singular");
  return out;
}

LinearSolveStats StepLinearizer::take_stats() {
  const LinearSolveStats out = stats_;
  stats_ = LinearSolveStats{};
  return out;
}

}  // namespace pixelkinetics
