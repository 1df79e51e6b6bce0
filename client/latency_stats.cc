#include "client/latency_stats.h"

#include <algorithm>
#include <cmath>

namespace rwkv::client {

void LatencyStats::Merge(const LatencyStats& other) {
  samples_.insert(samples_.end(), other.samples_.begin(), other.samples_.end());
}

double LatencyStats::Percentile(double q) const {
  if (samples_.empty()) return 0;
  if (!(q >= 0)) q = 0;  // also NaN
  if (q > 100) q = 100;
  std::vector<double> sorted = samples_;
  std::sort(sorted.begin(), sorted.end());
  size_t rank = static_cast<size_t>(
      std::ceil(q / 100.0 * static_cast<double>(sorted.size())));
  if (rank == 0) rank = 1;
  return sorted[rank - 1];
}

double LatencyStats::Mean() const {
  if (samples_.empty()) return 0;
  double sum = 0;
  for (double s : samples_) sum += s;
  return sum / static_cast<double>(samples_.size());
}

double LatencyStats::Max() const {
  if (samples_.empty()) return 0;
  return *std::max_element(samples_.begin(), samples_.end());
}

}  // namespace rwkv::client
