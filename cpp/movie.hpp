#pragma once
/// \file movie.hpp
/// One movie: a constraint group (a particle, or a population of edge-less sites) with its observed
/// data, the unit of parallel work. Python's pixelkinetics.Movie is converted to this.

#include <Eigen/Core>
#include <string>
#include <vector>

#include "grid.hpp"

namespace pixelkinetics {

/// How the group is driven (MODEL.md section 5).
enum class Driving {
  Rate,      ///< the weighted group mean follows `drive` (piecewise linear); V(t) is solved for
  Potential  ///< V(t) follows `drive` (piecewise linear); the group mean is free
};

Driving parse_driving(const std::string& name);

/// Input of one group. Observations and weights are (T, n_sites), row t = frame t.
struct Movie {
  /// Validates every array against the grid and the frame times; throws std::invalid_argument
  /// naming the particle and the array.
  Movie(std::string name, Grid grid, Eigen::VectorXd site_weight, Eigen::VectorXd c0,
           Eigen::VectorXd frame_times, Driving driving, Eigen::VectorXd drive,
           Eigen::MatrixXd observed, Eigen::MatrixXd obs_weight);

  std::string name;
  Grid grid;
  Eigen::VectorXd site_weight;  ///< weights of the group mean (volumes for a population)
  double weight_sum;
  Eigen::VectorXd c0;           ///< initial concentration, strictly inside (0, 1)
  Eigen::VectorXd frame_times;  ///< strictly increasing, seconds
  Driving driving;
  Eigen::VectorXd drive;        ///< target mean (rate) or dimensionless V (potential) at each frame
  Eigen::MatrixXd observed;     ///< observed concentration; entries with zero weight are ignored
  Eigen::MatrixXd obs_weight;   ///< loss weight w_{f,i}; frames before SolverSettings::first_fitted_frame() are not in the loss

  int n_sites() const { return grid.n_sites(); }
  int n_frames() const { return static_cast<int>(frame_times.size()); }
  /// Weighted group mean of a site field.
  double group_mean(const Eigen::VectorXd& c) const { return site_weight.dot(c) / weight_sum; }
  /// Piecewise-linear interpolation of `drive` at time t (clamped to the frame range).
  double drive_at(double t) const;
  /// The interpolation weights of drive_at: drive_at(t) = (1 - s) drive[f] + s drive[f + 1]
  /// (f + 1 is not read when s = 0).
  void drive_weights(double t, int& f, double& s) const;
  /// A copy starting from another initial state. Under rate driving the target at frame 0 becomes
  /// its weighted mean (MODEL.md section 7), so the first interval ramps from the new state.
  Movie with_initial_state(const Eigen::VectorXd& c0) const;
};

}  // namespace pixelkinetics
