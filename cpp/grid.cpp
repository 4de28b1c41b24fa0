#include "grid.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace pixelkinetics {

Grid::Grid(int height, int width, const std::vector<std::uint8_t>& mask, double h, bool connect)
    : height_(height), width_(width), h_(h) {
  if (height < 1 || width < 1)
    throw std::invalid_argument("mask shape must be positive, got " + std::to_string(height) + " x " +
                                std::to_string(width));
  if (static_cast<long>(mask.size()) != static_cast<long>(height) * width)
    throw std::invalid_argument("mask has " + std::to_string(mask.size()) + " values, expected " +
                                std::to_string(static_cast<long>(height) * width));
  if (!(h > 0) || !std::isfinite(h))
    throw std::invalid_argument("pixel spacing h must be positive, got " + std::to_string(h));

  std::vector<int> site_of_pixel(mask.size(), -1);
  for (int p = 0; p < static_cast<int>(mask.size()); ++p) {
    if (mask[p]) {
      site_of_pixel[p] = static_cast<int>(pixel_.size());
      pixel_.push_back(p);
    }
  }
  if (pixel_.empty()) throw std::invalid_argument("mask is empty: a particle needs at least one pixel");

  std::vector<std::vector<int>> nbs(pixel_.size());
  if (connect) {
    for (int i = 0; i < n_sites(); ++i) {
      const int r = pixel_[i] / width, c = pixel_[i] % width;
      // Right and down neighbours give each edge once, with i < j (row-major numbering).
      if (c + 1 < width && site_of_pixel[pixel_[i] + 1] >= 0) {
        edge_i_.push_back(i);
        edge_j_.push_back(site_of_pixel[pixel_[i] + 1]);
      }
      if (r + 1 < height && site_of_pixel[pixel_[i] + width] >= 0) {
        edge_i_.push_back(i);
        edge_j_.push_back(site_of_pixel[pixel_[i] + width]);
      }
    }
    for (int e = 0; e < n_edges(); ++e) {
      nbs[edge_i_[e]].push_back(edge_j_[e]);
      nbs[edge_j_[e]].push_back(edge_i_[e]);
    }
  }
  nb_start_.assign(1, 0);
  for (auto& list : nbs) {
    std::sort(list.begin(), list.end());
    nb_index_.insert(nb_index_.end(), list.begin(), list.end());
    nb_start_.push_back(static_cast<int>(nb_index_.size()));
  }
}

void Grid::laplacian(const Eigen::VectorXd& c, Eigen::VectorXd& out) const {
  const double inv_h2 = 1.0 / (h_ * h_);
  out.resize(n_sites());
  for (int i = 0; i < n_sites(); ++i) {
    double s = 0.0;
    for (int k = nb_start_[i]; k < nb_start_[i + 1]; ++k) s += c[nb_index_[k]] - c[i];
    out[i] = s * inv_h2;
  }
}

}  // namespace pixelkinetics
