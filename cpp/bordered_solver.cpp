#include "bordered_solver.hpp"

#include <cmath>

namespace pixelkinetics {

bool BorderedSolver::factorize(const Grid& grid, const GlobalParams& g, const LocalState& s, double diag_time) {
  ++stats_.n_factorizations;
  const bool try_symmetric = kind_ != LinearSolverKind::LU && g.D == 0.0 && s.dR_deta.size() > 0 &&
                             (-s.dR_deta.array() > 0.0).all() && s.dR_deta.allFinite();
  if (try_symmetric) {
    if (factorize_symmetric(grid, g, s, diag_time)) {
      ++stats_.n_symmetric;
      return true;
    }
    ++stats_.n_lu_fallbacks;
  }
  return factorize_lu(grid, g, s, diag_time);
}

bool BorderedSolver::factorize_symmetric(const Grid& grid, const GlobalParams& g, const LocalState& s,
                                         double diag_time) {
  const auto& S = assembler_.symmetric(grid, g, s, diag_time, row_scale_);
  if (!ldlt_analyzed_) {
    ldlt_.analyzePattern(S);
    ldlt_analyzed_ = true;
  }
  ldlt_.factorize(S);
  // LDL^T without pivoting is only trusted on a positive definite S; an indefinite block (the
  // spinodal region at large steps) goes to LU instead.
  symmetric_active_ = ldlt_.info() == Eigen::Success && (ldlt_.vectorD().array() > 0.0).all();
  return symmetric_active_;
}

bool BorderedSolver::factorize_lu(const Grid& grid, const GlobalParams& g, const LocalState& s,
                                  double diag_time) {
  symmetric_active_ = false;
  const auto& A = assembler_.general(grid, g, s, diag_time);
  if (!lu_analyzed_) {
    lu_.analyzePattern(A);
    lu_analyzed_ = true;
  }
  lu_.factorize(A);
  return lu_.info() == Eigen::Success;
}

void BorderedSolver::solve_symmetric_in_place() const {
  ldlt_.matrixL().solveInPlace(permuted_);
  permuted_.array() /= ldlt_.vectorD().array();
  ldlt_.matrixU().solveInPlace(permuted_);
}

void BorderedSolver::solve_block(const Eigen::VectorXd& b, Eigen::VectorXd& x) const {
  if (!symmetric_active_) {
    x = lu_.solve(b);
    return;
  }
  // A^{-1} b = S^{-1} diag(1/r) b, with S stored in the AMD ordering P.
  const auto& P = assembler_.ordering();
  const Eigen::Index n = b.size();
  permuted_.resize(n);
  for (Eigen::Index i = 0; i < n; ++i) permuted_[P[i]] = b[i] / row_scale_[i];
  solve_symmetric_in_place();
  x.resize(n);
  for (Eigen::Index i = 0; i < n; ++i) x[i] = permuted_[P[i]];
}

void BorderedSolver::solve_block_transposed(const Eigen::VectorXd& b, Eigen::VectorXd& x) const {
  if (!symmetric_active_) {
    x = const_cast<decltype(lu_)&>(lu_).transpose().solve(b);  // Eigen's transpose view is non-const
    return;
  }
  // A^{-T} b = diag(1/r) S^{-1} b.
  const auto& P = assembler_.ordering();
  const Eigen::Index n = b.size();
  permuted_.resize(n);
  for (Eigen::Index i = 0; i < n; ++i) permuted_[P[i]] = b[i];
  solve_symmetric_in_place();
  x.resize(n);
  for (Eigen::Index i = 0; i < n; ++i) x[i] = permuted_[P[i]] / row_scale_[i];
}

bool BorderedSolver::Border::prepare(double corner) {
  schur = corner - row.dot(z);
  const double scale = std::abs(corner) + row.cwiseAbs().dot(z.cwiseAbs());
  return std::isfinite(schur) && std::abs(schur) > 1e-14 * scale;
}

bool BorderedSolver::Border::apply(double g, Eigen::VectorXd& x, double& y) const {
  y = (g - row.dot(x)) / schur;
  x -= z * y;
  return x.allFinite() && std::isfinite(y);
}

bool BorderedSolver::set_border(const Eigen::VectorXd& u, const Eigen::VectorXd& w, double corner) {
  solve_block(u, border_.z);
  border_.row = w;
  return border_.prepare(corner);
}

bool BorderedSolver::set_border_transposed(const Eigen::VectorXd& u, const Eigen::VectorXd& w, double corner) {
  // The transpose swaps the roles of the border column and row.
  solve_block_transposed(w, border_t_.z);
  border_t_.row = u;
  return border_t_.prepare(corner);
}

bool BorderedSolver::solve(const Eigen::VectorXd& f, double g, Eigen::VectorXd& x, double& y) const {
  solve_block(f, x);
  return border_.apply(g, x, y);
}

bool BorderedSolver::solve_transposed(const Eigen::VectorXd& f, double g, Eigen::VectorXd& x, double& y) const {
  solve_block_transposed(f, x);
  return border_t_.apply(g, x, y);
}

}  // namespace pixelkinetics
