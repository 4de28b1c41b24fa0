#include "params.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "errors.hpp"

namespace pixelkinetics {

namespace {

std::string format_residual(double residual) {
  std::ostringstream out;
  out.precision(3);
  out << residual;
  return out.str();
}

void require_finite(const char* name, double value) {
  if (!std::isfinite(value)) {
    throw std::invalid_argument(std::string("parameter ") + name + " must be finite, got " +
                                std::to_string(value));
  }
}

}  // namespace

SolverError::SolverError(const std::string& particle, double time, double residual,
                         const std::string& reason)
    : std::runtime_error("particle '" + particle + "': " + reason + " at t = " +
                         std::to_string(time) + " s (residual " + format_residual(residual) + ")"),
      particle_(particle),
      time_(time),
      residual_(residual) {}

J0Base parse_j0_base(const std::string& name) {
  if (name == "one") return J0Base::One;
  if (name == "sqrt") return J0Base::Sqrt;
  if (name == "asym") return J0Base::Asym;
  if (name == "logistic") return J0Base::Logistic;
  throw std::invalid_argument("j0_base must be 'one', 'sqrt', 'asym' or 'logistic', got '" + name + "'");
}

std::string to_string(J0Base base) {
  switch (base) {
    case J0Base::One: return "one";
    case J0Base::Sqrt: return "sqrt";
    case J0Base::Asym: return "asym";
    case J0Base::Logistic: return "logistic";
  }
  return "?";
}

Scheme parse_scheme(const std::string& name) {
  if (name == "be") return Scheme::BackwardEuler;
  if (name == "bdf2") return Scheme::BDF2;
  throw std::invalid_argument("scheme must be 'be' or 'bdf2', got '" + name + "'");
}

std::string to_string(Scheme scheme) {
  return scheme == Scheme::BackwardEuler ? "be" : "bdf2";
}

LinearSolverKind parse_linear_solver(const std::string& name) {
  if (name == "auto") return LinearSolverKind::Auto;
  if (name == "symmetric") return LinearSolverKind::Symmetric;
  if (name == "lu") return LinearSolverKind::LU;
  throw std::invalid_argument("linear_solver must be 'auto', 'symmetric' or 'lu', got '" + name + "'");
}

std::string to_string(LinearSolverKind kind) {
  switch (kind) {
    case LinearSolverKind::Auto: return "auto";
    case LinearSolverKind::Symmetric: return "symmetric";
    case LinearSolverKind::LU: return "lu";
  }
  return "?";
}

std::vector<std::string> GlobalParams::names() const {
  std::vector<std::string> out = {"k0", "alpha", "Omega", "kappa", "B", "D"};
  for (std::size_t m = 0; m < a.size(); ++m) out.push_back("a" + std::to_string(m + 1));
  for (std::size_t m = 0; m < b.size(); ++m) out.push_back("b" + std::to_string(m));
  if (has_base_params()) {
    out.push_back("j0_s");
    out.push_back("j0_c");
  }
  return out;
}

void GlobalParams::validate() const {
  require_finite("k0", k0);
  require_finite("alpha", alpha);
  require_finite("Omega", Omega);
  require_finite("kappa", kappa);
  require_finite("B", B);
  require_finite("D", D);
  for (double v : a) require_finite("a", v);
  for (double v : b) require_finite("b", v);
  require_finite("j0_s", j0_s);
  require_finite("j0_c", j0_c);
  if (k0 < 0) throw std::invalid_argument("parameter k0 must be >= 0, got " + std::to_string(k0));
  if (!(alpha > 0 && alpha < 1))
    throw std::invalid_argument("parameter alpha must lie in (0, 1), got " + std::to_string(alpha));
  if (kappa < 0) throw std::invalid_argument("parameter kappa must be >= 0, got " + std::to_string(kappa));
  if (D < 0) throw std::invalid_argument("parameter D must be >= 0, got " + std::to_string(D));
}

void SolverSettings::validate() const {
  if (n_sub < 1) throw std::invalid_argument("n_sub must be >= 1, got " + std::to_string(n_sub));
  if (!(sigma > 0) || !std::isfinite(sigma))
    throw std::invalid_argument("sigma must be positive and finite, got " + std::to_string(sigma));
  if (!(lam_s >= 0) || !(lam_0 >= 0))
    throw std::invalid_argument("lam_s and lam_0 must be >= 0, got " + std::to_string(lam_s) + " and " +
                                std::to_string(lam_0));
  if (!(newton_tol > 0)) throw std::invalid_argument("newton_tol must be positive");
  if (max_newton < 1) throw std::invalid_argument("max_newton must be >= 1");
  if (max_halvings < 0) throw std::invalid_argument("max_halvings must be >= 0");
  if (!(newton_budget >= 0)) throw std::invalid_argument("newton_budget must be >= 0");
  if (predictor_order < 0 || predictor_order > 2)
    throw std::invalid_argument("predictor_order must be 0, 1 or 2, got " + std::to_string(predictor_order));
}

}  // namespace pixelkinetics
