#include "curves.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "kinetics.hpp"
#include "thermodynamics.hpp"

namespace pixelkinetics {

namespace {

void require_fractions(const Eigen::VectorXd& c) {
  for (Eigen::Index i = 0; i < c.size(); ++i) {
    if (!(c[i] >= 0.0 && c[i] <= 1.0))
      throw std::invalid_argument("concentration c[" + std::to_string(i) + "] = " + std::to_string(c[i]) +
                                  " lies outside [0, 1]");
  }
}

}  // namespace

CurvePoints homogeneous_potential_curve(const GlobalParams& g, const Eigen::VectorXd& c) {
  require_fractions(c);
  std::vector<double> p(g.legendre_scratch()), dp(g.legendre_scratch());
  CurvePoints out{Eigen::VectorXd(c.size()), Eigen::VectorXd(c.size())};
  for (Eigen::Index i = 0; i < c.size(); ++i) {
    const HomogeneousPotential hp = homogeneous_potential(g, c[i], p.data(), dp.data());
    out.value[i] = hp.mu;
    out.derivative[i] = hp.dmu;
  }
  return out;
}

CurvePoints exchange_current_curve(const GlobalParams& g, const Eigen::VectorXd& c) {
  require_fractions(c);
  std::vector<double> p(g.legendre_scratch()), dp(g.legendre_scratch());
  const double exp_b0 = g.b.empty() ? 1.0 : std::exp(g.b[0]);
  CurvePoints out{Eigen::VectorXd(c.size()), Eigen::VectorXd(c.size())};
  for (Eigen::Index i = 0; i < c.size(); ++i) {
    const ExchangeCurrent j0 = exchange_current(g, exp_b0, c[i], p.data(), dp.data());
    out.value[i] = j0.j0;
    out.derivative[i] = j0.dlog_j0;
  }
  return out;
}

CurvePoints reaction_rate_curve(const GlobalParams& g, const Eigen::VectorXd& c, const Eigen::VectorXd& eta) {
  if (c.size() != eta.size())
    throw std::invalid_argument("reaction rate: " + std::to_string(c.size()) + " concentrations but " +
                                std::to_string(eta.size()) + " overpotentials");
  CurvePoints out = exchange_current_curve(g, c);
  for (Eigen::Index i = 0; i < c.size(); ++i) {
    const ButlerVolmer bv = butler_volmer(g.alpha, eta[i]);
    const double k_j0 = g.k0 * out.value[i];
    out.value[i] = k_j0 * bv.g;
    out.derivative[i] = k_j0 * bv.dg;
  }
  return out;
}

}  // namespace pixelkinetics
