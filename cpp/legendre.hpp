#pragma once
/// \file legendre.hpp
/// Legendre polynomials P_m(x) and their derivatives by the three-term recurrence.

namespace pixelkinetics {

/// Fills p[m] = P_m(x) and dp[m] = P_m'(x) for m = 0..n-1.
inline void legendre(double x, int n, double* p, double* dp) {
  if (n <= 0) return;
  p[0] = 1.0;
  dp[0] = 0.0;
  if (n == 1) return;
  p[1] = x;
  dp[1] = 1.0;
  for (int m = 1; m + 1 < n; ++m) {
    // (m+1) P_{m+1} = (2m+1) x P_m - m P_{m-1}, differentiated term by term.
    p[m + 1] = ((2 * m + 1) * x * p[m] - m * p[m - 1]) / (m + 1);
    dp[m + 1] = ((2 * m + 1) * (p[m] + x * dp[m]) - m * dp[m - 1]) / (m + 1);
  }
}

}  // namespace pixelkinetics
