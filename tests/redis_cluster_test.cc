// Redis Cluster (redis/cluster.h) against a real three-master cluster that the test makes:
// three redis-servers with cluster-enabled on loopback ports, joined with
// `redis-cli --cluster create`. The client routes by slot (its CRC16 checked against CLUSTER
// KEYSLOT), and a slot is migrated by hand while the client runs: a key already moved is
// answered through ASK (ASKING at the target) while its slot-mate is still served at the
// source, and once the slot is given to the target, MOVED sends the client there and its map is
// read again; a script (EVALSHA) follows the same ASK, and budget leases (redis/budget_lease.h)
// run through the cluster on their campaign's node. Every server and directory goes with the test.
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "mem/heap_pool.h"
#include "net/io.h"
#include "redis/budget_lease.h"
#include "redis/cluster.h"
#include "runtime/kernel.h"
#include "tests/redis_cluster.h"
#include "tests/redis_server.h"

namespace mnv::redis {
namespace {

using mnv::testing::RedisServer;

std::string text(const Reply& r) {
  std::string s(r.str().size(), '\0');
  r.str().copy(0, s.size(), s.data());
  return s;
}

struct Fixture {
  mnv::testing::RedisCluster* cluster = nullptr;
  std::vector<std::unique_ptr<RedisServer>>& servers() { return cluster->servers(); }
  RedisServer* by_port(int port) { return cluster->by_port(port); }
  bool finished = false;
};

Thread client(Fixture* f) {
  ClusterOptions opt;
  opt.connection.call_timeout_ns = 5'000'000'000;
  Cluster c(opt);
  sockaddr_in seed = f->servers()[0]->addr();
  EXPECT_TRUE(c.add_seed(reinterpret_cast<const sockaddr*>(&seed), sizeof seed));
  EXPECT_EQ(co_await c.refresh(), 0) << c.why();
  EXPECT_EQ(c.nodes(), 3u);
  Reply r;

  // Routing: keys on every node, and our slots agree with the server's.
  const char* keys[] = {"foo", "bar", "{user1000}.following", "{user1000}.followers", "a", "b", "c", "d"};
  for (const char* k : keys) {
    EXPECT_EQ(std::to_string(key_slot(k)), f->servers()[0]->cli(std::string("CLUSTER KEYSLOT '") + k + "'")) << k;
    EXPECT_EQ(co_await c.call_args(&r, k, "SET", k, k), 0) << c.why();
    EXPECT_EQ(text(r), "OK") << k;
  }
  for (const char* k : keys) {
    EXPECT_EQ(co_await c.call_args(&r, k, "GET", k), 0);
    EXPECT_EQ(text(r), k);
    // It is stored on the node the map names.
    RedisServer* owner = f->by_port(c.port(c.owner(key_slot(k))));
    EXPECT_NE(owner, nullptr);
    if (owner != nullptr) {
      EXPECT_EQ(owner->cli(std::string("GET '") + k + "'"), k);
    }
  }
  EXPECT_EQ(c.stats().moved, 0u);
  EXPECT_EQ(c.stats().asked, 0u);

  // Budget leases through the cluster: the scripts run on the node owning the campaign's slot.
  BudgetLeases b;
  std::int64_t got = -1, left = -1;
  EXPECT_EQ(co_await b.reset(c, "c7", 100), 0) << b.why();
  EXPECT_EQ(co_await b.lease(c, "c7", "bidder-a", 60, &got), 0) << b.why();
  EXPECT_EQ(got, 60);
  EXPECT_EQ(co_await b.lease(c, "c7", "bidder-b", 60, &got), 0) << b.why();
  EXPECT_EQ(got, 40);
  EXPECT_EQ(co_await b.give_back(c, "c7", "bidder-a", 10, &got), 0) << b.why();
  EXPECT_EQ(got, 10);
  EXPECT_EQ(co_await b.left(c, "c7", &left), 0) << b.why();
  EXPECT_EQ(left, 10);
  RedisServer* budget_node = f->by_port(c.port(c.owner(key_slot("{budget:c7}:left"))));
  EXPECT_NE(budget_node, nullptr);
  if (budget_node != nullptr) {
    EXPECT_EQ(budget_node->cli("GET {budget:c7}:left"), "10");
  }
  EXPECT_EQ(c.stats().moved, 0u);

  // Migrate the slot of "foo" (12182) from its owner to another node, key by key.
  const std::uint16_t slot = key_slot("foo");
  EXPECT_EQ(co_await c.call_args(&r, "{foo}.2", "SET", "{foo}.2", "second"), 0);
  RedisServer* source = f->by_port(c.port(c.owner(slot)));
  RedisServer* target = nullptr;
  for (auto& s : f->servers()) {
    if (s.get() != source) target = s.get();
  }
  EXPECT_TRUE(source != nullptr && target != nullptr);
  if (source == nullptr || target == nullptr) co_return;
  const std::string source_id = source->cli("CLUSTER MYID"), target_id = target->cli("CLUSTER MYID");
  const std::string s = std::to_string(slot);
  EXPECT_EQ(target->cli("CLUSTER SETSLOT " + s + " IMPORTING " + source_id), "OK");
  EXPECT_EQ(source->cli("CLUSTER SETSLOT " + s + " MIGRATING " + target_id), "OK");
  EXPECT_EQ(source->cli("MIGRATE 127.0.0.1 " + std::to_string(target->port()) + " foo 0 5000"), "OK");

  // "foo" is at the target now: the source answers ASK, the client asks there.
  EXPECT_EQ(co_await c.call_args(&r, "foo", "GET", "foo"), 0) << c.why();
  EXPECT_EQ(text(r), "foo");
  EXPECT_EQ(c.stats().asked, 1u);
  // A script on the moved key: ASKING and EVALSHA at the target (the script loaded there first).
  Script get("return redis.call('GET', KEYS[1])");
  const std::string_view foo[] = {"foo"};
  EXPECT_EQ(co_await c.eval(get, foo, {}, &r), 0) << c.why();
  EXPECT_EQ(text(r), "foo");
  EXPECT_EQ(c.stats().asked, 2u);
  // "{foo}.2" has not moved: the source serves it, no redirection.
  EXPECT_EQ(co_await c.call_args(&r, "{foo}.2", "GET", "{foo}.2"), 0);
  EXPECT_EQ(text(r), "second");
  EXPECT_EQ(c.stats().asked, 2u);
  // A write to the moved key goes to the target too (ASK again: the map is not changed by it).
  EXPECT_EQ(co_await c.call_args(&r, "foo", "SET", "foo", "foo2"), 0);
  EXPECT_EQ(text(r), "OK");
  EXPECT_EQ(c.stats().asked, 3u);
  EXPECT_EQ(c.port(c.owner(slot)), source->port());

  // The rest of the slot moves, and every node is told the target owns it.
  EXPECT_EQ(source->cli("MIGRATE 127.0.0.1 " + std::to_string(target->port()) + " {foo}.2 0 5000"), "OK");
  for (auto& n : f->servers()) EXPECT_EQ(n->cli("CLUSTER SETSLOT " + s + " NODE " + target_id), "OK");
  const std::uint64_t refreshes = c.stats().refreshes;
  EXPECT_EQ(co_await c.call_args(&r, "{foo}.2", "GET", "{foo}.2"), 0) << c.why();
  EXPECT_EQ(text(r), "second");
  EXPECT_EQ(c.stats().moved, 1u);
  EXPECT_EQ(c.port(c.owner(slot)), target->port());
  // The next call reads the whole map again first; then no more redirections.
  EXPECT_EQ(co_await c.call_args(&r, "foo", "GET", "foo"), 0);
  EXPECT_EQ(text(r), "foo2");
  EXPECT_EQ(c.stats().refreshes, refreshes + 1);
  EXPECT_EQ(c.stats().moved, 1u);
  EXPECT_EQ(c.stats().asked, 3u);
  EXPECT_EQ(c.port(c.owner(slot)), target->port());
  EXPECT_EQ(target->cli("GET foo"), "foo2");
  // The script through MOVED-free routing now; it was loaded on the target under ASK.
  EXPECT_EQ(co_await c.eval(get, foo, {}, &r), 0) << c.why();
  EXPECT_EQ(text(r), "foo2");
  EXPECT_EQ(c.stats().asked, 3u);
  EXPECT_EQ(c.stats().moved, 1u);
  f->finished = true;
}

TEST(RedisClusterTest, RoutesBySlotAndFollowsAskAndMovedWhileASlotMigrates) {
  mnv::testing::RedisCluster cluster(3);
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  Fixture f;
  f.cluster = &cluster;
  KernelConfig kc;
  kc.max_fds = 256;
  kc.max_processes = 4;
  kc.exit_when_idle = true;
  auto k = Kernel::create(kc);
  ASSERT_NE(k, nullptr);
  HeapPool pool(64, 2);
  k->start(pool, client, &f);
  k->run();
  EXPECT_TRUE(f.finished);
}

// A slot map larger than the receive ring (4080 bytes): the seed's view of the cluster is
// fragmented into ~120 ranges (every other slot of its first 120 given to another master; they
// hold no keys). CLUSTER SLOTS is the only reply the bidder reads that can grow past the ring
// (the rest are integers, OK, short errors and SHA1s): refresh() says so and why, and a call
// without a map fails with it rather than hanging or routing blindly.
struct BigMap {
  Cluster* cluster = nullptr;
  sockaddr_in seed{};
  int refreshed = -1, called = -1;
  std::string why;
};

Thread big_map_client(BigMap* b) {
  ClusterOptions opt;
  opt.connection.call_timeout_ns = 5'000'000'000;
  Cluster c(opt);
  EXPECT_TRUE(c.add_seed(reinterpret_cast<const sockaddr*>(&b->seed), sizeof b->seed));
  b->refreshed = co_await c.refresh();
  b->why = c.why();
  Reply r;
  b->called = co_await c.call_args(&r, "k", "GET", "k");
}

TEST(RedisClusterTest, ASlotMapLargerThanTheReceiveRingIsAnExplicitError) {
  mnv::testing::RedisCluster cluster(3);
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  RedisServer& seed = *cluster.servers()[0];
  const std::string other = cluster.servers()[1]->cli("CLUSTER MYID");
  // The seed's own first slot (from CLUSTER NODES: "... connected FIRST-LAST"), and every other
  // one of the next 240, to the other master in the seed's view.
  std::string path = seed.dir() + "/setslots";
  std::string commands;
  std::string myid = seed.cli("CLUSTER MYID");
  std::string nodes = seed.cli("CLUSTER NODES");
  std::size_t at = nodes.find(myid);
  ASSERT_NE(at, std::string::npos);
  std::size_t eol = nodes.find('\n', at);
  std::string line = nodes.substr(at, eol == std::string::npos ? std::string::npos : eol - at);
  std::size_t dash = line.rfind('-');
  std::size_t space = line.rfind(' ', dash);
  ASSERT_NE(dash, std::string::npos) << line;
  const int start = std::stoi(line.substr(space + 1, dash - space - 1));
  for (int s = start; s < start + 240; s += 2) commands += "CLUSTER SETSLOT " + std::to_string(s) + " NODE " + other + "\n";
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs(commands.c_str(), f);
  std::fclose(f);
  seed.cli("< " + path);
  std::string slots = seed.cli("CLUSTER SLOTS");
  ASSERT_GT(std::count(slots.begin(), slots.end(), '\n'), 4080 / 8) << "the map did not grow";

  KernelConfig kc;
  kc.max_fds = 64;
  kc.max_processes = 4;
  kc.exit_when_idle = true;
  auto k = Kernel::create(kc);
  ASSERT_NE(k, nullptr);
  HeapPool pool(64, 2);
  BigMap b;
  b.seed = seed.addr();
  k->start(pool, big_map_client, &b);
  k->run();
  EXPECT_EQ(b.refreshed, EMSGSIZE) << b.why;
  EXPECT_NE(b.why.find("the slot map is larger than the 4080-byte receive ring"), std::string::npos) << b.why;
  EXPECT_NE(b.why.find("redis-cli --cluster rebalance"), std::string::npos) << b.why;
  EXPECT_EQ(b.called, EMSGSIZE);
}

}  // namespace
}  // namespace mnv::redis
