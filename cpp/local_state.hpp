#pragma once
/// \file local_state.hpp
/// The chemical potential, reaction rate and Cahn-Hilliard flux of one particle at one state
/// (MODEL.md sections 2-4), with the derivatives the Newton matrix and the adjoint need.

#include <Eigen/Core>

#include "params.hpp"
#include "movie.hpp"

namespace pixelkinetics {

/// Site fields at one state (c, V, cbar).
///   mu_i  = mu_h(c_i) - kappa (L c)_i + B (c_i - cbar)
///   eta_i = mu_i + V
///   R_i   = k0 exp(theta_i) j0(c_i) g(eta_i)
///   div_i = sum_{j in nb(i)} m((c_i + c_j)/2) (mu_j - mu_i) / h^2
struct LocalState {
  double V = 0.0;     ///< electrode potential of the group
  double cbar = 0.0;  ///< group mean entering the coherency term
  Eigen::VectorXd lap_c;       ///< (L c)_i
  Eigen::VectorXd mu;          ///< chemical potential
  Eigen::VectorXd dmu_h;       ///< mu_h'(c_i)
  Eigen::VectorXd eta;         ///< overpotential
  Eigen::VectorXd rate_per_k0; ///< exp(theta_i) j0(c_i) g(eta_i) = dR_i / dk0
  Eigen::VectorXd R;           ///< reaction rate, > 0 inserts lithium
  Eigen::VectorXd dR_dc;       ///< partial dR_i/dc_i through j0 alone: R_i (ln j0)'(c_i)
  Eigen::VectorXd dlog_j0_ds;  ///< d ln j0(c_i) / d j0_s (sized only for a logistic base)
  Eigen::VectorXd dlog_j0_dcstar;  ///< d ln j0(c_i) / d j0_c (sized only for a logistic base)
  Eigen::VectorXd dR_deta;     ///< dR_i/deta_i (< 0 whenever k0 > 0)
  Eigen::VectorXd div;         ///< Cahn-Hilliard divergence without the factor D
  Eigen::VectorXd mobility;    ///< per edge: m((c_i + c_j)/2)
  Eigen::VectorXd dmobility;   ///< per edge: m'((c_i + c_j)/2) / 2, the derivative in c_i or c_j
};

/// Fills `s` at the state (c, V, cbar); `exp_theta` holds exp(theta_i). Reuses the storage of `s`.
/// The flux fields are evaluated when D != 0 or `with_flux` (the gradient in D needs them at D = 0).
void evaluate_local_state(const Movie& particle, const GlobalParams& g, const Eigen::VectorXd& exp_theta,
                          const Eigen::VectorXd& c, double V, double cbar, LocalState& s, bool with_flux = false);

/// out_i = sum_{j in nb(i)} M_ij (x_j - x_i) / h^2 with the edge mobilities of `s`: the (symmetric)
/// Cahn-Hilliard operator K applied to x, so that div = K mu.
void apply_mobility_operator(const Grid& grid, const LocalState& s, const Eigen::VectorXd& x,
                             Eigen::VectorXd& out);

}  // namespace pixelkinetics
