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

void BorderedSolver::solve_block(const Eigen::VectorXd& b, Eigen::VectorXd& x) const {
  if (symmetric_active_) {
    x = ldlt_.solve((b.array() / row_scale_.array()).matrix());  // A^{-1} = S^{-1} diag(1/r)
  } else {
    x = lu_.solve(b);
  }
}

void BorderedSolver::solve_block_transposed(const Eigen::VectorXd& b, Eigen::VectorXd& x) const {
  if (symmetric_active_) {
    x = (ldlt_.solve(b).array() / row_scale_.array()).matrix();  // A^{-T} = diag(1/r) S^{-1}
  } else {
    x = const_cast<decltype(lu_)&>(lu_).transpose().solve(b);
  }
}

namespace {

// Eliminates the border unknown: x = x0 - z y with x0 = M^{-1} f, z = M^{-1} u_col,
// y = (g - w_row . x0) / (corner - w_row . z).
template <class BlockSolve>
bool schur_solve(const BlockSolve& block_solve, const Eigen::VectorXd& u_col, const Eigen::VectorXd& w_row,
                 double corner, const Eigen::VectorXd& f, double g, Eigen::VectorXd& x, double& y) {
  Eigen::VectorXd z;
  block_solve(u_col, z);
  block_solve(f, x);
  const double schur = corner - w_row.dot(z);
  const double scale = std::abs(corner) + w_row.cwiseAbs().dot(z.cwiseAbs());
  if (!(std::abs(schur) > 1e-14 * scale) || !std::isfinite(schur)) return false;
  y = (g - w_row.dot(x)) / schur;
  x -= z * y;
  return x.allFinite() && std::isfinite(y);
}

}  // namespace

bool BorderedSolver::solve(const Eigen::VectorXd& u, const Eigen::VectorXd& w, double corner,
                           const Eigen::VectorXd& f, double g, Eigen::VectorXd& x, double& y) const {
  return schur_solve([this](const Eigen::VectorXd& b, Eigen::VectorXd& out) { solve_block(b, out); }, u, w,
                     corner, f, g, x, y);
}

bool BorderedSolver::solve_transposed(const Eigen::VectorXd& u, const Eigen::VectorXd& w, double corner,
                                      const Eigen::VectorXd& f, double g, Eigen::VectorXd& x, double& y) const {
  // The transpose swaps the roles of the border column and row.
  return schur_solve(
      [this](const Eigen::VectorXd& b, Eigen::VectorXd& out) { solve_block_transposed(b, out); }, w, u, corner,
      f, g, x, y);
}

}  // namespace pixelkinetics
