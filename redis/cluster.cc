// redis/cluster.cc — Redis Cluster: slot map, MOVED and ASK (cluster.h).
#include "redis/cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <new>

#include "mem/heap.h"
#include "runtime/process.h"

namespace mnv::redis {
namespace {

// "host:port" (the last ':' splits; IPv6 hosts have more) into an address. False if it is not one.
bool parse_endpoint(std::string_view text, sockaddr_storage* a, socklen_t* len) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  unsigned port = 0;
  std::string_view p = text.substr(colon + 1);
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (ec != std::errc() || end != p.data() + p.size() || port == 0 || port > 65535) return false;
  char host[INET6_ADDRSTRLEN + 2];
  std::string_view h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.size() >= sizeof host) return false;
  std::memcpy(host, h.data(), h.size());
  host[h.size()] = '\0';
  std::memset(a, 0, sizeof *a);
  auto* in = reinterpret_cast<sockaddr_in*>(a);
  if (::inet_pton(AF_INET, host, &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<std::uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(a);
  if (::inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<std::uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

bool same_address(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    const auto& x = reinterpret_cast<const sockaddr_in&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in&>(b);
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
  const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
  return x.sin6_port == y.sin6_port && std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
}

struct Redirect {
  bool moved = false;  // else ASK
  std::uint16_t slot = 0;
  char endpoint[96] = {};
};

// "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381". False for any other reply.
bool parse_redirect(const Reply& r, Redirect* out) {
  if (r.type() != Type::kError) return false;
  ByteSpans s = r.str();
  bool moved = s.starts_with("MOVED ");
  if (!moved && !s.starts_with("ASK ")) return false;
  char buf[128];
  std::size_t n = s.copy_to(buf, sizeof buf - 1);
  std::string_view t(buf, n);
  t.remove_prefix(moved ? 6 : 4);
  std::size_t space = t.find(' ');
  if (space == std::string_view::npos) return false;
  unsigned slot = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + space, slot);
  if (ec != std::errc() || end != t.data() + space || slot >= kSlots) return false;
  std::string_view ep = t.substr(space + 1);
  if (ep.empty() || ep.size() >= sizeof out->endpoint) return false;
  out->moved = moved;
  out->slot = static_cast<std::uint16_t>(slot);
  std::memcpy(out->endpoint, ep.data(), ep.size());
  out->endpoint[ep.size()] = '\0';
  return true;
}

}  // namespace

Cluster::Cluster(const ClusterOptions& options) : opt_(options) { std::memset(slot_node_, kNoNode, sizeof slot_node_); }

Cluster::~Cluster() {
  for (std::uint32_t i = 0; i < count_; ++i) {
    nodes_[i]->~Connection();
    Heap::owner(nodes_[i])->free(nodes_[i]);
  }
}

void Cluster::note(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(why_, sizeof why_, fmt, ap);
  va_end(ap);
}

int Cluster::port(std::uint8_t node) const {
  if (node >= count_) return 0;
  const sockaddr_storage& a = addrs_[node];
  return a.ss_family == AF_INET ? ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port)
                                : ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
}

std::uint8_t Cluster::find_or_add(const sockaddr_storage& a, socklen_t len) {
  for (std::uint32_t i = 0; i < count_; ++i) {
    if (same_address(addrs_[i], a)) return static_cast<std::uint8_t>(i);
  }
  if (count_ == kMaxNodes) {
    note("the cluster has more than Cluster::kMaxNodes (%u) nodes", kMaxNodes);
    return kNoNode;
  }
  void* mem = this_process().heap().allocate(sizeof(Connection));
  if (mem == nullptr) {
    note("no room in the micro-heap for node %u's connection (%zu bytes)", count_, sizeof(Connection));
    return kNoNode;
  }
  addrs_[count_] = a;
  lens_[count_] = len;
  nodes_[count_] = new (mem) Connection(opt_.connection);
  nodes_[count_]->set_address(reinterpret_cast<const sockaddr*>(&a), len);
  return static_cast<std::uint8_t>(count_++);
}

bool Cluster::add_seed(const sockaddr* addr, socklen_t len) {
  sockaddr_storage a{};
  std::memcpy(&a, addr, len);
  return find_or_add(a, len) != kNoNode;
}

bool Cluster::read_slots(const Reply& r, std::uint8_t asked) {
  if (r.type() != Type::kArray) return false;
  // First check every range, then apply them (a bad reply leaves the old map).
  for (std::size_t i = 0; i < r.size(); ++i) {
    Reply e = r[i];
    if (e.type() != Type::kArray || e.size() < 3 || e[0].type() != Type::kInteger ||
        e[1].type() != Type::kInteger || e[0].integer() < 0 || e[1].integer() >= kSlots ||
        e[0].integer() > e[1].integer() || e[2].type() != Type::kArray || e[2].size() < 2 ||
        e[2][1].type() != Type::kInteger || e[2][0].str().size() > 64) {
      return false;
    }
  }
  std::uint8_t map[kSlots];
  std::memset(map, kNoNode, sizeof map);
  for (std::size_t i = 0; i < r.size(); ++i) {
    Reply e = r[i];
    char ep[96];
    char host[72];
    std::size_t hn = e[2][0].str().copy_to(host, sizeof host - 1);
    host[hn] = '\0';
    if (hn == 0 || std::strcmp(host, "?") == 0) {  // "the node you asked": its own address
      char self[INET6_ADDRSTRLEN] = "";
      const sockaddr_storage& a = addrs_[asked];
      if (a.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(a).sin_addr, self, sizeof self);
      } else {
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(a).sin6_addr, self, sizeof self);
      }
      std::snprintf(host, sizeof host, "%s", self);
    }
    std::snprintf(ep, sizeof ep, "%s:%lld", host, static_cast<long long>(e[2][1].integer()));
    sockaddr_storage a;
    socklen_t len;
    if (!parse_endpoint(ep, &a, &len)) return false;
    std::uint8_t n = find_or_add(a, len);
    if (n == kNoNode) return false;
    std::memset(map + e[0].integer(), n, static_cast<std::size_t>(e[1].integer() - e[0].integer() + 1));
  }
  std::memcpy(slot_node_, map, sizeof map);
  return true;
}

Task<int> Cluster::refresh() {
  int last = EDESTADDRREQ;
  if (count_ == 0) note("no node to ask for the slot map: add_seed() first");
  for (std::uint32_t i = 0; i < count_; ++i) {
    Reply r;
    Connection& c = *nodes_[i];
    int e = co_await c.call_args(&r, "CLUSTER", "SLOTS");
    if (e == EMSGSIZE) {  // (a map this client cannot read: say so, not just "too large")
      note("CLUSTER SLOTS on node %u (port %d): the slot map is larger than the %u-byte receive ring (> ~40 slot "
           "ranges); this client cannot read it: keep each master's slots contiguous (redis-cli --cluster rebalance)",
           i, port(static_cast<std::uint8_t>(i)), static_cast<unsigned>(Vectoring::kDefaultCapacity));
      last = e;
      continue;
    }
    if (e != 0) {
      note("CLUSTER SLOTS on node %u (port %d): %s", i, port(static_cast<std::uint8_t>(i)), c.why());
      last = e;
      continue;
    }
    if (r.is_error() || !read_slots(r, static_cast<std::uint8_t>(i))) {
      if (r.is_error()) {
        char msg[96];
        std::size_t n = r.str().copy_to(msg, sizeof msg - 1);
        msg[n] = '\0';
        note("CLUSTER SLOTS on node %u (port %d) answered: %s", i, port(static_cast<std::uint8_t>(i)), msg);
      } else if (why_[0] == '\0') {
        note("CLUSTER SLOTS on node %u (port %d): not a slot map", i, port(static_cast<std::uint8_t>(i)));
      }
      last = EPROTO;
      continue;
    }
    ++stats_.refreshes;
    have_map_ = true;
    stale_ = false;
    co_return 0;
  }
  co_return last;
}

Task<int> Cluster::route(std::uint16_t slot, std::uint8_t* node) {
  if (!have_map_ || stale_) {
    int e = co_await refresh();
    if (e != 0 && !have_map_) co_return e;  // (a stale map still routes; MOVED corrects it)
  }
  std::uint8_t n = slot_node_[slot];
  *node = n == kNoNode ? 0 : n;  // a slot no node serves: any node answers (CLUSTERDOWN or MOVED)
  co_return 0;
}

int Cluster::follow(const Reply& r, std::uint16_t slot, std::uint32_t redirects, std::uint8_t* n, bool* asking) {
  Redirect rd;
  if (!parse_redirect(r, &rd)) return -1;
  if (redirects >= opt_.max_redirects) {
    note("slot %u: still redirected after %u redirections (to %s): do the nodes agree on the slot map?", slot,
         redirects, rd.endpoint);
    return ELOOP;
  }
  sockaddr_storage a;
  socklen_t len;
  if (!parse_endpoint(rd.endpoint, &a, &len)) {
    note("slot %u: redirected to '%s', which is no host:port", slot, rd.endpoint);
    return EPROTO;
  }
  std::uint8_t to = find_or_add(a, len);
  if (to == kNoNode) return count_ == kMaxNodes ? ENOSPC : ENOMEM;  // (noted)
  if (rd.moved) {
    ++stats_.moved;
    slot_node_[rd.slot] = to;
    stale_ = true;  // read the whole map again before the next call
    *asking = false;
  } else {
    ++stats_.asked;
    *asking = true;
  }
  *n = to;
  return 0;
}

Task<int> Cluster::call(std::string_view key, std::span<const std::string_view> args, Reply* out) {
  const std::uint16_t slot = key_slot(key);
  std::uint8_t n;
  if (int e = co_await route(slot, &n); e != 0) co_return e;
  bool asking = false;
  for (std::uint32_t redirects = 0;; ++redirects) {
    Connection& c = *nodes_[n];
    int e;
    if (asking) {  // ASKING and the command, pipelined
      static constexpr std::string_view kAsking[] = {"ASKING"};
      e = co_await c.send(kAsking);
      if (e == 0) e = co_await c.send(args);
      if (e == 0) e = co_await c.receive(out);
      if (e == 0 && out->is_error()) {
        (void)co_await c.receive(out);
        note("ASKING refused by the node on port %d", port(n));
        co_return EPROTO;
      }
      if (e == 0) e = co_await c.receive(out);
    } else {
      e = co_await c.call(args, out);
    }
    if (e != 0) {
      stale_ = true;  // the node may be gone: read the map again before the next call
      note("slot %u on the node on port %d: %s", slot, port(n), c.why());
      co_return e;
    }
    if (int f = follow(*out, slot, redirects, &n, &asking); f != 0) co_return f < 0 ? 0 : f;
  }
}

Task<int> Cluster::eval(Script& script, std::span<const std::string_view> keys,
                        std::span<const std::string_view> args, Reply* out) {
  if (keys.empty()) {
    note("eval() of a script without keys: the cluster routes by the first key");
    co_return EINVAL;
  }
  const std::uint16_t slot = key_slot(keys[0]);
  std::uint8_t n;
  if (int e = co_await route(slot, &n); e != 0) co_return e;
  bool asking = false;
  for (std::uint32_t redirects = 0;; ++redirects) {
    Connection& c = *nodes_[n];
    if (int e = co_await script.eval(c, keys, args, out, asking); e != 0) {
      stale_ = true;
      note("script on slot %u on the node on port %d failed (%s): %s", slot, port(n), std::strerror(e), c.why());
      co_return e;
    }
    if (int f = follow(*out, slot, redirects, &n, &asking); f != 0) co_return f < 0 ? 0 : f;
  }
}

}  // namespace mnv::redis
