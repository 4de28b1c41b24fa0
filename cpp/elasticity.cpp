#include "elasticity.hpp"

#include <Eigen/Cholesky>
#include <Eigen/LU>
#include <Eigen/SparseCore>
#include <cmath>
#include <exception>
#include <stdexcept>
#include <string>

namespace pixelkinetics {

namespace {

using Matrix38 = Eigen::Matrix<double, 3, 8>;
using Matrix48 = Eigen::Matrix<double, 4, 8>;
using Matrix34 = Eigen::Matrix<double, 3, 4>;

// Corners of the reference square in node order (counter-clockwise in x, y).
constexpr double kXi[4] = {-1.0, 1.0, 1.0, -1.0};
constexpr double kEta[4] = {-1.0, -1.0, 1.0, 1.0};

// Strain-displacement matrix [xx, yy, 2xy] of a square element of side h at (xi, eta);
// element unknowns ordered (u_x, u_y) per node.
Matrix38 strain_matrix(double h, double xi, double eta) {
  Matrix38 B = Matrix38::Zero();
  for (int a = 0; a < 4; ++a) {
    const double dx = kXi[a] * (1.0 + kEta[a] * eta) / (2.0 * h);
    const double dy = kEta[a] * (1.0 + kXi[a] * xi) / (2.0 * h);
    B(0, 2 * a) = dx;
    B(1, 2 * a + 1) = dy;
    B(2, 2 * a) = dy;
    B(2, 2 * a + 1) = dx;
  }
  return B;
}

// Strains [xx, yy, 2xy] of the internal (incompatible) modes at (xi, eta), unknowns ordered
// u_x (1 - xi^2), u_x (1 - eta^2), u_y (1 - xi^2), u_y (1 - eta^2). They vanish at the centre.
Matrix34 internal_strain_matrix(double h, double xi, double eta) {
  Matrix34 B = Matrix34::Zero();
  B(0, 0) = -4.0 * xi / h;
  B(2, 1) = -4.0 * eta / h;
  B(2, 2) = -4.0 * xi / h;
  B(1, 3) = -4.0 * eta / h;
  return B;
}

const double kGauss = 1.0 / std::sqrt(3.0);
// The 2 x 2 Gauss points of the reference square.
constexpr double kGaussXi[4] = {-1.0, -1.0, 1.0, 1.0};
constexpr double kGaussEta[4] = {-1.0, 1.0, -1.0, 1.0};

// Tensor strain and rotation [xx, yy, xy, (d u_y/dx - d u_x/dy)/2] at the element centre.
Matrix48 centre_matrix(double h) {
  const Matrix38 B = strain_matrix(h, 0.0, 0.0);
  Matrix48 C = Matrix48::Zero();
  C.row(0) = B.row(0);
  C.row(1) = B.row(1);
  C.row(2) = 0.5 * B.row(2);
  for (int a = 0; a < 4; ++a) {
    C(3, 2 * a) = -0.5 * B(1, 2 * a + 1);  // -d N_a/dy / 2
    C(3, 2 * a + 1) = 0.5 * B(0, 2 * a);   //  d N_a/dx / 2
  }
  return C;
}


}  // namespace

ElasticSolver::ElasticSolver(ElasticMesh mesh, const Eigen::Matrix3d& D) : mesh_(std::move(mesh)), D_(D) {
  if (!D.allFinite() || (D - D.transpose()).cwiseAbs().maxCoeff() > 1e-12 * D.cwiseAbs().maxCoeff())
    throw std::invalid_argument("elastic stiffness D must be a finite symmetric 3x3 matrix");
  Eigen::LLT<Eigen::Matrix3d> check(D);
  if (check.info() != Eigen::Success || D.diagonal().minCoeff() <= 0.0)
    throw std::invalid_argument("elastic stiffness D must be positive definite");

  const double h = mesh_.h();
  const double w = h * h / 4.0;  // Gauss weight times the Jacobian
  Eigen::Matrix<double, 4, 4> k_aa = Eigen::Matrix<double, 4, 4>::Zero();
  k_uu_.setZero();
  k_ua_.setZero();
  for (int q = 0; q < 4; ++q) {
    const Matrix38 B = strain_matrix(h, kGauss * kGaussXi[q], kGauss * kGaussEta[q]);
    const Matrix34 Ba = internal_strain_matrix(h, kGauss * kGaussXi[q], kGauss * kGaussEta[q]);
    b_gauss_[q] << B, Ba;
    k_uu_ += w * B.transpose() * D_ * B;
    k_ua_ += w * B.transpose() * D_ * Ba;
    k_aa += w * Ba.transpose() * D_ * Ba;
  }
  k_aa_inv_ = k_aa.inverse();
  k_condensed_ = k_uu_ - k_ua_ * k_aa_inv_ * k_ua_.transpose();

  std::vector<Eigen::Triplet<double>> entries;
  entries.reserve(static_cast<std::size_t>(mesh_.n_elements()) * 36);
  for (int e = 0; e < mesh_.n_elements(); ++e) {
    int dofs[8];
    for (int a = 0; a < 4; ++a)
      for (int d = 0; d < 2; ++d) dofs[2 * a + d] = mesh_.dof(mesh_.node(e, a), d);
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 8; ++j)
        if (dofs[i] >= 0 && dofs[j] >= 0 && dofs[i] >= dofs[j]) entries.emplace_back(dofs[i], dofs[j], k_condensed_(i, j));
  }
  Eigen::SparseMatrix<double> K(mesh_.n_free(), mesh_.n_free());
  K.setFromTriplets(entries.begin(), entries.end());
  llt_.compute(K);
  if (llt_.info() != Eigen::Success)
    throw std::runtime_error("elastic stiffness matrix could not be factorised (not positive definite)");
}

void ElasticSolver::check_field(const Eigen::MatrixXd& field, int columns, const char* what) const {
  if (field.rows() != mesh_.n_elements() || field.cols() != columns)
    throw std::invalid_argument(std::string(what) + " must be (" + std::to_string(mesh_.n_elements()) + ", " +
                                std::to_string(columns) + "), one row per element; got (" +
                                std::to_string(field.rows()) + ", " + std::to_string(field.cols()) + ")");
  if (!field.allFinite()) throw std::invalid_argument(std::string(what) + " contains non-finite values");
}

ElasticSolver::Element ElasticSolver::gather(const Eigen::VectorXd& free_values, int e) const {
  Element out;
  for (int a = 0; a < 4; ++a)
    for (int d = 0; d < 2; ++d) {
      const int i = mesh_.dof(mesh_.node(e, a), d);
      out(2 * a + d) = i >= 0 ? free_values(i) : 0.0;
    }
  return out;
}

Eigen::Matrix<double, 3, 4> ElasticSolver::gauss_eigenstrain(const Eigen::MatrixXd& eigenstrain, int e) const {
  const double h = mesh_.h();
  // Slope of column j along one axis from the neighbours across sides lo and hi of element e.
  auto slope = [&](int j, int lo, int hi) {
    const int a = mesh_.neighbour(e, lo), b = mesh_.neighbour(e, hi);
    if (a >= 0 && b >= 0) return (eigenstrain(b, j) - eigenstrain(a, j)) / (2.0 * h);
    if (b >= 0) return (eigenstrain(b, j) - eigenstrain(e, j)) / h;
    if (a >= 0) return (eigenstrain(e, j) - eigenstrain(a, j)) / h;
    return 0.0;
  };
  Eigen::Matrix<double, 3, 4> out;
  for (int j = 0; j < 3; ++j) {
    const double sx = slope(j, 0, 1), sy = slope(j, 2, 3);
    for (int q = 0; q < 4; ++q)
      out(j, q) = eigenstrain(e, j) + 0.5 * h * kGauss * (sx * kGaussXi[q] + sy * kGaussEta[q]);
  }
  out.row(2) *= 2.0;  // engineering shear
  return out;
}

ElasticSolver::Gauss12 ElasticSolver::element_load(const Eigen::Matrix<double, 3, 4>& eps0) const {
  const double w = mesh_.h() * mesh_.h() / 4.0;
  Gauss12 f = Gauss12::Zero();
  for (int q = 0; q < 4; ++q) f += w * b_gauss_[q].transpose() * (D_ * eps0.col(q));
  return f;
}

Eigen::VectorXd ElasticSolver::load(const Eigen::MatrixXd& eigenstrain) const {
  Eigen::VectorXd f = Eigen::VectorXd::Zero(mesh_.n_free());
  for (int e = 0; e < mesh_.n_elements(); ++e) {
    const Gauss12 fl = element_load(gauss_eigenstrain(eigenstrain, e));
    const Element fe = fl.head<8>() - k_ua_ * (k_aa_inv_ * fl.tail<4>());  // internal modes condensed out
    for (int a = 0; a < 4; ++a)
      for (int d = 0; d < 2; ++d) {
        const int i = mesh_.dof(mesh_.node(e, a), d);
        if (i >= 0) f(i) += fe(2 * a + d);
      }
  }
  return f;
}

std::vector<Eigen::MatrixXd> ElasticSolver::displacements(const std::vector<Eigen::MatrixXd>& eigenstrains) const {
  Eigen::MatrixXd F(mesh_.n_free(), static_cast<Eigen::Index>(eigenstrains.size()));
  for (std::size_t j = 0; j < eigenstrains.size(); ++j) {
    check_field(eigenstrains[j], 3, "eigenstrain");
    F.col(static_cast<Eigen::Index>(j)) = load(eigenstrains[j]);
  }
  const Eigen::MatrixXd U = llt_.solve(F);
  std::vector<Eigen::MatrixXd> out;
  for (Eigen::Index j = 0; j < U.cols(); ++j) {
    Eigen::MatrixXd u = Eigen::MatrixXd::Zero(mesh_.n_nodes(), 2);
    for (int n = 0; n < mesh_.n_nodes(); ++n)
      for (int d = 0; d < 2; ++d)
        if (mesh_.dof(n, d) >= 0) u(n, d) = U(mesh_.dof(n, d), j);
    out.push_back(std::move(u));
  }
  return out;
}

Eigen::MatrixXd ElasticSolver::strain(const Eigen::MatrixXd& displacement) const {
  if (displacement.rows() != mesh_.n_nodes() || displacement.cols() != 2)
    throw std::invalid_argument("displacement must be (n_nodes, 2)");
  const Matrix48 C = centre_matrix(mesh_.h());
  Eigen::MatrixXd out(mesh_.n_elements(), 4);
  for (int e = 0; e < mesh_.n_elements(); ++e) {
    Element ue;
    for (int a = 0; a < 4; ++a) ue.segment<2>(2 * a) = displacement.row(mesh_.node(e, a)).transpose();
    out.row(e) = (C * ue).transpose();
  }
  return out;
}

std::vector<Eigen::MatrixXd> ElasticSolver::strains(const std::vector<Eigen::MatrixXd>& eigenstrains) const {
  std::vector<Eigen::MatrixXd> out;
  for (const auto& u : displacements(eigenstrains)) out.push_back(strain(u));
  return out;
}

Eigen::Matrix3d ElasticSolver::stiffness_gradient(const Eigen::MatrixXd& eigenstrain,
                                                  const Eigen::MatrixXd& weights) const {
  check_field(eigenstrain, 3, "eigenstrain");
  check_field(weights, 4, "strain weights");
  const double h = mesh_.h();
  const Matrix48 C = centre_matrix(h);

  // L = w . C u with K u = f(D): dL/dD = lambda^T (df/dD - dK/dD u), K lambda = C^T w.
  const Eigen::VectorXd u = llt_.solve(load(eigenstrain));
  Eigen::VectorXd rhs = Eigen::VectorXd::Zero(mesh_.n_free());
  for (int e = 0; e < mesh_.n_elements(); ++e) {
    const Element g = C.transpose() * weights.row(e).transpose();
    for (int a = 0; a < 4; ++a)
      for (int d = 0; d < 2; ++d) {
        const int i = mesh_.dof(mesh_.node(e, a), d);
        if (i >= 0) rhs(i) += g(2 * a + d);
      }
  }
  const Eigen::VectorXd lambda = llt_.solve(rhs);

  // With the internal modes a restored (the loss does not see them: they vanish at the centres),
  // dL/dD = sum over elements and Gauss points of (B~ lambda~) (eps0 - B~ u~)^T.
  const double w = h * h / 4.0;
  Eigen::Matrix3d G = Eigen::Matrix3d::Zero();
  Gauss12 le, ue;
  for (int e = 0; e < mesh_.n_elements(); ++e) {
    const Eigen::Matrix<double, 3, 4> eps0 = gauss_eigenstrain(eigenstrain, e);
    const Internal f_internal = element_load(eps0).tail<4>();
    const Element l = gather(lambda, e), v = gather(u, e);
    le << l, -k_aa_inv_ * (k_ua_.transpose() * l);
    ue << v, k_aa_inv_ * (f_internal - k_ua_.transpose() * v);
    for (int q = 0; q < 4; ++q) G += w * (b_gauss_[q] * le) * (eps0.col(q) - b_gauss_[q] * ue).transpose();
  }
  return G;
}

// -- many particles -----------------------------------------------------------------------------------

namespace {

// Runs work(k) for k < n over the OpenMP threads; the first exception (in index order) is re-thrown
// after all threads have finished.
template <class Work>
void for_each_index(long n, Work&& work) {
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(n));
#pragma omp parallel for schedule(dynamic, 1)
  for (long k = 0; k < n; ++k) {
    try {
      work(static_cast<int>(k));
    } catch (...) {
      errors[static_cast<std::size_t>(k)] = std::current_exception();
    }
  }
  for (const auto& error : errors)
    if (error) std::rethrow_exception(error);
}

}  // namespace

void ElasticBatch::factorize(const Eigen::Matrix3d& D) {
  std::vector<std::unique_ptr<ElasticSolver>> solvers(meshes_.size());
  for_each_index(static_cast<long>(meshes_.size()),
                 [&](int k) { solvers[k] = std::make_unique<ElasticSolver>(meshes_[k], D); });
  solvers_ = std::move(solvers);
}

const ElasticSolver& ElasticBatch::solver(int k) const {
  if (solvers_.empty()) throw std::logic_error("elastic batch: factorize(D) first");
  if (k < 0 || k >= static_cast<int>(solvers_.size())) throw std::out_of_range("elastic batch: no particle " + std::to_string(k));
  return *solvers_[k];
}

std::vector<std::vector<Eigen::MatrixXd>> ElasticBatch::strains(
    const std::vector<std::vector<Eigen::MatrixXd>>& eigenstrains) const {
  if (eigenstrains.size() != meshes_.size())
    throw std::invalid_argument("elastic batch: got eigenstrains for " + std::to_string(eigenstrains.size()) +
                                " particles, have " + std::to_string(meshes_.size()));
  std::vector<std::vector<Eigen::MatrixXd>> out(meshes_.size());
  for_each_index(static_cast<long>(meshes_.size()), [&](int k) { out[k] = solver(k).strains(eigenstrains[k]); });
  return out;
}

Eigen::Matrix3d ElasticBatch::stiffness_gradient(const std::vector<Eigen::MatrixXd>& eigenstrains,
                                                 const std::vector<Eigen::MatrixXd>& weights) const {
  if (eigenstrains.size() != meshes_.size() || weights.size() != meshes_.size())
    throw std::invalid_argument("elastic batch: one eigenstrain and one weight field per particle");
  std::vector<Eigen::Matrix3d> parts(meshes_.size());
  for_each_index(static_cast<long>(meshes_.size()),
                 [&](int k) { parts[k] = solver(k).stiffness_gradient(eigenstrains[k], weights[k]); });
  Eigen::Matrix3d G = Eigen::Matrix3d::Zero();
  for (const auto& p : parts) G += p;
  return G;
}

}  // namespace pixelkinetics
