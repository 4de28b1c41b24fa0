#include "jacobian.hpp"

#include <algorithm>
#include <stdexcept>

namespace pixelkinetics {

void PatternedMatrix::build_pattern(int n, const std::vector<Eigen::Triplet<double>>& entries) {
  matrix_.resize(n, n);
  matrix_.setFromTriplets(entries.begin(), entries.end());  // zero values keep their structural slot
  matrix_.makeCompressed();
  const int* outer = matrix_.outerIndexPtr();
  const int* inner = matrix_.innerIndexPtr();
  slot_.resize(entries.size());
  for (std::size_t t = 0; t < entries.size(); ++t) {
    const int col = entries[t].col(), row = entries[t].row();
    const int* pos = std::lower_bound(inner + outer[col], inner + outer[col + 1], row);
    slot_[t] = static_cast<int>(pos - inner);
  }
  built_ = true;
}

const Eigen::SparseMatrix<double>& JacobianAssembler::general(const Grid& grid, const GlobalParams& g,
                                                              const LocalState& s, double diag_time) {
  const double inv_h2 = 1.0 / (grid.h() * grid.h());
  const double off = -g.kappa * inv_h2;  // Mu_ij for neighbours
  const auto& start = grid.nb_start();
  const auto& nb = grid.nb_index();
  auto mu_diag = [&](int i) { return s.dmu_h[i] + g.B + g.kappa * grid.degree(i) * inv_h2; };

  return general_.assemble(grid.n_sites(), [&](auto&& add) {
    for (int i = 0; i < grid.n_sites(); ++i) {
      add(i, i, diag_time - s.dR_dc[i] - s.dR_deta[i] * mu_diag(i));
      for (int k = start[i]; k < start[i + 1]; ++k) add(i, nb[k], -s.dR_deta[i] * off);
    }
    if (g.D == 0.0) return;
    // Edge flux phi = M_e (mu_j - mu_i) / h^2 enters F_i as -D phi and F_j as +D phi.
    for (int e = 0; e < grid.n_edges(); ++e) {
      const int i = grid.edge_i()[e], j = grid.edge_j()[e];
      const double M = s.mobility[e] * inv_h2;
      auto add_pair = [&](int col, double dphi) {
        add(i, col, -g.D * dphi);
        add(j, col, g.D * dphi);
      };
      add_pair(j, M * mu_diag(j));
      for (int k = start[j]; k < start[j + 1]; ++k) add_pair(nb[k], M * off);
      add_pair(i, -M * mu_diag(i));
      for (int k = start[i]; k < start[i + 1]; ++k) add_pair(nb[k], -M * off);
      const double dmob = s.dmobility[e] * (s.mu[j] - s.mu[i]) * inv_h2;  // through M_e(c_i, c_j)
      add_pair(i, dmob);
      add_pair(j, dmob);
    }
  });
}

void JacobianAssembler::compute_ordering(const Grid& grid) {
  std::vector<Eigen::Triplet<double>> entries;
  for (int i = 0; i < grid.n_sites(); ++i) {
    entries.emplace_back(i, i, 1.0);
    for (int k = grid.nb_start()[i]; k < grid.nb_start()[i + 1]; ++k) entries.emplace_back(i, grid.nb_index()[k], 1.0);
  }
  Eigen::SparseMatrix<double> pattern(grid.n_sites(), grid.n_sites());
  pattern.setFromTriplets(entries.begin(), entries.end());
  Eigen::PermutationMatrix<Eigen::Dynamic, Eigen::Dynamic, int> inverse;
  Eigen::AMDOrdering<int>()(pattern, inverse);
  const Eigen::PermutationMatrix<Eigen::Dynamic, Eigen::Dynamic, int> forward = inverse.inverse();  // b_permuted = P b
  ordering_.assign(forward.indices().data(), forward.indices().data() + grid.n_sites());
}

const Eigen::SparseMatrix<double>& JacobianAssembler::symmetric(const Grid& grid, const GlobalParams& g,
                                                                const LocalState& s, double diag_time,
                                                                Eigen::VectorXd& row_scale) {
  if (ordering_.empty()) compute_ordering(grid);
  const double inv_h2 = 1.0 / (grid.h() * grid.h());
  const double off = -g.kappa * inv_h2;
  row_scale = -s.dR_deta;
  const auto& start = grid.nb_start();
  const auto& nb = grid.nb_index();
  const auto& P = ordering_;
  return symmetric_.assemble(grid.n_sites(), [&](auto&& add) {
    for (int i = 0; i < grid.n_sites(); ++i) {
      const double mu_diag = s.dmu_h[i] + g.B + g.kappa * grid.degree(i) * inv_h2;
      add(P[i], P[i], (diag_time - s.dR_dc[i]) / row_scale[i] + mu_diag);
      for (int k = start[i]; k < start[i + 1]; ++k) {
        if (P[i] < P[nb[k]]) add(P[i], P[nb[k]], off);  // upper triangle only
      }
    }
  });
}

}  // namespace pixelkinetics
