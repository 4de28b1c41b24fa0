#pragma once
/// \file curves.hpp
/// The model's constitutive curves at many points (MODEL.md sections 2-3), evaluated by the same functions
/// the solver calls at every site: what reports, uncertainty bands and the stability analysis of a
/// population draw and differentiate, so that no second implementation exists.

#include <Eigen/Core>

#include "params.hpp"

namespace pixelkinetics {

/// A curve and its derivative at each point.
struct CurvePoints {
  Eigen::VectorXd value;
  Eigen::VectorXd derivative;
};

/// mu_h(c) [kT] and d mu_h / dc. Throws std::invalid_argument for c outside [0, 1].
CurvePoints homogeneous_potential_curve(const GlobalParams& g, const Eigen::VectorXd& c);

/// j0(c) = j0_base(c) exp(sum_m b_m P_m(2c - 1)) (k0 and theta excluded) and d ln j0 / dc.
/// Throws std::invalid_argument for c outside [0, 1].
CurvePoints exchange_current_curve(const GlobalParams& g, const Eigen::VectorXd& c);

/// The reaction rate of a site with theta = 0, R = k0 j0(c) (exp(-alpha eta) - exp((1 - alpha) eta)) [1/s]
/// (> 0 inserts lithium), and dR / d eta, at the pairs (c_i, eta_i) (eta in kT).
CurvePoints reaction_rate_curve(const GlobalParams& g, const Eigen::VectorXd& c, const Eigen::VectorXd& eta);

}  // namespace pixelkinetics
