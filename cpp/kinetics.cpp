#include "kinetics.hpp"

#include <cmath>

#include "legendre.hpp"

namespace pixelkinetics {

ExchangeCurrent exchange_current(const GlobalParams& g, double exp_b0, double c, double* p, double* dp) {
  ExchangeCurrent out{1.0, 0.0, 0.0, 0.0};
  switch (g.j0_base) {
    case J0Base::One:
      break;
    case J0Base::Sqrt:  // sqrt(c (1 - c))
      out.j0 = std::sqrt(c * (1.0 - c));
      out.dlog_j0 = 0.5 / c - 0.5 / (1.0 - c);
      break;
    case J0Base::Asym:  // (1 - c) sqrt(c (1 - c))
      out.j0 = (1.0 - c) * std::sqrt(c * (1.0 - c));
      out.dlog_j0 = 0.5 / c - 1.5 / (1.0 - c);
      break;
    case J0Base::Logistic: {  // 1 / (1 + exp(u)), u = s (c - c*); d ln j0 / du = -sigmoid(u)
      const double u = g.j0_s * (c - g.j0_c);
      const double e = std::exp(-std::abs(u));  // one exponential, in (0, 1]: no overflow either way
      const double sig = u > 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
      out.j0 = u > 0 ? e / (1.0 + e) : 1.0 / (1.0 + e);
      out.dlog_j0 = -g.j0_s * sig;
      out.dlog_ds = -(c - g.j0_c) * sig;
      out.dlog_dcstar = g.j0_s * sig;
      break;
    }
  }
  out.j0 *= exp_b0;
  const int n_b = static_cast<int>(g.b.size());
  if (n_b > 1) {
    legendre(2.0 * c - 1.0, n_b, p, dp);
    double correction = 0.0;
    for (int m = 1; m < n_b; ++m) {
      correction += g.b[m] * p[m];
      out.dlog_j0 += 2.0 * g.b[m] * dp[m];
    }
    out.j0 *= std::exp(correction);
  }
  return out;
}

}  // namespace pixelkinetics
