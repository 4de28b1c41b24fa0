#pragma once
/// \file errors.hpp
/// Exceptions of the core. Bad input throws std::invalid_argument; a time step that cannot be
/// completed throws SolverError.

#include <stdexcept>
#include <string>

namespace pixelkinetics {

/// A time step failed even at the smallest allowed step size.
class SolverError : public std::runtime_error {
 public:
  /// \param particle name of the particle (constraint group) that failed
  /// \param time     simulated time in seconds at which the failing step started
  /// \param residual max-norm of the Newton residual when the last attempt was abandoned
  /// \param reason   what went wrong
  SolverError(const std::string& particle, double time, double residual, const std::string& reason);

  const std::string& particle() const noexcept { return particle_; }
  double time() const noexcept { return time_; }
  double residual() const noexcept { return residual_; }

 private:
  std::string particle_;
  double time_;
  double residual_;
};

}  // namespace pixelkinetics
