// shard/topology.h — the machine's CPUs as the shards see them, and the calls that place a
// shard: pin a thread to one CPU, bind memory to one NUMA node, choose the CPUs for N shards.
//
// Why: a shard is one virtual kernel on one pinned OS thread (DESIGN.md §3 "Shards"). Placing
// shards well needs three facts per CPU, found with hwloc: which physical core it belongs to (two
// SMT siblings share one core's execution units, so two busy shards on siblings get far less than
// two cores' worth), which NUMA node it is on (memory on another node costs a remote access), and
// whether the process may run on it at all. The last is the calling thread's sched_getaffinity
// mask (what taskset, cgroup cpusets and container runtimes set), intersected with the online
// CPUs and hwloc's allowed set: nothing here ever pins a thread outside it.
//
// CPU ids are Linux's logical CPU numbers (hwloc's OS indexes), the numbers taskset, /proc and
// the config file use.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "shard/cpuset.h"

struct hwloc_topology;  // hwloc's handle type (hwloc_topology_t is a pointer to it)

namespace mnv {

struct CpuInfo {
  int cpu = -1;        // Linux's logical CPU id
  bool online = true;  // offline CPUs exist (present) but have no core or node
  int core = -1;       // physical core, named by its lowest CPU id; -1 when offline
  int smt = -1;        // rank among the core's hardware threads (0 = first); -1 when offline
  int numa_node = -1;  // NUMA node's OS index; -1 when offline or unknown
};

// What bind_memory() did. kBound and kSingleNode are success (the second means there was nothing
// to gain: one NUMA node, or the kernel refused the binding on a one-node machine).
enum class MemBind { kBound, kSingleNode, kUnsupported, kFailed };

class Topology {
 public:
  // Discovers this machine with hwloc and takes the calling thread's affinity mask as the allowed
  // set (call it before pinning any thread). Null and *error set on failure.
  static std::unique_ptr<Topology> discover(std::string* error);

  // A made-up machine, for tests of placement and config checks: `cpus` lists every present CPU
  // (any order); allowed is intersected with the online ones. pin_current_thread() and
  // bind_memory() refuse to act on it.
  static std::unique_ptr<Topology> from_cpus(std::vector<CpuInfo> cpus, const CpuSet& allowed);

  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  // Every present CPU, online or not, in increasing cpu order.
  const std::vector<CpuInfo>& cpus() const { return cpus_; }
  const CpuSet& present() const { return present_; }
  const CpuSet& online() const { return online_; }
  // Online CPUs the process may run on: a subset of online().
  const CpuSet& allowed() const { return allowed_; }
  // Number of NUMA nodes with online CPUs (at least 1 on a real machine).
  int numa_nodes() const { return numa_nodes_; }
  // The CpuInfo of `cpu`, or null if it is not present.
  const CpuInfo* find(int cpu) const;
  // NUMA node (OS index) of an online cpu, or -1.
  int numa_node_of(int cpu) const;

  // Pins the calling OS thread to `cpu` (hwloc_set_cpubind with HWLOC_CPUBIND_THREAD) and
  // verifies the result with sched_getaffinity. Refuses CPUs outside allowed().
  bool pin_current_thread(int cpu, std::string* error) const;

  // Binds the pages of [addr, addr+len) to NUMA node `node` (hwloc_set_area_membind, BIND):
  // pages touched afterwards are allocated there. addr must be page-aligned (as mmap returns).
  // On a one-node machine a refusal by the kernel (mbind blocked, no NUMA support) is not an
  // error: the result is kSingleNode. *error is set for kUnsupported and kFailed.
  MemBind bind_memory(void* addr, std::size_t len, int node, std::string* error) const;

 private:
  Topology() = default;
  void finish();  // sorts cpus_, fills the sets and the node count

  hwloc_topology* hwloc_ = nullptr;  // null for from_cpus()
  std::vector<CpuInfo> cpus_;
  CpuSet present_;
  CpuSet online_;
  CpuSet allowed_;
  int numa_nodes_ = 0;
};

// Chooses `n` CPUs for n shards from `from` ∩ topology.allowed(): first one CPU per distinct
// physical core, then second SMT threads, and so on; within each of those rounds the NUMA node
// with the most usable cores is filled before the next (ties: lower node id), so a small shard
// count stays on one node. The result is grouped by node in that order and increasing within a
// node, so neighbouring shards share a node. False and *error when n < 1 or fewer than n CPUs
// are usable.
bool choose_cpus(const Topology& topology, const CpuSet& from, int n, std::vector<int>* out,
                 std::string* error);

}  // namespace mnv
