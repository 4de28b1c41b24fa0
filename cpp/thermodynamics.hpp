#pragma once
/// \file thermodynamics.hpp
/// Homogeneous chemical potential (MODEL.md section 2), energies in units of kT:
///   mu_h(c) = ln(c / (1 - c)) + Omega (1 - 2c) + sum_{m=1..Ma} a_m P_m(2c - 1)

#include "params.hpp"

namespace pixelkinetics {

/// Value and c-derivative of mu_h at one concentration.
struct HomogeneousPotential {
  double mu;   ///< mu_h(c)
  double dmu;  ///< d mu_h / dc
};

/// mu_h(c) and its derivative; c must lie in (0, 1). `p` and `dp` are scratch of size >= a.size() + 1
/// and return P_m(2c - 1) and P_m' for the parameter derivatives d mu_h / d a_m = P_m(2c - 1).
HomogeneousPotential homogeneous_potential(const GlobalParams& g, double c, double* p, double* dp);

}  // namespace pixelkinetics
