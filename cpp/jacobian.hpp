#pragma once
/// \file jacobian.hpp
/// Assembly of the site block of the Newton matrix (MODEL.md section 6) into fixed sparse patterns.
///
/// With Mu = d mu / d c = diag(mu_h' + B) - kappa L (the group mean held fixed), the site block is
///   A = diag(a0/dt - dR_c) - diag(R_eta) Mu - D d(div)/dc.
/// For D = 0, A = diag(r) S with r = -R_eta > 0 and the symmetric
///   S = diag((a0/dt - dR_c) / r) + Mu,
/// which a symmetric factorisation handles at a fraction of the cost of LU.

#include <Eigen/OrderingMethods>
#include <Eigen/SparseCore>
#include <vector>

#include "local_state.hpp"

namespace pixelkinetics {

/// A compressed sparse matrix whose pattern is fixed on first assembly. An emitter calls
/// add(row, col, value) in the same order every time; later assemblies only scatter values.
class PatternedMatrix {
 public:
  template <class Emitter>
  const Eigen::SparseMatrix<double>& assemble(int n, const Emitter& emit);
  bool has_pattern() const { return built_; }

 private:
  void build_pattern(int n, const std::vector<Eigen::Triplet<double>>& entries);

  Eigen::SparseMatrix<double> matrix_;
  std::vector<int> slot_;  ///< position in the value array of each emitted entry
  bool built_ = false;
};

/// Builds the site blocks of one particle's Newton matrix; keeps the patterns between calls.
class JacobianAssembler {
 public:
  /// A (any D). `diag_time` is a0/dt of the scheme.
  const Eigen::SparseMatrix<double>& general(const Grid& grid, const GlobalParams& g, const LocalState& s,
                                             double diag_time);
  /// The upper triangle of P S P^T, with S and r of A = diag(r) S, valid only when D = 0 and every
  /// r_i > 0. P is a fill-reducing (AMD) ordering computed once: site i is row ordering()[i]. Assembling
  /// in that order lets the factorisation use the matrix as it is, without a permuted copy.
  const Eigen::SparseMatrix<double>& symmetric(const Grid& grid, const GlobalParams& g, const LocalState& s,
                                               double diag_time, Eigen::VectorXd& row_scale);
  const std::vector<int>& ordering() const { return ordering_; }

 private:
  void compute_ordering(const Grid& grid);

  PatternedMatrix general_, symmetric_;
  std::vector<int> ordering_;
};

template <class Emitter>
const Eigen::SparseMatrix<double>& PatternedMatrix::assemble(int n, const Emitter& emit) {
  if (!built_) {
    std::vector<Eigen::Triplet<double>> entries;
    emit([&](int row, int col, double) { entries.emplace_back(row, col, 0.0); });
    build_pattern(n, entries);
  }
  double* values = matrix_.valuePtr();
  std::fill(values, values + matrix_.nonZeros(), 0.0);
  std::size_t t = 0;
  emit([&](int, int, double value) { values[slot_[t++]] += value; });
  return matrix_;
}

}  // namespace pixelkinetics
