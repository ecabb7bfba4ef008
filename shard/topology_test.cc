// Tests of Topology on this real machine (discovery agrees with sched_getaffinity and sysconf;
// pinning a thread to each allowed CPU is verified with sched_getaffinity; a thread restricted
// to one CPU with sched_setaffinity sees only that CPU as allowed and cannot pin elsewhere;
// memory binding), and of choose_cpus on made-up machines with SMT siblings, several NUMA nodes,
// offline CPUs and restricted affinity. Threads that pin themselves are separate std::threads,
// so the test's main thread keeps its affinity.
#include "shard/topology.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace mnv {
namespace {

CpuSet affinity_of_this_thread() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  EXPECT_EQ(sched_getaffinity(0, sizeof mask, &mask), 0) << std::strerror(errno);
  CpuSet set;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, &mask)) set.add(cpu);
  }
  return set;
}

std::unique_ptr<Topology> discover() {
  std::string error;
  auto t = Topology::discover(&error);
  EXPECT_NE(t, nullptr) << error;
  return t;
}

TEST(TopologyTest, DiscoversThisMachine) {
  auto t = discover();
  ASSERT_NE(t, nullptr);
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  EXPECT_EQ(t->online().count(), online);
  EXPECT_TRUE(t->online().subset_of(t->present()));
  EXPECT_TRUE(t->allowed().subset_of(t->online()));
  EXPECT_FALSE(t->allowed().empty());
  EXPECT_EQ(t->allowed(), affinity_of_this_thread() & t->online());
  EXPECT_GE(t->numa_nodes(), 1);
  EXPECT_EQ(static_cast<int>(t->cpus().size()), t->present().count());
  int previous = -1;
  for (const CpuInfo& info : t->cpus()) {
    EXPECT_GT(info.cpu, previous) << "cpus() is in increasing order";
    previous = info.cpu;
    EXPECT_EQ(t->find(info.cpu), &info);
    if (!info.online) continue;
    EXPECT_GE(info.core, 0) << info.cpu;
    EXPECT_LE(info.core, info.cpu) << "a core is named by its lowest CPU";
    EXPECT_GE(info.smt, 0) << info.cpu;
    EXPECT_GE(info.numa_node, 0) << info.cpu;
    EXPECT_EQ(t->numa_node_of(info.cpu), info.numa_node);
    // The core's first thread exists and names the same core.
    ASSERT_NE(t->find(info.core), nullptr);
    EXPECT_EQ(t->find(info.core)->core, info.core);
    EXPECT_EQ(t->find(info.core)->smt, 0);
  }
  EXPECT_EQ(t->find(-1), nullptr);
  EXPECT_EQ(t->find(CpuSet::kMaxCpus), nullptr);
  EXPECT_EQ(t->numa_node_of(CpuSet::kMaxCpus - 1), -1);
}

TEST(TopologyTest, PinsAThreadToEachAllowedCpu) {
  auto t = discover();
  ASSERT_NE(t, nullptr);
  for (int cpu : t->allowed()) {
    std::string error;
    bool pinned = false;
    CpuSet after;
    int running_on = -1;
    std::thread([&] {
      pinned = t->pin_current_thread(cpu, &error);
      after = affinity_of_this_thread();
      running_on = sched_getcpu();
    }).join();
    EXPECT_TRUE(pinned) << error;
    CpuSet want;
    want.add(cpu);
    EXPECT_EQ(format_cpuset(after), format_cpuset(want));
    EXPECT_EQ(running_on, cpu);
  }
  // The main thread was not touched.
  EXPECT_EQ(affinity_of_this_thread() & t->online(), t->allowed());
}

TEST(TopologyTest, RefusesToPinOutsideTheAllowedSet) {
  auto t = discover();
  ASSERT_NE(t, nullptr);
  std::string error;
  EXPECT_FALSE(t->pin_current_thread(CpuSet::kMaxCpus - 1, &error));
  EXPECT_NE(error.find("pinning to CPU 1023: not one of the CPUs this process may use"), std::string::npos) << error;
  EXPECT_FALSE(t->pin_current_thread(-1, &error));
  EXPECT_EQ(affinity_of_this_thread() & t->online(), t->allowed());
}

// A thread whose affinity was cut down to one CPU (as taskset or a container would) sees only
// that CPU as allowed; nothing chooses or pins outside it.
TEST(TopologyTest, HonoursARestrictedAffinity) {
  auto full = discover();
  ASSERT_NE(full, nullptr);
  for (int only : full->allowed()) {
    std::string error;
    std::unique_ptr<Topology> t;
    bool pinned_elsewhere = true;
    std::string pin_error;
    std::vector<int> one, too_many;
    std::string choose_error;
    CpuSet after;
    std::thread([&] {
      cpu_set_t mask;
      CPU_ZERO(&mask);
      CPU_SET(only, &mask);
      ASSERT_EQ(sched_setaffinity(0, sizeof mask, &mask), 0) << std::strerror(errno);
      t = Topology::discover(&error);
      if (t == nullptr) return;
      int other = (full->allowed() - t->allowed()).first();
      if (other >= 0) pinned_elsewhere = t->pin_current_thread(other, &pin_error);
      after = affinity_of_this_thread();
    }).join();
    ASSERT_NE(t, nullptr) << error;
    CpuSet want;
    want.add(only);
    EXPECT_EQ(t->allowed(), want);
    EXPECT_EQ(t->online(), full->online()) << "the topology still shows every CPU";
    if (full->allowed().count() > 1) {
      EXPECT_FALSE(pinned_elsewhere);
      EXPECT_NE(pin_error.find("not one of the CPUs this process may use (" + std::to_string(only) + ")"),
                std::string::npos)
          << pin_error;
    }
    EXPECT_EQ(after, want) << "a refused pin leaves the affinity alone";
    EXPECT_TRUE(choose_cpus(*t, t->present(), 1, &one, &choose_error)) << choose_error;
    EXPECT_EQ(one, std::vector<int>{only});
    EXPECT_FALSE(choose_cpus(*t, t->present(), 2, &too_many, &choose_error));
    EXPECT_NE(choose_error.find("2 shards need 2 CPUs, but only 1"), std::string::npos) << choose_error;
  }
}

TEST(TopologyTest, ChoosesFromTheRealAllowedSet) {
  auto t = discover();
  ASSERT_NE(t, nullptr);
  int n = t->allowed().count();
  for (int k = 1; k <= n; k++) {
    std::vector<int> cpus;
    std::string error;
    ASSERT_TRUE(choose_cpus(*t, t->present(), k, &cpus, &error)) << error;
    ASSERT_EQ(static_cast<int>(cpus.size()), k);
    CpuSet chosen;
    for (int cpu : cpus) {
      EXPECT_TRUE(t->allowed().contains(cpu)) << cpu;
      EXPECT_TRUE(chosen.add(cpu));
    }
    EXPECT_EQ(chosen.count(), k) << "no CPU twice";
  }
  std::vector<int> cpus;
  std::string error;
  EXPECT_FALSE(choose_cpus(*t, t->present(), n + 1, &cpus, &error));
  EXPECT_FALSE(choose_cpus(*t, t->present(), 0, &cpus, &error));
  EXPECT_NE(error.find("at least 1"), std::string::npos) << error;
  EXPECT_FALSE(choose_cpus(*t, CpuSet(), 1, &cpus, &error));
}

TEST(TopologyTest, BindsMemoryToTheNodeOfACpu) {
  auto t = discover();
  ASSERT_NE(t, nullptr);
  const std::size_t len = 16 * 4096;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  int node = t->numa_node_of(t->allowed().first());
  std::string error;
  MemBind r = t->bind_memory(p, len, node, &error);
  EXPECT_TRUE(r == MemBind::kBound || r == MemBind::kSingleNode) << static_cast<int>(r) << " " << error;
  if (t->numa_nodes() == 1) {
    EXPECT_EQ(r, MemBind::kSingleNode);
  }
  std::memset(p, 0xab, len);  // the pages are usable
  EXPECT_EQ(t->bind_memory(p, len, 99999, &error), MemBind::kFailed);
  EXPECT_NE(error.find("no such node"), std::string::npos) << error;
  EXPECT_EQ(t->bind_memory(p, len, -1, &error), MemBind::kFailed);
  EXPECT_EQ(t->bind_memory(static_cast<char*>(p) + 1, 100, node, &error), MemBind::kFailed);
  EXPECT_NE(error.find("page-aligned"), std::string::npos) << error;
  munmap(p, len);
}

// --- Made-up machines ---

// `nodes` NUMA nodes of `cores` cores of `threads` SMT threads. Linux numbers Intel machines
// thread-major (CPU c is thread 0 of core c; siblings come after all first threads) and many AMD
// machines core-major (siblings adjacent).
std::vector<CpuInfo> machine(int nodes, int cores, int threads, bool siblings_adjacent) {
  std::vector<CpuInfo> cpus;
  int total_cores = nodes * cores;
  for (int node = 0; node < nodes; node++) {
    for (int core = 0; core < cores; core++) {
      int core_index = node * cores + core;
      for (int thread = 0; thread < threads; thread++) {
        int cpu = siblings_adjacent ? core_index * threads + thread : thread * total_cores + core_index;
        int first = siblings_adjacent ? core_index * threads : core_index;
        cpus.push_back({cpu, true, first, thread, node});
      }
    }
  }
  return cpus;
}

CpuSet all(int n) {
  CpuSet s;
  for (int i = 0; i < n; i++) s.add(i);
  return s;
}

std::vector<int> choose(const Topology& t, const CpuSet& from, int n) {
  std::vector<int> out;
  std::string error;
  EXPECT_TRUE(choose_cpus(t, from, n, &out, &error)) << error;
  return out;
}

TEST(ChooseCpusTest, DistinctCoresBeforeSiblingsOneNodeBeforeTheNext) {
  // 2 nodes x 4 cores x 2 threads, Intel numbering: node 0 = CPUs 0-3 and 8-11.
  auto t = Topology::from_cpus(machine(2, 4, 2, false), all(16));
  EXPECT_EQ(t->numa_nodes(), 2);
  EXPECT_EQ(t->numa_node_of(9), 0);
  EXPECT_EQ(t->numa_node_of(12), 1);
  EXPECT_EQ(choose(*t, all(16), 1), (std::vector<int>{0}));
  EXPECT_EQ(choose(*t, all(16), 4), (std::vector<int>{0, 1, 2, 3}));           // one node, four cores
  EXPECT_EQ(choose(*t, all(16), 6), (std::vector<int>{0, 1, 2, 3, 4, 5}));     // cores before siblings
  EXPECT_EQ(choose(*t, all(16), 8), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(choose(*t, all(16), 10), (std::vector<int>{0, 1, 2, 3, 8, 9, 4, 5, 6, 7}));  // grouped by node
  EXPECT_EQ(choose(*t, all(16), 16).size(), 16u);

  // The same machine, AMD numbering: node 0 = CPUs 0-7, siblings 0/1, 2/3, ...
  auto a = Topology::from_cpus(machine(2, 4, 2, true), all(16));
  EXPECT_EQ(choose(*a, all(16), 4), (std::vector<int>{0, 2, 4, 6}));
  EXPECT_EQ(choose(*a, all(16), 6), (std::vector<int>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(choose(*a, all(16), 10), (std::vector<int>{0, 1, 2, 3, 4, 6, 8, 10, 12, 14}));
}

TEST(ChooseCpusTest, PrefersTheNodeWithMoreUsableCores) {
  auto t = Topology::from_cpus(machine(2, 4, 2, false), all(16));
  CpuSet from;
  for (int cpu : {0, 4, 5, 6, 7}) from.add(cpu);  // node 0 offers one core, node 1 four
  EXPECT_EQ(choose(*t, from, 3), (std::vector<int>{4, 5, 6}));
  EXPECT_EQ(choose(*t, from, 5), (std::vector<int>{4, 5, 6, 7, 0}));
}

TEST(ChooseCpusTest, SiblingRankCountsOnlyUsableThreads) {
  // taskset gave only the second thread of core 0 and both threads of core 1.
  auto t = Topology::from_cpus(machine(1, 2, 2, true), all(4));  // cores {0,1}, {2,3}
  CpuSet from;
  for (int cpu : {1, 2, 3}) from.add(cpu);
  EXPECT_EQ(choose(*t, from, 2), (std::vector<int>{1, 2}));
}

TEST(ChooseCpusTest, NeverLeavesTheAllowedOnlineSet) {
  std::vector<CpuInfo> cpus = machine(1, 8, 1, false);
  cpus[3].online = false;  // CPU 3 offline
  cpus[3].core = cpus[3].smt = cpus[3].numa_node = -1;
  CpuSet allowed = all(8);
  allowed.remove(5);  // CPU 5 not ours
  auto t = Topology::from_cpus(cpus, allowed);
  EXPECT_EQ(format_cpuset(t->present()), "0-7");
  EXPECT_EQ(format_cpuset(t->online()), "0-2,4-7");
  EXPECT_EQ(format_cpuset(t->allowed()), "0-2,4,6-7");
  EXPECT_EQ(choose(*t, all(8), 6), (std::vector<int>{0, 1, 2, 4, 6, 7}));
  std::vector<int> out;
  std::string error;
  EXPECT_FALSE(choose_cpus(*t, all(8), 7, &out, &error));
  EXPECT_EQ(error, "7 shards need 7 CPUs, but only 6 of 0-7 may be used (allowed: 0-2,4,6-7)");
  CpuSet from;
  from.add(3);
  from.add(5);
  EXPECT_FALSE(choose_cpus(*t, from, 1, &out, &error));
}

TEST(ChooseCpusTest, MadeUpTopologiesRefuseToPinOrBind) {
  auto t = Topology::from_cpus(machine(1, 2, 1, false), all(2));
  std::string error;
  EXPECT_FALSE(t->pin_current_thread(0, &error));
  EXPECT_NE(error.find("made up"), std::string::npos) << error;
  alignas(4096) static char page[4096];
  EXPECT_EQ(t->bind_memory(page, sizeof page, 0, &error), MemBind::kFailed);
}

}  // namespace
}  // namespace mnv
