// ServerMetrics: the server's Prometheus metrics, in the text exposition
// format for GET /metrics. Built on prometheus-cpp's core library (Debian
// prometheus-cpp-dev): its registry, families and text serializer; the pull
// library's own HTTP server is not used (the HTTP front serves /metrics).
//
// Two kinds of figures:
//  * observed as turns run (TurnMetrics, reported by MeteredTurnStream and
//    labelled by front, grpc or http): time to first token, inter-token
//    latency, end-to-end latency, queue time (histograms), turns finished by
//    reason, prompt / cached / generated tokens; and HTTP requests by route
//    and status code (ObserveHttpRequest);
//  * read at scrape time from the running server (set_state_source, e.g.
//    ServerStateCollector): requests running and waiting, sessions, state
//    bytes, prefix-cache queries and hits, batch sizes.
// Names follow vLLM's metrics with an rwkv_ prefix. Thread-safe.
#ifndef RWKV_SERVER_METRICS_SERVER_METRICS_H_
#define RWKV_SERVER_METRICS_SERVER_METRICS_H_

#include <array>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/app/turn_metrics.h"

namespace rwkv::server {

class ServerMetrics final : public TurnMetrics {
 public:
  ServerMetrics();
  ~ServerMetrics() override;
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  // TurnMetrics.
  void ObserveQueueTime(Front front, absl::Duration d) override;
  void ObserveTimeToFirstToken(Front front, absl::Duration d) override;
  void ObserveInterToken(Front front, absl::Duration d, int tokens) override;
  void ObserveFinished(Front front, const TurnOutcome& outcome) override;

  // One HTTP request answered: `route` is the route's pattern (a bounded
  // set, never the raw path), `code` the status sent.
  void ObserveHttpRequest(const std::string& method, const std::string& route,
                          int code) ABSL_LOCKS_EXCLUDED(mu_);

  // Figures read at scrape time; replaces the previous source (null: none).
  // The source must stay valid until it is replaced or this is destroyed.
  void set_state_source(std::shared_ptr<const prometheus::Collectable> source)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Every metric in the Prometheus text format (version 0.0.4).
  std::string Render() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  static constexpr int kFronts = 2;
  struct PerFront {
    prometheus::Histogram* ttft = nullptr;
    prometheus::Histogram* itl = nullptr;
    prometheus::Histogram* e2e = nullptr;
    prometheus::Histogram* queue = nullptr;
    prometheus::Counter* prompt_tokens = nullptr;
    prometheus::Counter* cached_tokens = nullptr;
    prometheus::Counter* generated_tokens = nullptr;
  };

  // Constant after construction (the families are thread-safe).
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* finished_ = nullptr;
  prometheus::Family<prometheus::Counter>* http_requests_ = nullptr;
  std::array<PerFront, kFronts> fronts_;

  mutable absl::Mutex mu_;
  std::shared_ptr<const prometheus::Collectable> state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_METRICS_SERVER_METRICS_H_
