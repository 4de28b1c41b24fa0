#include "stepper.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "errors.hpp"
#include "local_state.hpp"

namespace pixelkinetics {

void border_of(const Movie& particle, const GlobalParams& g, const LocalState& s, StepSystem& sys) {
  if (particle.driving == Driving::Rate) {
    sys.u = -s.dR_deta;  // d eta / dV = 1
    sys.w = particle.site_weight / particle.weight_sum;
    sys.corner = 0.0;
  } else {
    sys.u = g.B * s.dR_deta;  // d eta / dm = -B
    sys.w = -particle.site_weight / particle.weight_sum;
    sys.corner = 1.0;
  }
}

namespace {

constexpr double kMaxPotentialStep = 3.0;  // kT per Newton iteration

class Stepper {
 public:
  Stepper(const Movie& particle, const GlobalParams& g, const Eigen::VectorXd& theta,
          const SolverSettings& settings)
      : p_(particle),
        g_(g),
        set_(settings),
        exp_theta_(theta.array().exp()),
        solver_(settings.linear_solver),
        newton_limit_(static_cast<long>(settings.newton_budget * settings.n_sub * (particle.n_frames() - 1))) {}

  Trajectory run() {
    Trajectory traj;
    StepRecord first;
    first.t = p_.frame_times[0];
    first.frame = 0;
    first.cbar = p_.driving == Driving::Rate ? p_.drive[0] : p_.group_mean(p_.c0);
    if (p_.driving == Driving::Potential) {
      first.V = p_.drive[0];
    } else {
      // Equilibrium guess for the first Newton iterate: the potential at which the mean overpotential vanishes.
      evaluate_local_state(p_, g_, exp_theta_, p_.c0, 0.0, first.cbar, state_);
      first.V = -p_.group_mean(state_.mu);
    }
    traj.steps.push_back(first);
    traj.c.push_back(p_.c0);
    traj_ = &traj;

    for (int f = 1; f < p_.n_frames(); ++f) {
      const double t0 = p_.frame_times[f - 1], t1 = p_.frame_times[f];
      for (int k = 1; k <= set_.n_sub; ++k) {
        const double from = traj.steps.back().t;
        const double to = k == set_.n_sub ? t1 : t0 + (t1 - t0) * k / set_.n_sub;
        advance(from, to, 0);
      }
      traj.steps.back().frame = f;
    }
    traj.stats.n_steps = static_cast<long>(traj.steps.size()) - 1;
    traj.stats.add_linear(solver_.stats());
    return traj;
  }

 private:
  // Takes the step from `from` to `to`, splitting it in halves (recursively) when Newton fails.
  void advance(double from, double to, int depth) {
    // A halving changes the discretisation, so first retry the same step from the previous state.
    if (try_step(to - from, to, set_.predictor_order)) return;
    if (set_.predictor_order > 0 && try_step(to - from, to, 0)) return;
    if (depth >= set_.max_halvings) {
      throw SolverError(p_.name, from, last_residual_,
                        "Newton did not converge after " + std::to_string(depth) + " step halvings");
    }
    ++traj_->stats.n_halvings;
    const double mid = from + 0.5 * (to - from);
    advance(from, mid, depth + 1);
    advance(mid, to, depth + 1);
  }

  bool try_step(double dt, double t, int predictor_order) {
    Trajectory& traj = *traj_;
    const std::size_t n = traj.steps.size() - 1;  // index of the latest accepted state
    const StepRecord& prev = traj.steps[n];
    StepRecord rec;
    rec.t = t;
    rec.dt = dt;
    if (set_.scheme == Scheme::BDF2 && n >= 1) {
      const double omega = dt / prev.dt;
      rec.a0 = (1.0 + 2.0 * omega) / (1.0 + omega);
      rec.a1 = -(1.0 + omega);
      rec.a2 = omega * omega / (1.0 + omega);
    }
    history_ = rec.a1 * traj.c[n];
    if (rec.a2 != 0.0) history_ += rec.a2 * traj.c[n - 1];

    // Predictor: Lagrange extrapolation through the last (up to) predictor_order + 1 states of the
    // current frame interval (the drive has kinks at frame times), used only inside (0, 1).
    const bool rate = p_.driving == Driving::Rate;
    Eigen::VectorXd c = traj.c[n];
    double y = rate ? prev.V : prev.cbar;
    int order = 0;
    while (order < predictor_order && order < static_cast<int>(n) && traj.steps[n - order].frame < 0) ++order;
    if (order > 0) {
      double weight[3];
      for (int a = 0; a <= order; ++a) {
        weight[a] = 1.0;
        for (int b = 0; b <= order; ++b) {
          if (b != a) weight[a] *= (t - traj.steps[n - b].t) / (traj.steps[n - a].t - traj.steps[n - b].t);
        }
      }
      Eigen::VectorXd guess = Eigen::VectorXd::Zero(c.size());
      double y_guess = 0.0;
      for (int a = 0; a <= order; ++a) {
        guess += weight[a] * traj.c[n - a];
        y_guess += weight[a] * (rate ? traj.steps[n - a].V : traj.steps[n - a].cbar);
      }
      if ((guess.array() > 1e-12).all() && (guess.array() < 1.0 - 1e-12).all()) c = guess;
      y = y_guess;
    }
    const double drive = p_.drive_at(t);

    const double diag_time = rec.a0 / dt;
    Eigen::VectorXd dc;
    double dy = 0.0;
    double previous_residual = std::numeric_limits<double>::infinity();
    for (int it = 0;; ++it) {
      const double V = rate ? y : drive;
      const double cbar = rate ? drive : y;
      evaluate_local_state(p_, g_, exp_theta_, c, V, cbar, state_);
      sys_.F = (rec.a0 * c + history_) / dt - state_.R - g_.D * state_.div;
      sys_.E = rate ? p_.group_mean(c) - drive : y - p_.group_mean(c);
      // The residual measured as the concentration change it would cause: F dt / a0. It cannot be
      // resolved below the rounding error of its largest term, which matters for very fast rates.
      last_residual_ = std::max(sys_.F.cwiseAbs().maxCoeff() / diag_time, std::abs(sys_.E));
      if (!std::isfinite(last_residual_)) return false;
      const double rounding =
          16.0 * std::numeric_limits<double>::epsilon() *
          ((state_.R.cwiseAbs().maxCoeff() + g_.D * state_.div.cwiseAbs().maxCoeff()) / diag_time + 1.0);
      if (last_residual_ <= std::max(set_.newton_tol, rounding)) {
        rec.V = V;
        rec.cbar = cbar;
        traj.steps.push_back(rec);
        traj.c.push_back(c);
        return true;
      }
      if (it == set_.max_newton) return false;
      if (newton_limit_ > 0 && traj.stats.n_newton >= newton_limit_) {
        throw SolverError(p_.name, t, last_residual_,
                          "work limit of " + std::to_string(newton_limit_) + " Newton iterations exceeded");
      }

      ++traj.stats.n_newton;
      // Chord iterations: keep the factorisation while the residual still falls fast; the adjoint
      // re-factorises at the converged state, so the gradient stays exact.
      const bool refactor = it == 0 || !set_.reuse_jacobian || last_residual_ > 0.1 * previous_residual;
      previous_residual = last_residual_;
      if (refactor) {
        if (!solver_.factorize(p_.grid, g_, state_, diag_time)) return false;
        border_of(p_, g_, state_, sys_);
        if (!solver_.set_border(sys_.u, sys_.w, sys_.corner)) return false;
      }
      if (!solver_.solve(-sys_.F, -sys_.E, dc, dy)) return false;

      // Damping: no concentration may move more than 90% of its distance to 0 or 1, and V no more
      // than kMaxPotentialStep: the rates are exponential in V, and a long linearised step overflows
      // them (Newton then walks back only 1/(1 - alpha) kT per iteration).
      double tau = 1.0;
      if (rate && std::abs(dy) > kMaxPotentialStep) tau = kMaxPotentialStep / std::abs(dy);
      for (Eigen::Index i = 0; i < c.size(); ++i) {
        if (dc[i] < 0.0) tau = std::min(tau, 0.9 * c[i] / -dc[i]);
        if (dc[i] > 0.0) tau = std::min(tau, 0.9 * (1.0 - c[i]) / dc[i]);
      }
      c += tau * dc;
      y += tau * dy;
    }
  }

  const Movie& p_;
  const GlobalParams& g_;
  const SolverSettings& set_;
  Eigen::VectorXd exp_theta_;
  BorderedSolver solver_;
  LocalState state_;
  StepSystem sys_;
  Eigen::VectorXd history_;
  Trajectory* traj_ = nullptr;
  long newton_limit_ = 0;  // 0: no limit
  double last_residual_ = std::numeric_limits<double>::quiet_NaN();
};

}  // namespace

Trajectory integrate(const Movie& particle, const GlobalParams& g, const Eigen::VectorXd& theta,
                     const SolverSettings& settings) {
  if (theta.size() != particle.n_sites())
    throw std::invalid_argument("particle '" + particle.name + "': theta has " + std::to_string(theta.size()) +
                                " entries, expected " + std::to_string(particle.n_sites()));
  if (!theta.allFinite()) throw std::invalid_argument("particle '" + particle.name + "': theta is not finite");
  return Stepper(particle, g, theta, settings).run();
}

}  // namespace pixelkinetics
