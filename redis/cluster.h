// redis/cluster.h — Redis Cluster from one micro-thread: the slot map, MOVED and ASK.
//
// The client keeps one Connection (connection.h) per cluster node it has heard of (at most
// kMaxNodes), and the owner of each of the 16384 slots, read from CLUSTER SLOTS on any node it
// knows (a seed at first). call() sends a command to the node that owns its key's slot
// (slot.h: CRC16, hash tags) and follows the cluster's redirections:
//  * MOVED <slot> <host:port>: the slot lives elsewhere for good. The command goes there, the
//    slot is remapped at once, and the whole map is read again (CLUSTER SLOTS) before the next
//    call, since a moved slot seldom moves alone (a resharding, a failover).
//  * ASK <slot> <host:port>: the slot is being migrated and this key is already at the target.
//    The command goes there once, after ASKING; the map is left as it is.
// eval() runs a Script (script.h) the same way, routed by its first key (ASKING before EVALSHA
// under ASK; the script is loaded on each node the first time it runs there).
// At most max_redirects redirections per call (ELOOP beyond: a cluster whose nodes disagree).
// Error replies other than those (CLUSTERDOWN, TRYAGAIN, -ERR...) are the caller's, as replies.
// A call that fails on a node's connection marks the map for a refresh (the node may be gone).
//
// Memory: the slot map (16 KiB) is in the Cluster; each node's Connection is allocated from the
// micro-heap when the node is first heard of (ENOMEM if the heap is full).
// Limits: kMaxNodes nodes (ENOSPC past them); a CLUSTER SLOTS reply must fit the receive ring
// (4080 bytes, about 40 slot ranges at ~90 bytes each), which covers the three-to-eight-master
// clusters a bidder fleet uses while each master's slots stay contiguous; a larger map fails
// refresh() with EMSGSIZE and a why() saying so (a map already read keeps routing, MOVED
// correcting it slot by slot).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <span>
#include <string_view>

#include "redis/connection.h"
#include "redis/script.h"
#include "redis/slot.h"

namespace mnv::redis {

struct ClusterOptions {
  ConnectionOptions connection;  // of each node's connection
  std::uint32_t max_redirects = 5;
};

struct ClusterStats {
  std::uint64_t moved = 0;      // MOVED redirections followed
  std::uint64_t asked = 0;      // ASK redirections followed
  std::uint64_t refreshes = 0;  // slot maps read (CLUSTER SLOTS)
};

class Cluster {
 public:
  static constexpr std::uint32_t kMaxNodes = 8;
  static constexpr std::uint8_t kNoNode = 0xff;

  explicit Cluster(const ClusterOptions& options = {});
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // A node to read the slot map from first (any node of the cluster). False: no room.
  bool add_seed(const sockaddr* addr, socklen_t len);
  // Reads the slot map from the first known node that answers CLUSTER SLOTS. 0 or an errno.
  Task<int> refresh();
  // Runs the command on the node owning `key`'s slot, following MOVED and ASK. 0 with *out (the
  // reply, maybe an error reply), or an errno (why() says which node and why).
  Task<int> call(std::string_view key, std::span<const std::string_view> args, Reply* out);
  template <typename... A>
  Task<int> call_args(Reply* out, std::string_view key, const A&... args) {
    const std::string_view argv[] = {std::string_view(args)...};
    co_return co_await call(key, std::span<const std::string_view>(argv), out);
  }

  // Runs `script` (script.h) on the node owning the slot of its first key (all its keys must
  // share that slot: use a {hash tag}), following MOVED and ASK as call() does. EINVAL: no key.
  Task<int> eval(Script& script, std::span<const std::string_view> keys, std::span<const std::string_view> args,
                 Reply* out);

  // The node owning `slot` in the map (kNoNode if none), its port, and its connection.
  std::uint8_t owner(std::uint16_t slot) const { return slot_node_[slot]; }
  int port(std::uint8_t node) const;
  Connection& node(std::uint8_t i) { return *nodes_[i]; }
  std::uint32_t nodes() const { return count_; }
  const ClusterStats& stats() const { return stats_; }
  const char* why() const { return why_; }

 private:
  // The node at this address, added if new; kNoNode when there is no room.
  std::uint8_t find_or_add(const sockaddr_storage& a, socklen_t len);
  // The map read first if it must be; then the node for `slot`. 0 or an errno.
  Task<int> route(std::uint16_t slot, std::uint8_t* node);
  // After a reply on node *n for `slot`: -1 if it is no redirection (the caller's); 0 to send
  // again to the new *n (with ASKING when *asking); or an errno (noted).
  int follow(const Reply& r, std::uint16_t slot, std::uint32_t redirects, std::uint8_t* n, bool* asking);
  // Rebuilds the map from a CLUSTER SLOTS reply; false if it is not one.
  bool read_slots(const Reply& r, std::uint8_t asked);
  void note(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  ClusterOptions opt_;
  Connection* nodes_[kMaxNodes] = {};  // in the micro-heap, made as nodes are heard of
  sockaddr_storage addrs_[kMaxNodes] = {};
  socklen_t lens_[kMaxNodes] = {};
  std::uint32_t count_ = 0;
  bool have_map_ = false;
  bool stale_ = false;  // refresh before the next call
  ClusterStats stats_;
  std::uint8_t slot_node_[kSlots];
  char why_[224] = {};
};

}  // namespace mnv::redis
