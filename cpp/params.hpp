#pragma once
/// \file params.hpp
/// The global model parameters (MODEL.md sections 2-4) and the numerical settings.

#include <algorithm>
#include <string>
#include <vector>

namespace pixelkinetics {

/// Concentration dependence of the exchange-current prefactor, j0_base(c) in MODEL.md section 3.
enum class J0Base {
  One,   ///< j0_base = 1
  Sqrt,  ///< j0_base = sqrt(c (1 - c))
  Asym,  ///< j0_base = (1 - c) sqrt(c (1 - c))
  /// j0_base = 1 / (1 + exp(s (c - c*))), with s = j0_s and c* = j0_c learned globals: an exchange current
  /// that switches off across c* (layered oxides); s > 0 falls with lithium content
  Logistic
};

/// Implicit time integrator (MODEL.md section 6).
enum class Scheme { BackwardEuler, BDF2 };

/// How the site block of the Newton matrix is factorised.
enum class LinearSolverKind {
  Auto,       ///< symmetric LDLT of the row-scaled block when D = 0, sparse LU otherwise
  Symmetric,  ///< always try the symmetric LDLT first (only possible when D = 0), LU as fallback
  LU          ///< always the general sparse LU
};

J0Base parse_j0_base(const std::string& name);
std::string to_string(J0Base base);
Scheme parse_scheme(const std::string& name);
std::string to_string(Scheme scheme);
LinearSolverKind parse_linear_solver(const std::string& name);
std::string to_string(LinearSolverKind kind);

/// Global parameters shared by all particles. Energies in units of kT, k0 in 1/s, lengths in pixels.
struct GlobalParams {
  double k0 = 1e-2;      ///< rate prefactor k0 [1/s]
  double alpha = 0.5;    ///< charge-transfer symmetry coefficient, in (0, 1)
  double Omega = 4.5;    ///< regular-solution interaction parameter [kT]
  double kappa = 2.0;    ///< gradient-energy coefficient [kT pixel^2]
  double B = 1.0;        ///< coherency-strain coefficient [kT]
  double D = 0.0;        ///< Cahn-Hilliard mobility prefactor [pixel^2/s]
  std::vector<double> a;  ///< Legendre corrections a_1..a_Ma of mu_h
  std::vector<double> b;  ///< Legendre coefficients b_0..b_Mb of ln j0
  J0Base j0_base = J0Base::Sqrt;
  double j0_s = 10.0;    ///< steepness s of the logistic j0 base (used when j0_base is Logistic)
  double j0_c = 0.5;     ///< centre c* of the logistic j0 base (used when j0_base is Logistic)

  /// Whether the j0 base has its own parameters (j0_s, j0_c), which then close the gradient.
  bool has_base_params() const { return j0_base == J0Base::Logistic; }
  /// Position of j0_s in the gradient (j0_c follows); meaningful when has_base_params().
  int base_first() const { return 6 + static_cast<int>(a.size() + b.size()); }
  /// Number of entries of the global gradient: k0, alpha, Omega, kappa, B, D, a_1.., b_0.. (, j0_s, j0_c)
  int n_globals() const { return base_first() + (has_base_params() ? 2 : 0); }
  /// Size of the Legendre scratch arrays that mu_h and j0 need for these coefficients.
  std::size_t legendre_scratch() const { return std::max(a.size() + 1, b.size()) + 1; }
  /// Names of the gradient entries, in gradient order.
  std::vector<std::string> names() const;
  /// Throws std::invalid_argument naming the offending parameter.
  void validate() const;
};

/// Position of each parameter in the global gradient vector.
namespace gidx {
constexpr int k0 = 0, alpha = 1, Omega = 2, kappa = 3, B = 4, D = 5, a_first = 6;
}

/// Numerical settings of one solve.
struct SolverSettings {
  Scheme scheme = Scheme::BackwardEuler;
  int n_sub = 20;                ///< equal steps per frame interval
  double sigma = 0.02;           ///< observation noise level of the loss
  double lam_s = 0.0;            ///< smoothness penalty on theta (per edge)
  double lam_0 = 0.0;            ///< size penalty on theta
  LinearSolverKind linear_solver = LinearSolverKind::Auto;
  double newton_tol = 1e-12;     ///< converged when max(|F| dt / a0, |E|) (a concentration) is below this
                                 ///< (or below the rounding error of the rate terms)
  int max_newton = 20;           ///< Newton iterations before the step is halved
  int max_halvings = 12;         ///< halvings of one planned step before SolverError
  int predictor_order = 2;       ///< polynomial order of the extrapolated Newton start (0: previous state)
  bool reuse_jacobian = true;    ///< chord Newton: refactorise only when the residual falls by less than 10x
  bool fit_initial = false;      ///< the initial state is a parameter: frame 0 enters the loss too
  /// Work limit: a solve that needs more than newton_budget Newton iterations per planned step (on
  /// average) throws SolverError instead of halving on; 0 means no limit. Fits use it to give up quickly
  /// on a trial point whose dynamics are much stiffer than the data (the line search then backtracks).
  double newton_budget = 0.0;

  /// The first frame in the loss (MODEL.md section 7): 0 when the initial state is fitted, else 1 (frame 0
  /// then only sets the initial state). Every count of observations follows this rule.
  int first_fitted_frame() const { return fit_initial ? 0 : 1; }

  void validate() const;
};

}  // namespace pixelkinetics
