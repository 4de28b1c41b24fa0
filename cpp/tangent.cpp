#include "tangent.hpp"

#include <stdexcept>
#include <string>

#include "errors.hpp"
#include "legendre.hpp"
#include "local_state.hpp"
#include "loss.hpp"

namespace pixelkinetics {

namespace {

void check_direction(const Movie& particle, const GlobalParams& g, const Direction& dir) {
  const auto check = [&](const Eigen::VectorXd& v, Eigen::Index n, const char* what) {
    if (v.size() != n)
      throw std::invalid_argument("particle '" + particle.name + "': direction " + what + " has " +
                                  std::to_string(v.size()) + " entries, expected " + std::to_string(n));
    if (!v.allFinite())
      throw std::invalid_argument("particle '" + particle.name + "': direction " + what + " is not finite");
  };
  check(dir.globals, g.n_globals(), "globals");
  check(dir.theta, particle.n_sites(), "theta");
  check(dir.c0, particle.n_sites(), "c0");
}

// df/dp dp at one state, f = R + D div (the transpose of accumulate_parameter_gradient in adjoint.cpp).
// `d_target` is the change of the rate-driving target, which enters mu through cbar (a uniform shift
// that V absorbs: it moves dV, not dc).
void parameter_tangent(const Movie& particle, const GlobalParams& g, const Eigen::VectorXd& c, const LocalState& s,
                       const Direction& dir, double d_target, Eigen::VectorXd& dmu, Eigen::VectorXd& out) {
  const int n = particle.n_sites();
  const int n_a = static_cast<int>(g.a.size()), n_b = static_cast<int>(g.b.size());
  const Eigen::VectorXd& dg = dir.globals;
  std::vector<double> p(std::max(n_a + 1, n_b) + 1), dp(p.size());
  dmu.resize(n);
  out.resize(n);
  for (int i = 0; i < n; ++i) {
    // d ln R through theta, b and alpha (dg/dalpha = -eta g), and d mu through its parameters.
    double dlog_rate = dir.theta[i] - s.eta[i] * dg[gidx::alpha];
    double dmu_i = (1.0 - 2.0 * c[i]) * dg[gidx::Omega] - s.lap_c[i] * dg[gidx::kappa] +
                   (c[i] - s.cbar) * dg[gidx::B] - g.B * d_target;
    if (n_a > 0 || n_b > 0) {
      legendre(2.0 * c[i] - 1.0, static_cast<int>(p.size()), p.data(), dp.data());
      for (int m = 1; m <= n_a; ++m) dmu_i += p[m] * dg[gidx::a_first + m - 1];
      for (int m = 0; m < n_b; ++m) dlog_rate += p[m] * dg[gidx::a_first + n_a + m];
    }
    if (g.has_base_params())
      dlog_rate += s.dlog_j0_ds[i] * dg[g.base_first()] + s.dlog_j0_dcstar[i] * dg[g.base_first() + 1];
    dmu[i] = dmu_i;
    out[i] = s.R[i] * dlog_rate + s.rate_per_k0[i] * dg[gidx::k0] + s.dR_deta[i] * dmu_i +
             s.div[i] * dg[gidx::D];
  }
  if (g.D != 0.0) {
    Eigen::VectorXd flux;
    apply_mobility_operator(particle.grid, s, dmu, flux);
    out += g.D * flux;
  }
}

}  // namespace

std::vector<Eigen::VectorXd> tangent_sweep(const Movie& particle, const GlobalParams& g, Trajectory& traj,
                                           StepLinearizer& steps, const Direction& dir) {
  check_direction(particle, g, dir);
  if (!steps.keeps()) throw std::logic_error("tangent_sweep needs a StepLinearizer that keeps its steps");
  const int n_steps = static_cast<int>(traj.steps.size()) - 1;
  const bool rate = particle.driving == Driving::Rate;
  // Under rate driving the frame-0 target is mean_w(c^0) (Movie::with_initial_state).
  const double d_drive0 = rate ? particle.group_mean(dir.c0) : 0.0;

  std::vector<Eigen::VectorXd> dc(traj.steps.size());
  dc[0] = dir.c0;
  Eigen::VectorXd dmu, df, rhs;
  for (int n = 1; n <= n_steps; ++n) {
    const StepRecord& rec = traj.steps[n];
    double d_target = 0.0;
    if (rate) {
      int f = 0;
      double frac = 0.0;
      particle.drive_weights(rec.t, f, frac);
      if (f == 0) d_target = (1.0 - frac) * d_drive0;
    }
    const StepFactor& step = steps.at(traj, n);
    parameter_tangent(particle, g, traj.c[n], step.state, dir, d_target, dmu, df);
    rhs = df - (rec.a1 / rec.dt) * dc[n - 1];
    if (rec.a2 != 0.0) rhs -= (rec.a2 / rec.dt) * dc[n - 2];

    double dy = 0.0;
    // E = mean_w(c) - target under rate driving: -dE/dp dp = d_target.
    if (!step.solver.solve(rhs, rate ? d_target : 0.0, dc[n], dy))
      throw SolverError(particle.name, rec.t, 0.0, "tangent: bordered solve failed");
    ++traj.stats.n_tangent_solves;
  }
  traj.stats.add_linear(steps.take_stats());
  return dc;
}

LossGradient gauss_newton_product(const Movie& particle, const GlobalParams& g, const SolverSettings& settings,
                                  Trajectory& traj, StepLinearizer& steps, const Direction& dir) {
  const std::vector<Eigen::VectorXd> dc = tangent_sweep(particle, g, traj, steps, dir);
  std::vector<Eigen::VectorXd> source(particle.n_frames());
  LossGradient out;
  const double inv_s2 = 1.0 / (settings.sigma * settings.sigma);
  const auto add_source = [&](int frame, const Eigen::VectorXd& dc_frame) {
    Eigen::VectorXd& src = source[frame];
    src.setZero(dc_frame.size());
    for (Eigen::Index i = 0; i < dc_frame.size(); ++i) src[i] = particle.obs_weight(frame, i) * inv_s2 * dc_frame[i];
    out.misfit += 0.5 * src.dot(dc_frame);
  };
  for (std::size_t n = 0; n < traj.steps.size(); ++n) {
    if (traj.steps[n].frame >= settings.first_fitted_frame()) add_source(traj.steps[n].frame, dc[n]);
  }
  adjoint_sweep(particle, g, traj, source, steps, out);
  theta_penalty_product(particle.grid, dir.theta, settings.lam_s, settings.lam_0, out.theta);
  out.loss = out.misfit;
  return out;
}

}  // namespace pixelkinetics
