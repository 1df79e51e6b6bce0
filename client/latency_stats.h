// LatencyStats: a bag of latency samples (milliseconds) with percentiles.
//
// rwkv-load collects time-to-first-token and inter-token gaps here. The
// percentile is the nearest-rank one (p99 of 100 samples is the 99th
// smallest), so it is always an observed value. Not thread-safe: each
// stream thread fills its own and the results are merged.
#ifndef RWKV_CLIENT_LATENCY_STATS_H_
#define RWKV_CLIENT_LATENCY_STATS_H_

#include <cstddef>
#include <vector>

namespace rwkv::client {

class LatencyStats {
 public:
  void Add(double ms) { samples_.push_back(ms); }
  void Merge(const LatencyStats& other);

  size_t count() const { return samples_.size(); }
  bool empty() const { return samples_.empty(); }
  // Nearest-rank percentile for q in [0, 100]; 0 when empty.
  double Percentile(double q) const;
  double Median() const { return Percentile(50); }
  double Mean() const;
  double Max() const;

 private:
  std::vector<double> samples_;
};

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_LATENCY_STATS_H_
