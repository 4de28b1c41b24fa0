#pragma once
/// \file kinetics.hpp
/// Butler-Volmer kinetics with a concentration-dependent exchange current (MODEL.md section 3):
///   R = k j0(c) (exp(-alpha eta) - exp((1 - alpha) eta)),   R > 0 inserts lithium
///   ln j0(c) = ln j0_base(c) + sum_{m=0..Mb} b_m P_m(2c - 1)
///   logistic base: ln j0_base = -ln(1 + exp(s (c - c*)))

#include <cmath>

#include "params.hpp"

namespace pixelkinetics {

/// j0 and the derivatives of ln j0 at one concentration.
struct ExchangeCurrent {
  double j0;          ///< j0(c)
  double dlog_j0;     ///< d ln j0 / dc
  double dlog_ds;     ///< d ln j0 / d j0_s (logistic base; 0 otherwise)
  double dlog_dcstar; ///< d ln j0 / d j0_c (logistic base; 0 otherwise)
};

/// `p`, `dp` are scratch of size >= b.size() and return P_m(2c - 1), the derivative of ln j0 in b_m.
/// `exp_b0` is exp(b_0) (1 without b), hoisted out of site loops since P_0 = 1.
ExchangeCurrent exchange_current(const GlobalParams& g, double exp_b0, double c, double* p, double* dp);

/// The Butler-Volmer factor g(eta) = exp(-alpha eta) - exp((1 - alpha) eta) and its derivative (< 0).
struct ButlerVolmer {
  double g;
  double dg;
};

inline ButlerVolmer butler_volmer(double alpha, double eta) {
  const double reduction = std::exp(-alpha * eta);
  const double oxidation = std::exp((1.0 - alpha) * eta);
  return {reduction - oxidation, -alpha * reduction - (1.0 - alpha) * oxidation};
}

}  // namespace pixelkinetics
