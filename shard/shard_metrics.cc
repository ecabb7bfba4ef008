// shard/shard_metrics.cc — a shard's mailbox series, by name.
#include "shard/shard_metrics.h"

namespace mnv {

ShardMetrics ShardMetrics::add_to(metrics::Registry& r) {
  ShardMetrics m;
  m.mail_sent = r.counter("mnv_mailbox_sent", "Cross-shard messages sent (requests, replies, posts).");
  m.mail_received = r.counter("mnv_mailbox_received", "Cross-shard messages received.");
  m.mail_refused = r.counter("mnv_mailbox_refused",
                             "Cross-shard sends refused by a full ring (back-pressure: retried later or given up).");
  m.call_latency = r.histogram("mnv_cross_call_latency_seconds", "Cross-shard calls, from the call to its reply.");
  return m;
}

}  // namespace mnv
