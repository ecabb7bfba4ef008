// shard/topology.cc — hwloc discovery, thread pinning, memory binding and shard CPU choice.
#include "shard/topology.h"

#include <hwloc.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>

namespace mnv {

namespace {

std::string errno_text(int err) { return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")"; }

// CpuSet <-> hwloc bitmap. Bits at or above kMaxCpus make the conversion fail.
bool to_cpuset(hwloc_const_bitmap_t bitmap, CpuSet* out, int* too_large) {
  if (hwloc_bitmap_weight(bitmap) < 0) {  // an infinite set
    *too_large = CpuSet::kMaxCpus;
    return false;
  }
  CpuSet set;
  int i;
  hwloc_bitmap_foreach_begin(i, bitmap) {
    if (!set.add(i)) {
      *too_large = i;
      return false;
    }
  }
  hwloc_bitmap_foreach_end();
  *out = set;
  return true;
}

// The calling thread's affinity mask.
bool thread_affinity(CpuSet* out, std::string* error) {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (::sched_getaffinity(0, sizeof mask, &mask) != 0) {
    *error = "sched_getaffinity: " + errno_text(errno);
    return false;
  }
  CpuSet set;
  for (int cpu = 0; cpu < CpuSet::kMaxCpus && cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, &mask)) set.add(cpu);
  }
  *out = set;
  return true;
}

}  // namespace

std::unique_ptr<Topology> Topology::discover(std::string* error) {
  std::unique_ptr<Topology> t(new Topology());
  if (hwloc_topology_init(&t->hwloc_) != 0) {
    t->hwloc_ = nullptr;
    *error = "hwloc_topology_init: " + errno_text(errno);
    return nullptr;
  }
  // Keep CPUs outside the cgroup/affinity in the topology, so the config can tell "absent" from
  // "not allowed"; the allowed set is computed below.
  hwloc_topology_set_flags(t->hwloc_, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED);
  if (hwloc_topology_load(t->hwloc_) != 0) {
    *error = "hwloc_topology_load: " + errno_text(errno);
    return nullptr;
  }
  hwloc_topology_t topo = t->hwloc_;
  int too_large = -1;
  CpuSet complete, online, hwloc_allowed;
  if (!to_cpuset(hwloc_topology_get_complete_cpuset(topo), &complete, &too_large) ||
      !to_cpuset(hwloc_topology_get_topology_cpuset(topo), &online, &too_large) ||
      !to_cpuset(hwloc_topology_get_allowed_cpuset(topo), &hwloc_allowed, &too_large)) {
    *error = "CPU " + std::to_string(too_large) + " is beyond the largest supported CPU (" +
             std::to_string(CpuSet::kMaxCpus - 1) + ")";
    return nullptr;
  }
  CpuSet affinity;
  if (!thread_affinity(&affinity, error)) return nullptr;

  // Online CPUs are hwloc PU objects; offline ones are only in the complete set.
  for (hwloc_obj_t pu = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PU, nullptr); pu != nullptr;
       pu = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PU, pu)) {
    CpuInfo info;
    info.cpu = static_cast<int>(pu->os_index);
    info.online = true;
    hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu);
    if (core != nullptr && core->cpuset != nullptr) {
      info.core = hwloc_bitmap_first(core->cpuset);
      info.smt = 0;
      int sibling;
      hwloc_bitmap_foreach_begin(sibling, core->cpuset) {
        if (sibling < info.cpu) info.smt++;
      }
      hwloc_bitmap_foreach_end();
    } else {  // no core level (some virtual machines): every CPU is its own core
      info.core = info.cpu;
      info.smt = 0;
    }
    t->cpus_.push_back(info);
  }
  for (hwloc_obj_t node = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, nullptr); node != nullptr;
       node = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, node)) {
    if (node->cpuset == nullptr) continue;
    for (CpuInfo& info : t->cpus_) {
      if (info.numa_node < 0 && hwloc_bitmap_isset(node->cpuset, static_cast<unsigned>(info.cpu))) {
        info.numa_node = static_cast<int>(node->os_index);
      }
    }
  }
  for (int cpu : complete - online) {
    CpuInfo info;
    info.cpu = cpu;
    info.online = false;
    t->cpus_.push_back(info);
  }
  t->allowed_ = affinity & hwloc_allowed;
  t->finish();
  if (t->allowed_.empty()) {
    *error = "no usable CPU: the thread's affinity is " + format_cpuset(affinity) + ", the online CPUs are " +
             format_cpuset(t->online_);
    return nullptr;
  }
  return t;
}

std::unique_ptr<Topology> Topology::from_cpus(std::vector<CpuInfo> cpus, const CpuSet& allowed) {
  std::unique_ptr<Topology> t(new Topology());
  t->cpus_ = std::move(cpus);
  t->allowed_ = allowed;
  t->finish();
  return t;
}

void Topology::finish() {
  std::sort(cpus_.begin(), cpus_.end(), [](const CpuInfo& a, const CpuInfo& b) { return a.cpu < b.cpu; });
  std::set<int> nodes;
  present_ = CpuSet();
  online_ = CpuSet();
  for (const CpuInfo& info : cpus_) {
    present_.add(info.cpu);
    if (info.online) {
      online_.add(info.cpu);
      if (info.numa_node >= 0) nodes.insert(info.numa_node);
    }
  }
  allowed_ = allowed_ & online_;
  numa_nodes_ = static_cast<int>(nodes.size());
}

Topology::~Topology() {
  if (hwloc_ != nullptr) hwloc_topology_destroy(hwloc_);
}

const CpuInfo* Topology::find(int cpu) const {
  auto it = std::lower_bound(cpus_.begin(), cpus_.end(), cpu, [](const CpuInfo& a, int c) { return a.cpu < c; });
  return it != cpus_.end() && it->cpu == cpu ? &*it : nullptr;
}

int Topology::numa_node_of(int cpu) const {
  const CpuInfo* info = find(cpu);
  return info == nullptr ? -1 : info->numa_node;
}

bool Topology::pin_current_thread(int cpu, std::string* error) const {
  std::string prefix = "pinning to CPU " + std::to_string(cpu) + ": ";
  if (!allowed_.contains(cpu)) {
    *error = prefix + "not one of the CPUs this process may use (" + format_cpuset(allowed_) + ")";
    return false;
  }
  if (hwloc_ == nullptr) {
    *error = prefix + "the topology is made up (from_cpus), not this machine's";
    return false;
  }
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  if (set == nullptr) {
    *error = prefix + "out of memory";
    return false;
  }
  hwloc_bitmap_only(set, static_cast<unsigned>(cpu));
  int rc = hwloc_set_cpubind(hwloc_, set, HWLOC_CPUBIND_THREAD);
  int err = errno;
  hwloc_bitmap_free(set);
  if (rc != 0) {
    *error = prefix + "hwloc_set_cpubind: " + errno_text(err);
    return false;
  }
  CpuSet now;
  if (!thread_affinity(&now, error)) {
    *error = prefix + *error;
    return false;
  }
  CpuSet want;
  want.add(cpu);
  if (now != want) {
    *error = prefix + "the thread's affinity is " + format_cpuset(now) + " afterwards";
    return false;
  }
  return true;
}

MemBind Topology::bind_memory(void* addr, std::size_t len, int node, std::string* error) const {
  std::string prefix = "binding memory to NUMA node " + std::to_string(node) + ": ";
  long page = ::sysconf(_SC_PAGESIZE);
  if (page > 0 && reinterpret_cast<std::uintptr_t>(addr) % static_cast<std::uintptr_t>(page) != 0) {
    *error = prefix + "the address is not page-aligned";
    return MemBind::kFailed;
  }
  if (hwloc_ == nullptr) {
    *error = prefix + "the topology is made up (from_cpus), not this machine's";
    return MemBind::kFailed;
  }
  hwloc_obj_t obj = node < 0 ? nullptr : hwloc_get_numanode_obj_by_os_index(hwloc_, static_cast<unsigned>(node));
  if (obj == nullptr || obj->nodeset == nullptr) {
    *error = prefix + "no such node";
    return MemBind::kFailed;
  }
  bool single = hwloc_get_nbobjs_by_type(hwloc_, HWLOC_OBJ_NUMANODE) <= 1;
  if (len == 0) return single ? MemBind::kSingleNode : MemBind::kBound;
  const hwloc_topology_support* support = hwloc_topology_get_support(hwloc_);
  if (support == nullptr || !support->membind->set_area_membind || !support->membind->bind_membind) {
    if (single) return MemBind::kSingleNode;
    *error = prefix + "hwloc cannot bind memory areas on this system";
    return MemBind::kUnsupported;
  }
  int rc = hwloc_set_area_membind(hwloc_, addr, len, obj->nodeset, HWLOC_MEMBIND_BIND, HWLOC_MEMBIND_BYNODESET);
  if (rc == 0) return single ? MemBind::kSingleNode : MemBind::kBound;
  int err = errno;
  if (single) return MemBind::kSingleNode;  // nothing to gain on one node; a refusal is harmless
  *error = prefix + "hwloc_set_area_membind: " + errno_text(err);
  // mbind(2) is blocked by seccomp in many containers (EPERM) or absent (ENOSYS).
  return err == ENOSYS || err == EPERM ? MemBind::kUnsupported : MemBind::kFailed;
}

bool choose_cpus(const Topology& topology, const CpuSet& from, int n, std::vector<int>* out, std::string* error) {
  CpuSet usable = from & topology.allowed();
  if (n < 1) {
    *error = "cannot choose " + std::to_string(n) + " CPUs: at least 1 is needed";
    return false;
  }
  if (usable.count() < n) {
    *error = std::to_string(n) + " shards need " + std::to_string(n) + " CPUs, but only " +
             std::to_string(usable.count()) + " of " + (from.empty() ? std::string("(none)") : format_cpuset(from)) +
             " may be used (allowed: " + format_cpuset(topology.allowed()) + ")";
    return false;
  }
  struct Candidate {
    int cpu, node, core, rank;
  };
  std::vector<Candidate> candidates;
  std::map<int, int> seen_in_core;            // core -> usable CPUs of it met so far
  std::map<int, std::set<int>> cores_in_node;  // node -> usable cores
  int max_rank = 0;
  for (int cpu : usable) {
    const CpuInfo* info = topology.find(cpu);
    int core = info != nullptr && info->core >= 0 ? info->core : cpu;
    int node = info != nullptr ? info->numa_node : -1;
    int rank = seen_in_core[core]++;  // rank among the *usable* threads of the core
    max_rank = std::max(max_rank, rank);
    candidates.push_back({cpu, node, core, rank});
    cores_in_node[node].insert(core);
  }
  std::vector<int> node_order;
  for (const auto& [node, cores] : cores_in_node) node_order.push_back(node);
  std::stable_sort(node_order.begin(), node_order.end(), [&](int a, int b) {
    return cores_in_node[a].size() > cores_in_node[b].size();  // ties keep increasing node id
  });
  std::map<int, int> node_position;
  for (std::size_t i = 0; i < node_order.size(); i++) node_position[node_order[i]] = static_cast<int>(i);

  std::vector<Candidate> chosen;
  for (int rank = 0; rank <= max_rank && static_cast<int>(chosen.size()) < n; rank++) {
    for (int node : node_order) {
      for (const Candidate& c : candidates) {
        if (static_cast<int>(chosen.size()) == n) break;
        if (c.node == node && c.rank == rank) chosen.push_back(c);
      }
    }
  }
  std::sort(chosen.begin(), chosen.end(), [&](const Candidate& a, const Candidate& b) {
    int pa = node_position[a.node], pb = node_position[b.node];
    return pa != pb ? pa < pb : a.cpu < b.cpu;
  });
  out->clear();
  for (const Candidate& c : chosen) out->push_back(c.cpu);
  return true;
}

}  // namespace mnv
