#include "local_state.hpp"

#include <cmath>
#include <vector>

#include "kinetics.hpp"
#include "thermodynamics.hpp"

namespace pixelkinetics {

void evaluate_local_state(const Movie& particle, const GlobalParams& g, const Eigen::VectorXd& exp_theta,
                          const Eigen::VectorXd& c, double V, double cbar, LocalState& s, bool with_flux) {
  const Grid& grid = particle.grid;
  const int n = grid.n_sites();
  s.V = V;
  s.cbar = cbar;
  grid.laplacian(c, s.lap_c);
  s.mu.resize(n);
  s.dmu_h.resize(n);
  s.eta.resize(n);
  s.rate_per_k0.resize(n);
  s.R.resize(n);
  s.dR_dc.resize(n);
  s.dR_deta.resize(n);
  if (g.has_base_params()) {
    s.dlog_j0_ds.resize(n);
    s.dlog_j0_dcstar.resize(n);
  }

  std::vector<double> p(g.legendre_scratch()), dp(g.legendre_scratch());
  const double exp_b0 = g.b.empty() ? 1.0 : std::exp(g.b[0]);
  for (int i = 0; i < n; ++i) {
    const HomogeneousPotential hp = homogeneous_potential(g, c[i], p.data(), dp.data());
    const double mu = hp.mu - g.kappa * s.lap_c[i] + g.B * (c[i] - cbar);
    const double eta = mu + V;
    const ExchangeCurrent j0 = exchange_current(g, exp_b0, c[i], p.data(), dp.data());
    const ButlerVolmer bv = butler_volmer(g.alpha, eta);
    const double k_j0 = exp_theta[i] * j0.j0;
    s.mu[i] = mu;
    s.dmu_h[i] = hp.dmu;
    s.eta[i] = eta;
    s.rate_per_k0[i] = k_j0 * bv.g;
    s.R[i] = g.k0 * s.rate_per_k0[i];
    s.dR_dc[i] = s.R[i] * j0.dlog_j0;
    s.dR_deta[i] = g.k0 * k_j0 * bv.dg;
    if (g.has_base_params()) {
      s.dlog_j0_ds[i] = j0.dlog_ds;
      s.dlog_j0_dcstar[i] = j0.dlog_dcstar;
    }
  }

  if (g.D != 0.0 || with_flux) {
    const int n_e = grid.n_edges();
    s.mobility.resize(n_e);
    s.dmobility.resize(n_e);
    for (int e = 0; e < n_e; ++e) {
      const double cm = 0.5 * (c[grid.edge_i()[e]] + c[grid.edge_j()[e]]);
      s.mobility[e] = cm * (1.0 - cm);
      s.dmobility[e] = 0.5 * (1.0 - 2.0 * cm);
    }
    apply_mobility_operator(grid, s, s.mu, s.div);
  } else {
    s.div.setZero(n);
  }
}

void apply_mobility_operator(const Grid& grid, const LocalState& s, const Eigen::VectorXd& x,
                             Eigen::VectorXd& out) {
  const double inv_h2 = 1.0 / (grid.h() * grid.h());
  out.setZero(grid.n_sites());
  for (int e = 0; e < grid.n_edges(); ++e) {
    const int i = grid.edge_i()[e], j = grid.edge_j()[e];
    const double flux = s.mobility[e] * (x[j] - x[i]) * inv_h2;
    out[i] += flux;
    out[j] -= flux;
  }
}

}  // namespace pixelkinetics
