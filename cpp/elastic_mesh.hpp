#pragma once
/// \file elastic_mesh.hpp
/// Bilinear (Q4) finite elements on the masked pixels of an image: one square element per pixel,
/// nodes at pixel corners, and the displacement unknowns that remain once rigid-body motion is pinned.

#include <Eigen/Core>
#include <cstdint>
#include <vector>

namespace pixelkinetics {

/// Elements are the masked pixels, numbered row-major. x runs along image columns, y along rows.
/// Pixels joined only at a corner would hinge there (a mechanism of the stiffness matrix), so nodes are
/// shared only within one 4-connected component: every component is its own elastic body with its own
/// three rigid-body modes, removed by pinning both displacements of one node and the displacement of a
/// far node across the line joining the two.
class ElasticMesh {
 public:
  /// \param height, width image shape
  /// \param mask          row-major H*W values, nonzero for particle pixels
  /// \param h             pixel size (displacements come out in its unit; strains do not depend on it)
  ElasticMesh(int height, int width, const std::vector<std::uint8_t>& mask, double h = 1.0);

  int height() const { return height_; }
  int width() const { return width_; }
  double h() const { return h_; }
  int n_elements() const { return static_cast<int>(pixel_.size()); }
  int n_nodes() const { return static_cast<int>(node_x_.size()); }
  int n_components() const { return n_components_; }
  /// Unknowns left after pinning: the size of the stiffness system.
  int n_free() const { return n_free_; }

  /// Row-major pixel index of each element.
  const std::vector<int>& pixel() const { return pixel_; }
  /// 4-connected component of each element, 0 .. n_components - 1.
  const std::vector<int>& component() const { return component_; }
  /// Nodes of element e counter-clockwise in (x, y) from its (x0, y0) corner: node(e, 0..3).
  int node(int e, int a) const { return element_nodes_[4 * e + a]; }
  /// The element across side s of element e (0: -x, 1: +x, 2: -y, 3: +y), -1 at the particle edge.
  int neighbour(int e, int s) const { return neighbour_[4 * e + s]; }
  /// Unknown index of displacement component d (0: x, 1: y) of node n, -1 where pinned.
  int dof(int n, int d) const { return dof_[2 * n + d]; }
  /// Node coordinates in pixels (the corner of pixel (row, col) at (col, row)).
  const std::vector<double>& node_x() const { return node_x_; }
  const std::vector<double>& node_y() const { return node_y_; }

 private:
  /// Appends `nodes` to `order` in nested-dissection order (both halves, then their separator).
  void dissect(std::vector<int>& nodes, std::vector<int>& order) const;

  int height_, width_;
  double h_;
  int n_components_ = 0;
  int n_free_ = 0;
  std::vector<int> pixel_, component_, element_nodes_, neighbour_, dof_;
  std::vector<double> node_x_, node_y_;
};

}  // namespace pixelkinetics
