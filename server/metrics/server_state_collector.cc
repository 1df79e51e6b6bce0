#include "server/metrics/server_state_collector.h"

#include <limits>
#include <string>
#include <utility>

namespace rwkv::server {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

ClientMetric Value(MetricType type, double v,
                   std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  return m;
}

// One family holding a single unlabelled value.
MetricFamily Single(std::string name, std::string help, MetricType type,
                    double v) {
  MetricFamily f = Family(std::move(name), std::move(help), type);
  f.metric.push_back(Value(type, v));
  return f;
}

// counts[n] = steps with n rows, as a histogram with power-of-two bounds.
MetricFamily BatchSizes(const std::vector<int64_t>& counts, int64_t rows) {
  MetricFamily f =
      Family("rwkv_batch_size", "Rows (sessions) of each batched forward step.",
             MetricType::Histogram);
  ClientMetric m;
  uint64_t total = 0;
  size_t n = 0;
  for (double bound = 1; n < counts.size(); bound *= 2) {
    for (; n < counts.size() && n <= bound; ++n) total += counts[n];
    m.histogram.bucket.push_back({total, bound});
  }
  m.histogram.bucket.push_back(
      {total, std::numeric_limits<double>::infinity()});
  m.histogram.sample_count = total;
  m.histogram.sample_sum = static_cast<double>(rows);
  f.metric.push_back(std::move(m));
  return f;
}

}  // namespace

void ServerStateCollector::CollectScheduler(
    std::vector<MetricFamily>& out) const {
  const SchedulerStats s = scheduler_->stats();
  out.push_back(Single("rwkv_num_requests_running",
                       "Turns whose prompt the scheduler has begun.",
                       MetricType::Gauge, static_cast<double>(s.running)));
  out.push_back(Single("rwkv_num_requests_waiting",
                       "Turns and prefills queued, none of their prompt fed.",
                       MetricType::Gauge, static_cast<double>(s.waiting)));
  out.push_back(Single("rwkv_prompt_tokens_computed_total",
                       "Prompt tokens the engine fed (cached ones are not).",
                       MetricType::Counter,
                       static_cast<double>(s.prompt_tokens)));
  out.push_back(Single("rwkv_decode_steps_total", "Batched forward steps.",
                       MetricType::Counter,
                       static_cast<double>(s.decode_steps)));
  out.push_back(BatchSizes(s.batch_size_counts, s.decode_rows));
}

void ServerStateCollector::CollectSessions(
    std::vector<MetricFamily>& out) const {
  MetricFamily sessions =
      Family("rwkv_sessions", "Sessions held, in RAM and in the session store.",
             MetricType::Gauge);
  sessions.metric.push_back(
      Value(MetricType::Gauge, static_cast<double>(sessions_->session_count()),
            {{"where", "ram"}}));
  sessions.metric.push_back(Value(MetricType::Gauge,
                                  static_cast<double>(store_->Count()),
                                  {{"where", "store"}}));
  out.push_back(std::move(sessions));
  out.push_back(Single(
      "rwkv_session_state_bytes", "Bytes of the session states held in RAM.",
      MetricType::Gauge, static_cast<double>(sessions_->total_bytes())));
}

void ServerStateCollector::CollectPrefixCache(
    std::vector<MetricFamily>& out) const {
  const engine::PrefixCacheStats c = prefix_cache_->stats();
  out.push_back(Single("rwkv_prefix_cache_queries_total",
                       "Lookups of the shared-prefix cache.",
                       MetricType::Counter,
                       static_cast<double>(c.hits + c.misses + c.coalesced)));
  out.push_back(Single("rwkv_prefix_cache_hits_total",
                       "Lookups that found a cached prefix.",
                       MetricType::Counter, static_cast<double>(c.hits)));
  out.push_back(Single("rwkv_prefix_cache_reused_tokens_total",
                       "Prompt tokens served from the shared-prefix cache.",
                       MetricType::Counter,
                       static_cast<double>(c.reused_tokens)));
  out.push_back(Single("rwkv_prefix_cache_bytes",
                       "Bytes held by the shared-prefix cache.",
                       MetricType::Gauge, static_cast<double>(c.bytes)));
  out.push_back(Single("rwkv_prefix_cache_entries",
                       "States held by the shared-prefix cache.",
                       MetricType::Gauge, static_cast<double>(c.entries)));
}

std::vector<MetricFamily> ServerStateCollector::Collect() const {
  std::vector<MetricFamily> out;
  CollectScheduler(out);
  CollectSessions(out);
  if (prefix_cache_ != nullptr) CollectPrefixCache(out);
  return out;
}

}  // namespace rwkv::server
