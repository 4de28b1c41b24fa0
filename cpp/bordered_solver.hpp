#pragma once
/// \file bordered_solver.hpp
/// Factorisation of the site block A of the Newton matrix and solves with the bordered system
///   [ A    u      ] [x]   [f]
///   [ w^T  corner ] [y] = [g]
/// by a Schur complement on the single border unknown (V under rate driving, the group mean under
/// potential driving). The transposed system serves the adjoint.

#include <Eigen/SparseCholesky>
#include <Eigen/SparseLU>

#include "jacobian.hpp"

namespace pixelkinetics {

/// Counts of the linear algebra, reported with the solver statistics.
struct LinearSolveStats {
  long n_factorizations = 0;  ///< numeric factorisations of the site block
  long n_symmetric = 0;       ///< of which symmetric LDLT
  long n_lu_fallbacks = 0;    ///< symmetric attempts that fell back to LU (indefinite or singular block)
};

class BorderedSolver {
 public:
  explicit BorderedSolver(LinearSolverKind kind) : kind_(kind) {}
  /// A solver for another matrix of the same particle: it starts from the sparsity patterns and the
  /// fill-reducing ordering of `pattern`, so only the (cheap) symbolic analysis is repeated.
  BorderedSolver(LinearSolverKind kind, const JacobianAssembler& pattern) : kind_(kind), assembler_(pattern) {}
  const JacobianAssembler& assembler() const { return assembler_; }

  /// Assembles and factorises the site block at state `s`. Returns false when it is singular.
  bool factorize(const Grid& grid, const GlobalParams& g, const LocalState& s, double diag_time);

  /// Eliminates the border of the forward system [A u; w^T corner] after a factorisation: z = A^{-1} u
  /// and the Schur complement corner - w.z are kept for every later solve(). False if it vanishes.
  bool set_border(const Eigen::VectorXd& u, const Eigen::VectorXd& w, double corner);
  /// The same for the transposed system [A^T w; u^T corner].
  bool set_border_transposed(const Eigen::VectorXd& u, const Eigen::VectorXd& w, double corner);

  /// Solves [A u; w^T corner][x; y] = [f; g] with the current factorisation and border: one block solve.
  bool solve(const Eigen::VectorXd& f, double g, Eigen::VectorXd& x, double& y) const;
  /// Solves [A^T w; u^T corner][x; y] = [f; g].
  bool solve_transposed(const Eigen::VectorXd& f, double g, Eigen::VectorXd& x, double& y) const;

  const LinearSolveStats& stats() const { return stats_; }

 private:
  bool factorize_symmetric(const Grid& grid, const GlobalParams& g, const LocalState& s, double diag_time);
  bool factorize_lu(const Grid& grid, const GlobalParams& g, const LocalState& s, double diag_time);
  void solve_block(const Eigen::VectorXd& b, Eigen::VectorXd& x) const;
  void solve_block_transposed(const Eigen::VectorXd& b, Eigen::VectorXd& x) const;
  void solve_symmetric_in_place() const;  // permuted_ <- S^{-1} permuted_ (in the AMD ordering)

  LinearSolverKind kind_;
  JacobianAssembler assembler_;
  bool symmetric_active_ = false;
  Eigen::VectorXd row_scale_;
  Eigen::SimplicialLDLT<Eigen::SparseMatrix<double>, Eigen::Upper, Eigen::NaturalOrdering<int>> ldlt_;
  mutable Eigen::VectorXd permuted_;  // scratch of the symmetric solves
  bool ldlt_analyzed_ = false;
  Eigen::SparseLU<Eigen::SparseMatrix<double>, Eigen::COLAMDOrdering<int>> lu_;
  bool lu_analyzed_ = false;
  LinearSolveStats stats_;

  // Border elimination: x = A^{-1} f - z y, y = (g - row . A^{-1} f) / schur.
  struct Border {
    Eigen::VectorXd z, row;
    double schur = 0.0;
    /// With z = (block)^{-1} column and `row` set: the Schur complement; false if it vanishes.
    bool prepare(double corner);
    /// Turns x = (block)^{-1} f into the bordered solution (x, y).
    bool apply(double g, Eigen::VectorXd& x, double& y) const;
  };
  Border border_, border_t_;
};

}  // namespace pixelkinetics
