// tests/redis_cluster.h — (tests) a real Redis Cluster of masters on loopback ports: each a
// redis-server (redis_server.h) with cluster-enabled and its bus on a free port of its own,
// joined with `redis-cli --cluster create`, ready once every node says cluster_state:ok. Every
// server and directory goes with the object. tests/redis_cluster_test.cc uses it in-process;
// tests/redis_cluster_up.cc wraps it for shell tests (tests/rtb_fleet_cluster_test.sh).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/redis_server.h"

namespace mnv::testing {

class RedisCluster {
 public:
  // Starts `masters` servers and joins them (no replicas); ok() says whether the cluster came
  // up within 20 s, error() why not.
  explicit RedisCluster(int masters = 3);
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  std::vector<std::unique_ptr<RedisServer>>& servers() { return servers_; }
  RedisServer* by_port(int port);
  // "127.0.0.1:P1,127.0.0.1:P2,..." (the seeds a client may start from).
  std::string seeds() const;
  // True once every node says cluster_state:ok (within `seconds`).
  bool wait_ok(double seconds);

 private:
  std::vector<std::unique_ptr<RedisServer>> servers_;
  bool ok_ = false;
  std::string error_;
};

}  // namespace mnv::testing
