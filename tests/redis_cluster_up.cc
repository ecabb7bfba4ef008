// tests/redis_cluster_up.cc — (shell tests) a real three-master Redis Cluster (redis_cluster.h)
// for as long as this process lives: prints "cluster HOST:PORT,HOST:PORT,HOST:PORT" on stdout
// once every node says cluster_state:ok, then waits for SIGTERM or SIGINT and stops every server and removes their directories. Exit 1 if the cluster did not come up
// (why on stderr). The servers die with it even if it is SIGKILLed (PR_SET_PDEATHSIG).
//
//   tests/redis_cluster_up [MASTERS] > some_fifo &   # tests/rtb_fleet_lib.sh's fleet_start_cluster
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "tests/redis_cluster.h"

int main(int argc, char** argv) {
  int masters = argc > 1 ? std::atoi(argv[1]) : 3;
  if (masters < 1 || masters > 8) {
    std::fprintf(stderr, "redis_cluster_up: MASTERS must be 1 to 8, not '%s'\n", argv[1]);
    return 2;
  }
  mnv::testing::RedisCluster cluster(masters);
  if (!cluster.ok()) {
    std::fprintf(stderr, "redis_cluster_up: %s\n", cluster.error().c_str());
    return 1;
  }
  // SIGTERM and SIGINT blocked (only now: the servers must not inherit the mask), then awaited;
  // the servers are stopped by the destructors. (One before this kills us, and PR_SET_PDEATHSIG
  // the servers.)
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  std::printf("cluster %s\n", cluster.seeds().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  return 0;  // (the servers stop as `cluster` goes)
}
