#include "batch.hpp"

#include <algorithm>
#include <exception>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "adjoint.hpp"
#include "loss.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pixelkinetics {

namespace {

ParticleResult solve_one(const Particle& particle, const GlobalParams& g, const Eigen::VectorXd& theta,
                         const SolverSettings& settings, BatchMode mode) {
  Trajectory traj = integrate(particle, g, theta, settings);
  ParticleResult out;
  const int T = particle.n_frames();
  out.concentration.resize(T, particle.n_sites());
  out.voltage.setConstant(T, std::numeric_limits<double>::quiet_NaN());
  for (std::size_t n = 0; n < traj.steps.size(); ++n) {
    const int f = traj.steps[n].frame;
    if (f < 0) continue;
    out.concentration.row(f) = traj.c[n].transpose();
    if (f > 0 || particle.driving == Driving::Potential) out.voltage[f] = traj.steps[n].V;
  }
  if (mode == BatchMode::LossAndGradient) {
    LossGradient lg = loss_and_gradient(particle, g, theta, settings, traj);
    out.loss = lg.loss;
    out.misfit = lg.misfit;
    out.grad_globals = std::move(lg.globals);
    out.grad_theta = std::move(lg.theta);
    out.grad_c0 = std::move(lg.c0);
    out.grad_drive = std::move(lg.drive);
  } else if (mode == BatchMode::Loss) {
    out.loss = trajectory_loss(particle, traj, theta, settings);
    out.misfit = out.loss - theta_penalty(particle.grid, theta, settings.lam_s, settings.lam_0, nullptr);
  }
  out.stats = traj.stats;
  return out;
}

}  // namespace

std::vector<ParticleResult> solve_batch(const std::vector<Particle>& particles, const GlobalParams& g,
                                        const std::vector<Eigen::VectorXd>& theta, const SolverSettings& settings,
                                        BatchMode mode, const std::vector<Eigen::VectorXd>& c0) {
  g.validate();
  settings.validate();
  if (theta.size() != particles.size())
    throw std::invalid_argument("got " + std::to_string(theta.size()) + " theta vectors for " +
                                std::to_string(particles.size()) + " particles");
  if (!c0.empty() && c0.size() != particles.size())
    throw std::invalid_argument("got " + std::to_string(c0.size()) + " initial states for " +
                                std::to_string(particles.size()) + " particles");

  // Largest first, so that dynamic scheduling does not end on one big particle.
  std::vector<int> order(particles.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return static_cast<double>(particles[a].n_sites()) * particles[a].n_frames() >
           static_cast<double>(particles[b].n_sites()) * particles[b].n_frames();
  });

  std::vector<ParticleResult> results(particles.size());
  std::vector<std::exception_ptr> errors(particles.size());
  const long n = static_cast<long>(particles.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (long k = 0; k < n; ++k) {
    const int idx = order[k];
    // No exception may leave the parallel region: keep it, rethrow after the loop.
    try {
      if (c0.empty()) {
        results[idx] = solve_one(particles[idx], g, theta[idx], settings, mode);
      } else {
        results[idx] = solve_one(particles[idx].with_initial_state(c0[idx]), g, theta[idx], settings, mode);
      }
    } catch (...) {
      errors[idx] = std::current_exception();
    }
  }
  for (const auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
  return results;
}

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("number of threads must be >= 1, got " + std::to_string(n));
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
}

int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

bool has_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace pixelkinetics
