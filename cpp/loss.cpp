#include "loss.hpp"

namespace pixelkinetics {

double frame_misfit(const Movie& particle, int frame, const Eigen::VectorXd& c, double sigma,
                    Eigen::VectorXd* grad) {
  const double inv_s2 = 1.0 / (sigma * sigma);
  if (grad) grad->setZero(c.size());
  double misfit = 0.0;
  for (Eigen::Index i = 0; i < c.size(); ++i) {
    const double w = particle.obs_weight(frame, i);
    if (w == 0.0) continue;  // missing pixel; its observed value may be NaN
    const double r = c[i] - particle.observed(frame, i);
    misfit += 0.5 * w * r * r * inv_s2;
    if (grad) (*grad)[i] = w * r * inv_s2;
  }
  return misfit;
}

double theta_penalty(const Grid& grid, const Eigen::VectorXd& theta, double lam_s, double lam_0,
                     Eigen::VectorXd* grad) {
  double penalty = 0.5 * lam_0 * theta.squaredNorm();
  if (grad) *grad += lam_0 * theta;
  for (int e = 0; e < grid.n_edges(); ++e) {
    const int i = grid.edge_i()[e], j = grid.edge_j()[e];
    const double d = theta[i] - theta[j];
    penalty += 0.5 * lam_s * d * d;
    if (grad) {
      (*grad)[i] += lam_s * d;
      (*grad)[j] -= lam_s * d;
    }
  }
  return penalty;
}

void theta_penalty_product(const Grid& grid, const Eigen::VectorXd& dtheta, double lam_s, double lam_0,
                           Eigen::VectorXd& out) {
  // The penalty is quadratic: its gradient at dtheta is the product.
  theta_penalty(grid, dtheta, lam_s, lam_0, &out);
}

}  // namespace pixelkinetics
