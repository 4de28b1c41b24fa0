#include "adjoint.hpp"

#include <vector>

#include "errors.hpp"
#include "legendre.hpp"
#include "local_state.hpp"
#include "loss.hpp"

namespace pixelkinetics {

double trajectory_loss(const Movie& particle, const Trajectory& traj, const Eigen::VectorXd& theta,
                       const SolverSettings& settings) {
  double loss = theta_penalty(particle.grid, theta, settings.lam_s, settings.lam_0, nullptr);
  for (std::size_t n = 0; n < traj.steps.size(); ++n) {
    if (traj.steps[n].frame >= settings.first_fitted_frame())
      loss += frame_misfit(particle, traj.steps[n].frame, traj.c[n], settings.sigma, nullptr);
  }
  return loss;
}

namespace {

// Adds (lambda)^T df/dp of one step, f = R + D div, to the gradient.
void accumulate_parameter_gradient(const Movie& particle, const GlobalParams& g, const Eigen::VectorXd& c,
                                   const LocalState& s, const Eigen::VectorXd& lambda, LossGradient& out) {
  const int n = particle.n_sites();
  const int n_a = static_cast<int>(g.a.size()), n_b = static_cast<int>(g.b.size());
  Eigen::VectorXd& G = out.globals;

  // Parameters inside mu act through psi = R_eta lambda + D K lambda, with K the mobility operator
  // (symmetric), since df/dq = R_eta dmu/dq + D K dmu/dq.
  Eigen::VectorXd psi;
  apply_mobility_operator(particle.grid, s, lambda, psi);
  psi = s.dR_deta.cwiseProduct(lambda) + g.D * psi;

  std::vector<double> p(std::max(n_a + 1, n_b) + 1), dp(p.size());
  for (int i = 0; i < n; ++i) {
    const double lR = lambda[i] * s.R[i];
    out.theta[i] += lR;
    G[gidx::k0] += lambda[i] * s.rate_per_k0[i];
    G[gidx::alpha] -= lR * s.eta[i];  // dg/dalpha = -eta g
    G[gidx::Omega] += psi[i] * (1.0 - 2.0 * c[i]);
    G[gidx::kappa] -= psi[i] * s.lap_c[i];
    G[gidx::B] += psi[i] * (c[i] - s.cbar);
    G[gidx::D] += lambda[i] * s.div[i];
    if (n_a > 0 || n_b > 0) {
      legendre(2.0 * c[i] - 1.0, static_cast<int>(p.size()), p.data(), dp.data());
      for (int m = 1; m <= n_a; ++m) G[gidx::a_first + m - 1] += psi[i] * p[m];
      for (int m = 0; m < n_b; ++m) G[gidx::a_first + n_a + m] += lR * p[m];
    }
    if (g.has_base_params()) {
      G[g.base_first()] += lR * s.dlog_j0_ds[i];
      G[g.base_first() + 1] += lR * s.dlog_j0_dcstar[i];
    }
  }
}

// Adds d loss / d drive at the step's time, spread over the two frame values drive_at interpolates.
void accumulate_drive_gradient(const Movie& particle, const GlobalParams& g, const LocalState& s, double t,
                               const Eigen::VectorXd& lambda, double nu, Eigen::VectorXd& grad_drive) {
  // Rate: the target enters E = mean - target and cbar in mu (df/dcbar = -B dR/deta; the mobility term
  // does not see a uniform shift of mu). Potential: V enters eta (df/dV = dR/deta).
  const double lambda_R = lambda.dot(s.dR_deta);
  const double value = particle.driving == Driving::Rate ? nu - g.B * lambda_R : lambda_R;
  int f = 0;
  double frac = 0.0;
  particle.drive_weights(t, f, frac);
  grad_drive[f] += (1.0 - frac) * value;
  if (frac != 0.0) grad_drive[f + 1] += frac * value;
}

}  // namespace

void adjoint_sweep(const Movie& particle, const GlobalParams& g, Trajectory& traj,
                   const std::vector<Eigen::VectorXd>& frame_source, StepLinearizer& steps, LossGradient& out) {
  const int n_sites = particle.n_sites();
  out.globals.setZero(g.n_globals());
  out.theta.setZero(n_sites);
  out.drive.setZero(particle.n_frames());

  Eigen::VectorXd rhs, lambda, lambda_next1 = Eigen::VectorXd::Zero(n_sites),
                               lambda_next2 = Eigen::VectorXd::Zero(n_sites);
  double coupling1 = 0.0, coupling2 = 0.0;  // a1^{n+1}/dt_{n+1}, a2^{n+2}/dt_{n+2}
  double coupling2_pending = 0.0;           // a2^{n+1}/dt_{n+1}, used one step further back
  const auto source_of = [&](int frame) -> const Eigen::VectorXd* {
    if (frame < 0 || frame >= static_cast<int>(frame_source.size()) || frame_source[frame].size() == 0) return nullptr;
    return &frame_source[frame];
  };

  const int n_steps = static_cast<int>(traj.steps.size()) - 1;
  for (int n = n_steps; n >= 1; --n) {
    const StepRecord& rec = traj.steps[n];
    rhs = -coupling1 * lambda_next1 - coupling2 * lambda_next2;
    if (rec.frame >= 1) {
      if (const Eigen::VectorXd* source = source_of(rec.frame)) rhs += *source;
    }

    const StepFactor& step = steps.at(traj, n);
    const LocalState& s = step.state;
    double nu = 0.0;
    if (!step.solver.solve_transposed(rhs, 0.0, lambda, nu))
      throw SolverError(particle.name, rec.t, 0.0, "adjoint: bordered transposed solve failed");
    ++traj.stats.n_adjoint_solves;

    accumulate_parameter_gradient(particle, g, traj.c[n], s, lambda, out);
    accumulate_drive_gradient(particle, g, s, rec.t, lambda, nu, out.drive);

    lambda_next2 = lambda_next1;
    lambda_next1 = lambda;
    coupling2 = coupling2_pending;
    coupling1 = rec.a1 / rec.dt;
    coupling2_pending = rec.a2 / rec.dt;
  }
  out.c0 = -coupling1 * lambda_next1 - coupling2 * lambda_next2;
  if (const Eigen::VectorXd* source = source_of(0)) out.c0 += *source;
  // Under rate driving the frame-0 target is mean_w(c^0).
  if (particle.driving == Driving::Rate) out.c0 += (out.drive[0] / particle.weight_sum) * particle.site_weight;
  traj.stats.add_linear(steps.take_stats());
}

LossGradient loss_and_gradient(const Movie& particle, const GlobalParams& g, const Eigen::VectorXd& theta,
                               const SolverSettings& settings, Trajectory& traj, StepLinearizer* steps) {
  std::vector<Eigen::VectorXd> source(particle.n_frames());
  LossGradient out;
  const auto add_misfit = [&](int frame, const Eigen::VectorXd& c) {
    const double misfit = frame_misfit(particle, frame, c, settings.sigma, &source[frame]);
    out.misfit += misfit;
  };
  for (std::size_t n = 0; n < traj.steps.size(); ++n) {
    if (traj.steps[n].frame >= settings.first_fitted_frame()) add_misfit(traj.steps[n].frame, traj.c[n]);
  }
  if (steps) {
    adjoint_sweep(particle, g, traj, source, *steps, out);
  } else {
    StepLinearizer streaming(particle, g, theta, settings, /*keep=*/false);
    adjoint_sweep(particle, g, traj, source, streaming, out);
  }
  out.loss = out.misfit + theta_penalty(particle.grid, theta, settings.lam_s, settings.lam_0, &out.theta);
  return out;
}

}  // namespace pixelkinetics
