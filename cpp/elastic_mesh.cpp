#include "elastic_mesh.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace pixelkinetics {

ElasticMesh::ElasticMesh(int height, int width, const std::vector<std::uint8_t>& mask, double h)
    : height_(height), width_(width), h_(h) {
  if (height <= 0 || width <= 0 || static_cast<long long>(mask.size()) != static_cast<long long>(height) * width)
    throw std::invalid_argument("elastic mesh: mask must hold height * width values");
  if (!(h > 0.0) || !std::isfinite(h)) throw std::invalid_argument("elastic mesh: pixel size must be positive");

  // Elements and their 4-connected components (flood fill over the mask).
  std::vector<int> element_of(mask.size(), -1);
  for (int p = 0; p < height * width; ++p)
    if (mask[p]) {
      element_of[p] = static_cast<int>(pixel_.size());
      pixel_.push_back(p);
    }
  if (pixel_.empty()) throw std::invalid_argument("elastic mesh: the mask is empty");
  component_.assign(pixel_.size(), -1);
  std::vector<int> stack;
  for (int seed = 0; seed < n_elements(); ++seed) {
    if (component_[seed] >= 0) continue;
    component_[seed] = n_components_;
    stack.push_back(seed);
    while (!stack.empty()) {
      const int e = stack.back();
      stack.pop_back();
      const int r = pixel_[e] / width, c = pixel_[e] % width;
      const int nr[4] = {r - 1, r + 1, r, r};
      const int nc[4] = {c, c, c - 1, c + 1};
      for (int k = 0; k < 4; ++k) {
        if (nr[k] < 0 || nr[k] >= height || nc[k] < 0 || nc[k] >= width) continue;
        const int f = element_of[nr[k] * width + nc[k]];
        if (f >= 0 && component_[f] < 0) {
          component_[f] = n_components_;
          stack.push_back(f);
        }
      }
    }
    ++n_components_;
  }

  neighbour_.assign(4 * pixel_.size(), -1);
  for (int e = 0; e < n_elements(); ++e) {
    const int r = pixel_[e] / width, c = pixel_[e] % width;
    if (c > 0) neighbour_[4 * e + 0] = element_of[r * width + c - 1];
    if (c + 1 < width) neighbour_[4 * e + 1] = element_of[r * width + c + 1];
    if (r > 0) neighbour_[4 * e + 2] = element_of[(r - 1) * width + c];
    if (r + 1 < height) neighbour_[4 * e + 3] = element_of[(r + 1) * width + c];
  }

  // Nodes: one per (component, pixel corner).
  const long long corners = static_cast<long long>(height + 1) * (width + 1);
  std::unordered_map<long long, int> node_of;
  node_of.reserve(2 * pixel_.size());
  element_nodes_.resize(4 * pixel_.size());
  for (int e = 0; e < n_elements(); ++e) {
    const int r = pixel_[e] / width, c = pixel_[e] % width;
    const int cx[4] = {c, c + 1, c + 1, c};
    const int cy[4] = {r, r, r + 1, r + 1};
    for (int a = 0; a < 4; ++a) {
      const long long key = component_[e] * corners + static_cast<long long>(cy[a]) * (width + 1) + cx[a];
      auto it = node_of.find(key);
      if (it == node_of.end()) {
        it = node_of.emplace(key, n_nodes()).first;
        node_x_.push_back(cx[a]);
        node_y_.push_back(cy[a]);
      }
      element_nodes_[4 * e + a] = it->second;
    }
  }

  // Pins per component: node `first` fixed in x and y; the node farthest from it fixed across the line
  // joining them (in whichever axis carries more of that direction), which stops the rotation.
  std::vector<int> node_component(n_nodes(), -1), first(n_components_, -1), far(n_components_, -1);
  for (int e = 0; e < n_elements(); ++e)
    for (int a = 0; a < 4; ++a) node_component[element_nodes_[4 * e + a]] = component_[e];
  for (int n = 0; n < n_nodes(); ++n)
    if (first[node_component[n]] < 0) first[node_component[n]] = n;
  std::vector<double> far_d2(n_components_, -1.0);
  for (int n = 0; n < n_nodes(); ++n) {
    const int k = node_component[n];
    const double dx = node_x_[n] - node_x_[first[k]], dy = node_y_[n] - node_y_[first[k]];
    if (dx * dx + dy * dy > far_d2[k]) {
      far_d2[k] = dx * dx + dy * dy;
      far[k] = n;
    }
  }
  std::vector<char> pinned(2 * n_nodes(), 0);
  for (int k = 0; k < n_components_; ++k) {
    pinned[2 * first[k]] = pinned[2 * first[k] + 1] = 1;
    const double dx = node_x_[far[k]] - node_x_[first[k]], dy = node_y_[far[k]] - node_y_[first[k]];
    // A rotation moves the far node along (-dy, dx): pin the component in which it moves most.
    pinned[2 * far[k] + (std::abs(dx) >= std::abs(dy) ? 1 : 0)] = 1;
  }
  // Unknowns numbered in nested-dissection order: the stiffness matrix then factorises with little
  // fill (a 2-D grid's separators are its lines), better than a general minimum-degree ordering.
  std::vector<int> all(n_nodes());
  for (int n = 0; n < n_nodes(); ++n) all[n] = n;
  std::vector<int> order;
  order.reserve(n_nodes());
  dissect(all, order);
  dof_.assign(2 * n_nodes(), -1);
  for (int n : order)
    for (int d = 0; d < 2; ++d)
      if (!pinned[2 * n + d]) dof_[2 * n + d] = n_free_++;
}

void ElasticMesh::dissect(std::vector<int>& nodes, std::vector<int>& order) const {
  if (nodes.size() <= 64) {
    order.insert(order.end(), nodes.begin(), nodes.end());
    return;
  }
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (int n : nodes) {
    x0 = std::min(x0, node_x_[n]);
    x1 = std::max(x1, node_x_[n]);
    y0 = std::min(y0, node_y_[n]);
    y1 = std::max(y1, node_y_[n]);
  }
  // Nodes on the middle grid line along the longer side separate the two halves: elements span one
  // pixel, so no element joins a node left of the line to one right of it.
  const bool along_x = x1 - x0 >= y1 - y0;
  const double cut = std::floor(along_x ? (x0 + x1) / 2 : (y0 + y1) / 2);
  std::vector<int> low, high, separator;
  for (int n : nodes) {
    const double v = along_x ? node_x_[n] : node_y_[n];
    (v < cut ? low : v > cut ? high : separator).push_back(n);
  }
  if (low.empty() || high.empty()) {  // a line of nodes: nothing left to split
    order.insert(order.end(), nodes.begin(), nodes.end());
    return;
  }
  std::vector<int>().swap(nodes);
  dissect(low, order);
  dissect(high, order);
  order.insert(order.end(), separator.begin(), separator.end());
}

}  // namespace pixelkinetics
