#include "thermodynamics.hpp"

#include <cmath>

#include "legendre.hpp"

namespace pixelkinetics {

HomogeneousPotential homogeneous_potential(const GlobalParams& g, double c, double* p, double* dp) {
  HomogeneousPotential out;
  out.mu = std::log(c / (1.0 - c)) + g.Omega * (1.0 - 2.0 * c);
  out.dmu = 1.0 / (c * (1.0 - c)) - 2.0 * g.Omega;
  const int n_a = static_cast<int>(g.a.size());
  if (n_a > 0) {
    legendre(2.0 * c - 1.0, n_a + 1, p, dp);
    for (int m = 1; m <= n_a; ++m) {
      out.mu += g.a[m - 1] * p[m];
      out.dmu += 2.0 * g.a[m - 1] * dp[m];  // chain rule: d(2c - 1)/dc = 2
    }
  }
  return out;
}

}  // namespace pixelkinetics
