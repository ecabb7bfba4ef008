// net/server_metrics.cc — a server's series, by name.
#include "net/server_metrics.h"

namespace mnv {

ServerMetrics ServerMetrics::add_to(metrics::Registry& r) {
  ServerMetrics m;
  m.accepted = r.counter("mnv_connections_accepted", "Connections accepted and served.");
  m.refused = r.counter("mnv_connections_refused", "Connections refused (every connection heap in use, or draining).");
  for (int i = 0; i < kCloseReasons; ++i) {
    m.closed[i] = r.counter("mnv_connections_closed", "Connections ended, by reason.", {{"reason", kCloseNames[i]}});
  }
  m.open = r.gauge("mnv_connections_open", "Connections being served.");
  m.heaps_free = r.gauge("mnv_connection_heaps_free", "Connection micro-heaps free in the servers' pools.");
  return m;
}

}  // namespace mnv
