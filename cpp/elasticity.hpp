#pragma once
/// \file elasticity.hpp
/// 2-D linear elasticity with an eigenstrain on an ElasticMesh (plane stress, traction-free edges):
/// find u with  div sigma = 0,  sigma = D (eps(u) - eps0),  sigma n = 0 on the particle edge.

#include <Eigen/Core>
#include <Eigen/SparseCholesky>
#include <memory>
#include <vector>

#include "elastic_mesh.hpp"

namespace pixelkinetics {

/// One particle's stiffness matrix, factorised once (sparse Cholesky) for every load.
///
/// D is the 3x3 plane-stress stiffness in Voigt form, stresses [xx, yy, xy] from strains
/// [xx, yy, 2 xy] (engineering shear); any symmetric positive definite D (an orthotropic crystal at any
/// angle) is accepted. Eigenstrains and strains are tensors: columns (xx, yy, xy) per element, and the
/// strain output adds the rotation (d u_y/dx - d u_x/dy) / 2, at element centres.
///
/// An eigenstrain is given by its values at the pixel centres and taken as linear across each pixel, its
/// slopes from the neighbouring pixels (central differences, one-sided at the particle edge). The
/// elements are bilinear with Wilson's incompatible modes (1 - xi^2, 1 - eta^2, condensed per element):
/// they hold every quadratic displacement, so a compatible (linear) eigenstrain is met exactly, stress
/// free, and bending does not lock. Strains at the centres converge at second order in the pixel size.
class ElasticSolver {
 public:
  ElasticSolver(ElasticMesh mesh, const Eigen::Matrix3d& D);

  const ElasticMesh& mesh() const { return mesh_; }
  const Eigen::Matrix3d& stiffness() const { return D_; }

  /// Nodal displacements (n_nodes x 2; pinned components 0) for each eigenstrain field (n_elements x 3);
  /// all loads go through the factorisation together.
  std::vector<Eigen::MatrixXd> displacements(const std::vector<Eigen::MatrixXd>& eigenstrains) const;
  /// Strain at the element centres (n_elements x 4: xx, yy, xy, rotation) of a displacement field.
  Eigen::MatrixXd strain(const Eigen::MatrixXd& displacement) const;
  /// Both steps for each eigenstrain field.
  std::vector<Eigen::MatrixXd> strains(const std::vector<Eigen::MatrixXd>& eigenstrains) const;

  /// d/dD of sum(weights .* strain(u(eigenstrain))) (weights n_elements x 4) by one adjoint solve with the
  /// same factorisation (the stiffness matrix is symmetric). Entry (i, j) treats D(i, j) as independent
  /// of D(j, i): a symmetric parameter gets G(i, j) + G(j, i).
  Eigen::Matrix3d stiffness_gradient(const Eigen::MatrixXd& eigenstrain, const Eigen::MatrixXd& weights) const;

 private:
  using Element = Eigen::Matrix<double, 8, 1>;
  using Internal = Eigen::Matrix<double, 4, 1>;
  using Gauss12 = Eigen::Matrix<double, 12, 1>;  // nodal then internal unknowns of one element
  Element gather(const Eigen::VectorXd& free_values, int e) const;
  /// Voigt eigenstrain of element e at its four Gauss points (columns).
  Eigen::Matrix<double, 3, 4> gauss_eigenstrain(const Eigen::MatrixXd& eigenstrain, int e) const;
  /// Element load (nodal, then internal) of a Voigt eigenstrain at the Gauss points.
  Gauss12 element_load(const Eigen::Matrix<double, 3, 4>& eps0) const;
  /// The condensed load vector on the free unknowns.
  Eigen::VectorXd load(const Eigen::MatrixXd& eigenstrain) const;
  void check_field(const Eigen::MatrixXd& field, int columns, const char* what) const;

  ElasticMesh mesh_;
  Eigen::Matrix3d D_;
  // Every pixel is the same square element: its blocks over nodal (u) and internal (a) unknowns.
  Eigen::Matrix<double, 8, 8> k_uu_, k_condensed_;
  Eigen::Matrix<double, 8, 4> k_ua_;
  Eigen::Matrix<double, 4, 4> k_aa_inv_;
  // Strains [xx, yy, 2xy] of the nodal and internal unknowns at the 2 x 2 Gauss points.
  Eigen::Matrix<double, 3, 12> b_gauss_[4];
  // The mesh numbers the unknowns in nested-dissection order already.
  Eigen::SimplicialLLT<Eigen::SparseMatrix<double>, Eigen::Lower, Eigen::NaturalOrdering<int>> llt_;
};

/// Many particles sharing one stiffness, factorised and solved in parallel over OpenMP threads.
class ElasticBatch {
 public:
  explicit ElasticBatch(std::vector<ElasticMesh> meshes) : meshes_(std::move(meshes)) {}
  const std::vector<ElasticMesh>& meshes() const { return meshes_; }

  /// Assembles and factorises every particle's stiffness matrix for D.
  void factorize(const Eigen::Matrix3d& D);
  bool factorized() const { return !solvers_.empty(); }
  const ElasticSolver& solver(int k) const;

  /// strains[k][j]: particle k's strain under its eigenstrain field eigenstrains[k][j].
  std::vector<std::vector<Eigen::MatrixXd>> strains(
      const std::vector<std::vector<Eigen::MatrixXd>>& eigenstrains) const;
  /// Sum over particles of ElasticSolver::stiffness_gradient.
  Eigen::Matrix3d stiffness_gradient(const std::vector<Eigen::MatrixXd>& eigenstrains,
                                     const std::vector<Eigen::MatrixXd>& weights) const;

 private:
  std::vector<ElasticMesh> meshes_;
  std::vector<std::unique_ptr<ElasticSolver>> solvers_;
};

}  // namespace pixelkinetics
