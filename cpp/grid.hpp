#pragma once
/// \file grid.hpp
/// Sites and edges of one particle on the pixel grid (MODEL.md section 1).

#include <Eigen/Core>
#include <cstdint>
#include <vector>

namespace pixelkinetics {

/// The masked pixels of an H x W image, numbered row-major, and the 4-neighbour edges between them.
/// A site at the mask edge simply has fewer neighbours (no-flux boundary).
class Grid {
 public:
  /// \param height, width image shape
  /// \param mask    row-major H*W values, nonzero for particle pixels
  /// \param h       pixel spacing (lengths in pixels when 1)
  /// \param connect false for a population: sites without edges
  Grid(int height, int width, const std::vector<std::uint8_t>& mask, double h = 1.0, bool connect = true);

  int height() const { return height_; }
  int width() const { return width_; }
  int n_sites() const { return static_cast<int>(pixel_.size()); }
  int n_edges() const { return static_cast<int>(edge_i_.size()); }
  double h() const { return h_; }

  /// Row-major pixel index of each site.
  const std::vector<int>& pixel() const { return pixel_; }
  /// Edge e joins sites edge_i()[e] < edge_j()[e].
  const std::vector<int>& edge_i() const { return edge_i_; }
  const std::vector<int>& edge_j() const { return edge_j_; }
  /// Neighbours of site i: nb_index()[nb_start()[i] .. nb_start()[i+1]), in increasing order.
  const std::vector<int>& nb_start() const { return nb_start_; }
  const std::vector<int>& nb_index() const { return nb_index_; }
  int degree(int i) const { return nb_start_[i + 1] - nb_start_[i]; }

  /// (L c)_i = sum_{j in nb(i)} (c_j - c_i) / h^2
  void laplacian(const Eigen::VectorXd& c, Eigen::VectorXd& out) const;

 private:
  int height_, width_;
  double h_;
  std::vector<int> pixel_;
  std::vector<int> edge_i_, edge_j_;
  std::vector<int> nb_start_, nb_index_;
};

}  // namespace pixelkinetics
