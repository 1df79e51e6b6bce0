// ServerStateCollector: the server figures Prometheus reads at scrape time
// (not observed per event): requests running and waiting in the scheduler,
// sessions in RAM and in the store, their state bytes, the shared-prefix
// cache's queries, hits, reused tokens and size, prompt tokens the engine
// computed, and the histogram of batched step sizes. A prometheus-cpp
// Collectable for ServerMetrics::set_state_source. Thread-safe; borrows
// everything (all must outlive it).
#ifndef RWKV_SERVER_METRICS_SERVER_STATE_COLLECTOR_H_
#define RWKV_SERVER_METRICS_SERVER_STATE_COLLECTOR_H_

#include <vector>

#include "engine/prefix_cache.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/sched/scheduler.h"
#include "server/session/session_manager.h"
#include "server/session/session_store.h"

namespace rwkv::server {

class ServerStateCollector final : public prometheus::Collectable {
 public:
  // `prefix_cache` may be null (no cache: its figures are left out).
  ServerStateCollector(Scheduler* scheduler, SessionManager* sessions,
                       SessionStore* store, engine::PrefixCache* prefix_cache)
      : scheduler_(scheduler),
        sessions_(sessions),
        store_(store),
        prefix_cache_(prefix_cache) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  void CollectScheduler(std::vector<prometheus::MetricFamily>& out) const;
  void CollectSessions(std::vector<prometheus::MetricFamily>& out) const;
  void CollectPrefixCache(std::vector<prometheus::MetricFamily>& out) const;

  Scheduler* const scheduler_;
  SessionManager* const sessions_;
  SessionStore* const store_;
  engine::PrefixCache* const prefix_cache_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_METRICS_SERVER_STATE_COLLECTOR_H_
