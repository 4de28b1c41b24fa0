#include "movie.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace pixelkinetics {

Driving parse_driving(const std::string& name) {
  if (name == "rate") return Driving::Rate;
  if (name == "potential") return Driving::Potential;
  throw std::invalid_argument("driving must be 'rate' or 'potential', got '" + name + "'");
}

Movie::Movie(std::string name_, Grid grid_, Eigen::VectorXd site_weight_, Eigen::VectorXd c0_,
                   Eigen::VectorXd frame_times_, Driving driving_, Eigen::VectorXd drive_,
                   Eigen::MatrixXd observed_, Eigen::MatrixXd obs_weight_)
    : name(std::move(name_)),
      grid(std::move(grid_)),
      site_weight(std::move(site_weight_)),
      weight_sum(0.0),
      c0(std::move(c0_)),
      frame_times(std::move(frame_times_)),
      driving(driving_),
      drive(std::move(drive_)),
      observed(std::move(observed_)),
      obs_weight(std::move(obs_weight_)) {
  const std::string where = "particle '" + name + "': ";
  const int n = grid.n_sites();
  const int T = n_frames();
  auto fail = [&](const std::string& what) { throw std::invalid_argument(where + what); };

  if (site_weight.size() != n)
    fail("site_weight has " + std::to_string(site_weight.size()) + " entries, expected " + std::to_string(n));
  if (!site_weight.allFinite() || site_weight.minCoeff() <= 0) fail("site_weight must be positive and finite");
  weight_sum = site_weight.sum();

  if (c0.size() != n) fail("c0 has " + std::to_string(c0.size()) + " entries, expected " + std::to_string(n));
  for (int i = 0; i < n; ++i) {
    if (!(c0[i] > 0.0 && c0[i] < 1.0))
      fail("initial concentration must lie strictly inside (0, 1), got " + std::to_string(c0[i]) +
           " at site " + std::to_string(i));
  }

  if (T < 2) fail("needs at least 2 frames, got " + std::to_string(T));
  for (int f = 0; f < T; ++f) {
    if (!std::isfinite(frame_times[f])) fail("time[" + std::to_string(f) + "] is not finite");
    if (f > 0 && !(frame_times[f] > frame_times[f - 1]))
      fail("times must increase strictly, but time[" + std::to_string(f) + "] = " +
           std::to_string(frame_times[f]) + " <= time[" + std::to_string(f - 1) + "] = " +
           std::to_string(frame_times[f - 1]));
  }

  if (drive.size() != T)
    fail("drive has " + std::to_string(drive.size()) + " entries, expected one per frame (" +
         std::to_string(T) + ")");
  if (!drive.allFinite()) fail("drive values must be finite");
  if (driving == Driving::Rate) {
    for (int f = 0; f < T; ++f) {
      if (!(drive[f] > 0.0 && drive[f] < 1.0))
        fail("rate-driving target mean must lie inside (0, 1), got " + std::to_string(drive[f]) +
             " at frame " + std::to_string(f));
    }
  }

  if (observed.rows() != T || observed.cols() != n)
    fail("observed is " + std::to_string(observed.rows()) + " x " + std::to_string(observed.cols()) +
         ", expected " + std::to_string(T) + " x " + std::to_string(n));
  if (obs_weight.rows() != T || obs_weight.cols() != n)
    fail("obs_weight is " + std::to_string(obs_weight.rows()) + " x " + std::to_string(obs_weight.cols()) +
         ", expected " + std::to_string(T) + " x " + std::to_string(n));
  for (int f = 0; f < T; ++f) {
    for (int i = 0; i < n; ++i) {
      const double w = obs_weight(f, i);
      if (!(w >= 0.0) || !std::isfinite(w)) fail("obs_weight must be finite and >= 0");
      if (w > 0.0 && !std::isfinite(observed(f, i)))
        fail("observed value at frame " + std::to_string(f) + ", site " + std::to_string(i) +
             " is not finite but has a positive weight");
    }
  }
}

void Movie::drive_weights(double t, int& f, double& s) const {
  const int T = n_frames();
  s = 0.0;
  if (t <= frame_times[0]) {
    f = 0;
  } else if (t >= frame_times[T - 1]) {
    f = T - 1;
  } else {
    const double* begin = frame_times.data();
    f = static_cast<int>(std::upper_bound(begin, begin + T, t) - begin) - 1;  // t in [t_f, t_{f+1})
    s = (t - frame_times[f]) / (frame_times[f + 1] - frame_times[f]);
  }
}

double Movie::drive_at(double t) const {
  int f = 0;
  double s = 0.0;
  drive_weights(t, f, s);
  return s == 0.0 ? drive[f] : (1.0 - s) * drive[f] + s * drive[f + 1];
}

Movie Movie::with_initial_state(const Eigen::VectorXd& c0_new) const {
  Eigen::VectorXd new_drive = drive;
  if (driving == Driving::Rate && c0_new.size() == site_weight.size()) new_drive[0] = site_weight.dot(c0_new) / weight_sum;
  // The constructor validates the new state (size, strictly inside (0, 1)).
  return Movie(name, grid, site_weight, c0_new, frame_times, driving, new_drive, observed, obs_weight);
}

}  // namespace pixelkinetics
