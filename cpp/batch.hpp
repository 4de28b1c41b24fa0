#pragma once
/// \file batch.hpp
/// Many independent constraint groups solved in parallel: the unit of parallel work is one particle
/// with its own time grid, scheduled dynamically (largest first) over OpenMP threads.

#include <Eigen/Core>
#include <vector>

#include <memory>

#include "movie.hpp"
#include "step_linearizer.hpp"
#include "stepper.hpp"

namespace pixelkinetics {

enum class BatchMode {
  Simulate,        ///< forward solve only
  Loss,            ///< forward solve and loss
  LossAndGradient  ///< forward solve, loss and the adjoint gradient
};

/// Output of one particle.
struct MovieResult {
  Eigen::MatrixXd concentration;  ///< (T, n_sites) at the frame times
  Eigen::VectorXd voltage;        ///< (T) V at the frame times (NaN at frame 0 under rate driving)
  double loss = 0.0;              ///< misfit + theta penalty (Loss modes)
  double misfit = 0.0;
  Eigen::VectorXd grad_globals;   ///< (LossAndGradient)
  Eigen::VectorXd grad_theta;     ///< (LossAndGradient)
  Eigen::VectorXd grad_c0;        ///< (LossAndGradient) d loss / d c^0, see LossGradient::c0
  Eigen::VectorXd grad_drive;     ///< (LossAndGradient) d loss / d drive values, see LossGradient::drive
  SolverStats stats;
};

/// The particles of one problem, converted once and solved many times.
class Batch {
 public:
  explicit Batch(std::vector<Movie> particles) : movies_(std::move(particles)) {}
  const std::vector<Movie>& movies() const { return movies_; }

 private:
  std::vector<Movie> movies_;
};

/// Solves every particle. `theta[k]` belongs to particles[k]; `c0`, when not empty, holds an initial
/// state for every particle in place of its own (Movie::with_initial_state). Exceptions raised for
/// any particle are re-thrown (the first one, in particle order) after all threads have finished.
std::vector<MovieResult> solve_batch(const std::vector<Movie>& particles, const GlobalParams& g,
                                        const std::vector<Eigen::VectorXd>& theta, const SolverSettings& settings,
                                        BatchMode mode, const std::vector<Eigen::VectorXd>& c0 = {});

/// The forward solutions of every particle at one point (g, theta, c0), kept for many products with the
/// Gauss-Newton Hessian there (tangent.hpp): the expensive Newton solves are done once.
class Linearization {
 public:
  /// Solves every particle (in parallel); with `with_gradient` also the loss and gradient (results()).
  Linearization(const std::vector<Movie>& particles, const GlobalParams& g, std::vector<Eigen::VectorXd> theta,
                const SolverSettings& settings, const std::vector<Eigen::VectorXd>& c0, bool with_gradient);
  // The kept step factors refer to the particles, parameters and settings held here.
  Linearization(const Linearization&) = delete;
  Linearization& operator=(const Linearization&) = delete;

  /// Per particle: the loss and gradient (when asked for) and the frames, as from solve_batch.
  const std::vector<MovieResult>& results() const { return results_; }

  /// The Gauss-Newton Hessian applied to a direction: `d_globals` (raw globals, shared by all particles),
  /// `d_theta[k]` and `d_c0[k]` per particle. Per particle: grad_globals, grad_theta, grad_c0 hold its
  /// product and misfit its quadratic model d^T H d / 2 (sum the globals over particles).
  std::vector<MovieResult> gauss_newton_product(const Eigen::VectorXd& d_globals,
                                                   const std::vector<Eigen::VectorXd>& d_theta,
                                                   const std::vector<Eigen::VectorXd>& d_c0);

 private:
  std::vector<Movie> movies_;  // with their initial states
  GlobalParams g_;
  std::vector<Eigen::VectorXd> theta_;
  SolverSettings settings_;
  std::vector<Trajectory> trajectories_;
  std::vector<std::unique_ptr<StepLinearizer>> steps_;  // kept factors of every step
  std::vector<MovieResult> results_;
};

/// OpenMP thread control (no-ops returning 1 / false without OpenMP).
void set_num_threads(int n);
int num_threads();
bool has_openmp();

}  // namespace pixelkinetics
