// shard/shard_metrics.h — what a shard counts of its mailboxes into its metric cells: messages
// sent, received and refused (a full ring: back-pressure), and the latency of its cross-shard
// calls (from the call to its reply, as the caller sees it).
#pragma once

#include "metrics/registry.h"

namespace mnv {

struct ShardMetrics {
  metrics::Counter mail_sent, mail_received, mail_refused;
  metrics::Histogram call_latency;

  // Registers every series (before the registry is placed).
  static ShardMetrics add_to(metrics::Registry& registry);
};

}  // namespace mnv
