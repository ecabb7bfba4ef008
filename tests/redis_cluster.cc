// tests/redis_cluster.cc — a real Redis Cluster for tests (redis_cluster.h).
#include "tests/redis_cluster.h"

#include <time.h>

namespace mnv::testing {

RedisCluster::RedisCluster(int masters) {
  for (int i = 0; i < masters; ++i) {
    servers_.push_back(std::make_unique<RedisServer>(std::vector<std::string>{
        "--cluster-enabled", "yes", "--cluster-node-timeout", "5000", "--cluster-config-file", "nodes.conf",
        // (its bus on a port of its own: the default, port + 10000, may be past 65535)
        "--cluster-port", std::to_string(free_loopback_port())}));
    if (!servers_.back()->ok()) {
      error_ = "redis-server (cluster-enabled) did not start: see " + servers_.back()->dir() + "/redis.log";
      return;
    }
  }
  std::string create = "--cluster create";
  for (auto& s : servers_) create += " 127.0.0.1:" + std::to_string(s->port());
  create += " --cluster-replicas 0 --cluster-yes";
  std::string out = servers_[0]->cli(create);
  if (out.find("All 16384 slots covered") == std::string::npos) {
    error_ = "redis-cli " + create + " did not cover every slot: " + out;
    return;
  }
  if (!wait_ok(20)) {
    error_ = "the cluster did not reach cluster_state:ok within 20 s";
    return;
  }
  ok_ = true;
}

RedisServer* RedisCluster::by_port(int port) {
  for (auto& s : servers_) {
    if (s->port() == port) return s.get();
  }
  return nullptr;
}

std::string RedisCluster::seeds() const {
  std::string out;
  for (const auto& s : servers_) out += (out.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(s->port());
  return out;
}

bool RedisCluster::wait_ok(double seconds) {
  for (int i = 0; i < static_cast<int>(seconds * 10); ++i) {
    bool all = true;
    for (auto& s : servers_) {
      if (s->cli("CLUSTER INFO").find("cluster_state:ok") == std::string::npos) all = false;
    }
    if (all) return true;
    timespec ts{0, 100'000'000};
    ::nanosleep(&ts, nullptr);
  }
  return false;
}

}  // namespace mnv::testing
