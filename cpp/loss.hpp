#pragma once
/// \file loss.hpp
/// The fitting loss of MODEL.md section 7 for one particle:
///   loss = 1/2 sum_{f>=1} sum_i w_{f,i} ((c_i(t_f) - chat_{f,i}) / sigma)^2
///        + lam_s/2 sum_{(i,j) in edges} (theta_i - theta_j)^2 + lam_0/2 sum_i theta_i^2

#include <Eigen/Core>

#include "movie.hpp"

namespace pixelkinetics {

/// Misfit of frame f at concentration c; when `grad` is given it receives d misfit / d c.
double frame_misfit(const Movie& particle, int frame, const Eigen::VectorXd& c, double sigma,
                    Eigen::VectorXd* grad);

/// Smoothness and size penalty on theta; when `grad` is given the theta gradient is added to it.
double theta_penalty(const Grid& grid, const Eigen::VectorXd& theta, double lam_s, double lam_0,
                     Eigen::VectorXd* grad);

/// Adds the (constant) Hessian of theta_penalty applied to `dtheta` to `out`.
void theta_penalty_product(const Grid& grid, const Eigen::VectorXd& dtheta, double lam_s, double lam_0,
                           Eigen::VectorXd& out);

}  // namespace pixelkinetics
