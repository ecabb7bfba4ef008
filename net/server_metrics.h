// net/server_metrics.h — what a Server counts into its shard's metric cells (Kernel::metrics()):
// connections accepted, refused, open, and closed by reason, and its connection heaps free.
// Written on the server's kernel thread at each connection's start and end (not per request).
#pragma once

#include "metrics/registry.h"

namespace mnv {

struct ServerMetrics {
  // How a connection ended:
  //  peer     its input ended (the client closed, or half-closed and the handler finished);
  //  timeout  a blocking op on it passed its deadline (idle timeout, or the protocol's own);
  //  error    a socket error (ECONNRESET, EPIPE...) or another error no handler took;
  //  fault    its process died of a trap or ENOMEM (counted as the server's supervisor learns it);
  //  server   the handler ended it on its own (HTTP: Connection: close, an error answer; a drain).
  enum Close { kPeer, kTimeout, kError, kFault, kServer, kCloseReasons };
  static constexpr const char* kCloseNames[kCloseReasons] = {"peer", "timeout", "error", "fault", "server"};

  metrics::Counter accepted, refused;
  metrics::Counter closed[kCloseReasons];
  metrics::Gauge open;        // connections being served
  metrics::Gauge heaps_free;  // connection micro-heaps free in the servers' pools

  // Registers every series (before the registry is placed).
  static ServerMetrics add_to(metrics::Registry& registry);
};

}  // namespace mnv
