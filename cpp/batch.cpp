#include "batch.hpp"

#include <algorithm>
#include <exception>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "adjoint.hpp"
#include "tangent.hpp"
#include "loss.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pixelkinetics {

namespace {

// Solves one particle into `traj` (kept by Linearization) and evaluates what `mode` asks for.
MovieResult solve_one(const Movie& particle, const GlobalParams& g, const Eigen::VectorXd& theta,
                         const SolverSettings& settings, BatchMode mode, Trajectory& traj,
                         StepLinearizer* steps = nullptr) {
  traj = integrate(particle, g, theta, settings);
  MovieResult out;
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
    LossGradient lg = loss_and_gradient(particle, g, theta, settings, traj, steps);
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

// Largest first, so that dynamic scheduling does not end on one big particle.
std::vector<int> largest_first(const std::vector<Movie>& particles) {
  std::vector<int> order(particles.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return static_cast<double>(particles[a].n_sites()) * particles[a].n_frames() >
           static_cast<double>(particles[b].n_sites()) * particles[b].n_frames();
  });
  return order;
}

// Runs work(k) for every particle over the OpenMP threads. No exception may leave the parallel
// region: each is kept, and the first in particle order is re-thrown after all threads have finished.
template <class Work>
void for_each_particle(const std::vector<Movie>& particles, Work&& work) {
  const std::vector<int> order = largest_first(particles);
  std::vector<std::exception_ptr> errors(particles.size());
  const long n = static_cast<long>(particles.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (long k = 0; k < n; ++k) {
    const int idx = order[k];
    try {
      work(idx);
    } catch (...) {
      errors[idx] = std::current_exception();
    }
  }
  for (const auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

void check_sizes(const std::vector<Movie>& particles, const std::vector<Eigen::VectorXd>& theta,
                 const std::vector<Eigen::VectorXd>& c0) {
  if (theta.size() != particles.size())
    throw std::invalid_argument("got " + std::to_string(theta.size()) + " theta vectors for " +
                                std::to_string(particles.size()) + " particles");
  if (!c0.empty() && c0.size() != particles.size())
    throw std::invalid_argument("got " + std::to_string(c0.size()) + " initial states for " +
                                std::to_string(particles.size()) + " particles");
}

}  // namespace

std::vector<MovieResult> solve_batch(const std::vector<Movie>& particles, const GlobalParams& g,
                                        const std::vector<Eigen::VectorXd>& theta, const SolverSettings& settings,
                                        BatchMode mode, const std::vector<Eigen::VectorXd>& c0) {
  g.validate();
  settings.validate();
  check_sizes(particles, theta, c0);
  std::vector<MovieResult> results(particles.size());
  for_each_particle(particles, [&](int k) {
    Trajectory traj;
    if (c0.empty()) {
      results[k] = solve_one(particles[k], g, theta[k], settings, mode, traj);
    } else {
      results[k] = solve_one(particles[k].with_initial_state(c0[k]), g, theta[k], settings, mode, traj);
    }
  });
  return results;
}

Linearization::Linearization(const std::vector<Movie>& particles, const GlobalParams& g,
                             std::vector<Eigen::VectorXd> theta, const SolverSettings& settings,
                             const std::vector<Eigen::VectorXd>& c0, bool with_gradient)
    : g_(g), theta_(std::move(theta)), settings_(settings) {
  g_.validate();
  settings_.validate();
  check_sizes(particles, theta_, c0);
  movies_.reserve(particles.size());
  for (std::size_t k = 0; k < particles.size(); ++k)
    movies_.push_back(c0.empty() ? particles[k] : particles[k].with_initial_state(c0[k]));
  trajectories_.resize(movies_.size());
  results_.resize(movies_.size());
  steps_.resize(movies_.size());
  const BatchMode mode = with_gradient ? BatchMode::LossAndGradient : BatchMode::Loss;
  for_each_particle(movies_, [&](int k) {
    // The gradient's adjoint sweep factorises every step anyway: keep the factors for the products.
    steps_[k] = std::make_unique<StepLinearizer>(movies_[k], g_, theta_[k], settings_, /*keep=*/true);
    results_[k] = solve_one(movies_[k], g_, theta_[k], settings_, mode, trajectories_[k], steps_[k].get());
  });
}

std::vector<MovieResult> Linearization::gauss_newton_product(const Eigen::VectorXd& d_globals,
                                                                const std::vector<Eigen::VectorXd>& d_theta,
                                                                const std::vector<Eigen::VectorXd>& d_c0) {
  const std::size_t n = movies_.size();
  if (d_theta.size() != n || d_c0.size() != n)
    throw std::invalid_argument("direction has " + std::to_string(d_theta.size()) + " theta and " +
                                std::to_string(d_c0.size()) + " c0 vectors for " + std::to_string(n) + " particles");
  std::vector<MovieResult> out(n);
  for_each_particle(movies_, [&](int k) {
    Trajectory& traj = trajectories_[k];
    const SolverStats before = traj.stats;
    LossGradient hv = pixelkinetics::gauss_newton_product(movies_[k], g_, settings_, traj, *steps_[k],
                                                          Direction{d_globals, d_theta[k], d_c0[k]});
    out[k].misfit = hv.misfit;
    out[k].grad_globals = std::move(hv.globals);
    out[k].grad_theta = std::move(hv.theta);
    out[k].grad_c0 = std::move(hv.c0);
    out[k].stats = traj.stats.minus(before);
  });
  return out;
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
