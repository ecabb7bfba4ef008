// shard/affinity_config.cc — the shard knobs on the config surface (shard/config.h), and
// resolving shard count and CPUs against the machine. Every message has the form
// `WHERE: KEY = VALUE: WHAT IS WRONG`, WHERE being `FILE: line N` or a flag.
#include "shard/affinity_config.h"

#include <algorithm>
#include <initializer_list>
#include <map>
#include <tuple>
#include <type_traits>

#include "runtime/kernel.h"

namespace mnv {

namespace {

constexpr std::int64_t kMaxGraceMs = 3'600'000;
constexpr std::int64_t kMaxHeapPages = 65'536;
constexpr std::int64_t kMaxPoolSize = 16'777'216;

std::string cpus_text(const CpuSet& set) {
  return (set.count() == 1 ? "CPU " : "CPUs ") + format_cpuset(set);
}

}  // namespace

void add_affinity_knobs(Config* c) {
  c->add_auto_int("", "shards", 0, 1, CpuSet::kMaxCpus, "shard count: N, or auto (one per CPU of the cpuset)");
  c->add_text("", "cpuset", "", "a string in cpuset(7) list form such as \"0-3,8\"",
              [](std::string_view v, std::string* why) {
                CpuSet set;
                return parse_cpuset(v, &set, why);
              },
              "CPUs for shards in cpuset(7) list form, e.g. 0-3,8; not set: the CPUs this process may use",
              /*optional=*/true);
  c->add_choice("", "poller", "io_uring", {"io_uring", "epoll", "poll"}, "how each shard waits for I/O");
  c->add_choice("", "isolation", "off", {"off", "mprotect", "strict", "pkeys"},
                "what a running connection can see of memory (README: isolation)");
  c->add_choice("", "shard_mode", "auto", {"auto", "threads", "processes"},
                "shards as threads or processes; auto: processes when isolation is mprotect or strict and there are "
                "several shards");
  c->add_int("", "grace_ms", 2000, 0, kMaxGraceMs,
             "on SIGTERM/SIGINT, time connections in flight get to finish; the process exits by its end");
  c->add_int("service", "heap_pages", 8, 1, kMaxHeapPages, "page budget of each connection's micro-heap");
  c->add_int("service", "pool_size", 8192, 1, kMaxPoolSize, "connections each shard serves at once");
  c->add_indexed("shard", "cpu", CpuSet::kMaxCpus - 1, 0, CpuSet::kMaxCpus - 1,
                 "pins shard N to a CPU of the cpuset");
}

AffinitySpec affinity_spec(const Config& c) {
  AffinitySpec spec;
  spec.shards = static_cast<int>(c.integer("shards"));
  spec.shards_at = c.at("shards");
  if (!c.text("cpuset").empty()) {
    CpuSet set;
    std::string why;
    if (parse_cpuset(c.text("cpuset"), &set, &why)) spec.cpuset = set;  // (checked when it was set)
  }
  spec.cpuset_at = c.at("cpuset");
  parse_poller(c.text("poller").c_str(), &spec.poller);
  spec.poller_at = c.at("poller");
  parse_isolation(c.text("isolation"), &spec.isolation);
  spec.isolation_at = c.at("isolation");
  parse_shard_mode(c.text("shard_mode"), &spec.shard_mode);
  spec.shard_mode_at = c.at("shard_mode");
  spec.grace_ms = c.integer("grace_ms");
  spec.grace_ms_at = c.at("grace_ms");
  spec.heap_pages = c.integer("heap_pages");
  spec.heap_pages_at = c.at("heap_pages");
  spec.pool_size = c.integer("pool_size");
  spec.pool_size_at = c.at("pool_size");
  for (const Config::Indexed& e : c.indexed("shard")) spec.shard_cpus.push_back({e.index, static_cast<int>(e.value), e.at});
  return spec;
}

const char* isolation_name(IsolationMode isolation) { return isolation_mode_name(isolation); }

namespace {

// The value of `all` whose name_of() is `name`; false (and *out untouched) if none is.
template <typename E>
bool parse_by_name(std::string_view name, std::initializer_list<E> all, const char* (*name_of)(E), E* out) {
  for (E value : all) {
    if (name == name_of(value)) {
      *out = value;
      return true;
    }
  }
  return false;
}

}  // namespace

bool parse_isolation(std::string_view name, IsolationMode* out) {
  return parse_by_name(name, {IsolationMode::kOff, IsolationMode::kMprotect, IsolationMode::kStrict, IsolationMode::kPkeys},
                       isolation_name, out);
}

const char* shard_mode_name(ShardMode mode) {
  switch (mode) {
    case ShardMode::kAuto:
      return "auto";
    case ShardMode::kThreads:
      return "threads";
    case ShardMode::kProcesses:
      return "processes";
  }
  return "?";
}

bool parse_shard_mode(std::string_view name, ShardMode* out) {
  return parse_by_name(name, {ShardMode::kAuto, ShardMode::kThreads, ShardMode::kProcesses}, shard_mode_name, out);
}

bool parse_affinity_toml(std::string_view text, std::string_view source_name, AffinitySpec* out, std::string* error) {
  Config c;
  add_affinity_knobs(&c);
  if (!c.read_toml(text, source_name, error)) return false;
  *out = affinity_spec(c);
  return true;
}

bool read_affinity_file(const std::string& path, AffinitySpec* out, std::string* error) {
  Config c;
  add_affinity_knobs(&c);
  if (!c.read_file(path, error)) return false;
  *out = affinity_spec(c);
  return true;
}

bool apply_overrides(const AffinityOverrides& o, AffinitySpec* spec, std::string* error) {
  // Each given value is checked as its flag would be; the spec takes those that were given.
  Config c;
  add_affinity_knobs(&c);
  auto flag = [&](const char* name, const auto& value) {
    if (!value) return true;
    if constexpr (std::is_same_v<std::decay_t<decltype(*value)>, std::string>) {
      return c.set_flag(name, *value, error);
    } else {
      return c.set_flag(name, std::to_string(*value), error);
    }
  };
  if (!flag("shards", o.shards) || !flag("cpuset", o.cpuset) || !flag("poller", o.poller) ||
      !flag("isolation", o.isolation) || !flag("shard_mode", o.shard_mode) || !flag("grace_ms", o.grace_ms) ||
      !flag("heap_pages", o.heap_pages) || !flag("pool_size", o.pool_size)) {
    return false;
  }
  AffinitySpec given = affinity_spec(c);
  AffinitySpec s = *spec;
  if (o.shards) std::tie(s.shards, s.shards_at) = std::tie(given.shards, given.shards_at);
  if (o.cpuset) std::tie(s.cpuset, s.cpuset_at) = std::tie(given.cpuset, given.cpuset_at);
  if (o.poller) std::tie(s.poller, s.poller_at) = std::tie(given.poller, given.poller_at);
  if (o.isolation) std::tie(s.isolation, s.isolation_at) = std::tie(given.isolation, given.isolation_at);
  if (o.shard_mode) std::tie(s.shard_mode, s.shard_mode_at) = std::tie(given.shard_mode, given.shard_mode_at);
  if (o.grace_ms) std::tie(s.grace_ms, s.grace_ms_at) = std::tie(given.grace_ms, given.grace_ms_at);
  if (o.heap_pages) std::tie(s.heap_pages, s.heap_pages_at) = std::tie(given.heap_pages, given.heap_pages_at);
  if (o.pool_size) std::tie(s.pool_size, s.pool_size_at) = std::tie(given.pool_size, given.pool_size_at);
  *spec = std::move(s);
  return true;
}

bool resolve_affinity(const AffinitySpec& spec, const Topology& topology, AffinityConfig* out, std::string* error) {
  const std::string allowed_text = format_cpuset(topology.allowed());
  CpuSet cpuset;
  std::string cpuset_name;  // names the set in messages
  if (spec.cpuset) {
    const CpuSet& want = *spec.cpuset;
    CpuSet absent = want - topology.present();
    CpuSet offline = (want & topology.present()) - topology.online();
    CpuSet outside = (want & topology.online()) - topology.allowed();
    if (!absent.empty()) {
      *error = spec.cpuset_at + ": " + cpus_text(absent) + (absent.count() == 1 ? " does" : " do") +
               " not exist on this machine (it has " + cpus_text(topology.present()) + ")";
      return false;
    }
    if (!offline.empty()) {
      *error = spec.cpuset_at + ": " + cpus_text(offline) + (offline.count() == 1 ? " is" : " are") +
               " offline (online: " + format_cpuset(topology.online()) + ")";
      return false;
    }
    if (!outside.empty()) {
      *error = spec.cpuset_at + ": " + cpus_text(outside) + (outside.count() == 1 ? " is" : " are") +
               " outside the CPUs this process may use (" + allowed_text +
               "; set by taskset, a cgroup cpuset or the container)";
      return false;
    }
    cpuset = want;
    cpuset_name = "the cpuset " + format_cpuset(cpuset) + " (" + spec.cpuset_at + ")";
  } else {
    cpuset = topology.allowed();
    cpuset_name = "the CPUs this process may use (" + allowed_text + ")";
  }
  if (cpuset.empty()) {  // only a hand-built spec or topology gets here
    *error = (spec.cpuset_at.empty() ? std::string("cpuset") : spec.cpuset_at) + ": no CPU to place shards on";
    return false;
  }

  int shards = spec.shards == 0 ? cpuset.count() : spec.shards;
  if (shards > cpuset.count()) {
    *error = spec.shards_at + ": more shards than CPUs: " + cpuset_name + " has " + std::to_string(cpuset.count());
    return false;
  }
  std::string shards_name = spec.shards == 0 ? "shards = \"auto\" = " + std::to_string(shards)
                                             : "shards = " + std::to_string(shards);

  std::vector<int> cpus(static_cast<std::size_t>(shards), -1);
  std::map<int, const AffinitySpec::ShardCpu*> owner;  // cpu -> override that took it
  CpuSet taken;
  for (const AffinitySpec::ShardCpu& o : spec.shard_cpus) {
    std::string cpu_name = "CPU " + std::to_string(o.cpu);
    if (o.shard < 0 || o.shard >= shards) {
      *error = o.at + ": there is no shard " + std::to_string(o.shard) + " (" + shards_name + ", so shard indexes are 0 to " +
               std::to_string(shards - 1) + ")";
      return false;
    }
    if (cpus[static_cast<std::size_t>(o.shard)] >= 0) {
      *error = o.at + ": shard " + std::to_string(o.shard) + " is given a CPU twice";
      return false;
    }
    if (!topology.present().contains(o.cpu)) {
      *error = o.at + ": " + cpu_name + " does not exist on this machine (it has " + cpus_text(topology.present()) + ")";
      return false;
    }
    if (!topology.online().contains(o.cpu)) {
      *error = o.at + ": " + cpu_name + " is offline (online: " + format_cpuset(topology.online()) + ")";
      return false;
    }
    if (!cpuset.contains(o.cpu)) {
      *error = o.at + ": " + cpu_name + " is not in " + cpuset_name;
      return false;
    }
    if (auto it = owner.find(o.cpu); it != owner.end()) {
      *error = o.at + ": " + cpu_name + " is already shard " + std::to_string(it->second->shard) + "'s (" + it->second->at +
               ")";
      return false;
    }
    owner[o.cpu] = &o;
    taken.add(o.cpu);
    cpus[static_cast<std::size_t>(o.shard)] = o.cpu;
  }
  int rest = shards - taken.count();
  if (rest > 0) {
    std::vector<int> chosen;
    std::string why;
    if (!choose_cpus(topology, cpuset - taken, rest, &chosen, &why)) {
      *error = "placing shards on " + cpuset_name + ": " + why;
      return false;
    }
    std::size_t next = 0;
    for (int& cpu : cpus) {
      if (cpu < 0) cpu = chosen[next++];
    }
  }

  if (spec.isolation == IsolationMode::kPkeys) {
    std::string why;
    if (!Kernel::isolation_available(IsolationMode::kPkeys, &why)) {
      *error = (spec.isolation_at.empty() ? std::string("isolation") : spec.isolation_at) + ": " + why;
      return false;
    }
  }

  AffinityConfig c;
  c.shards = shards;
  c.cpuset = cpuset;
  c.cpus = std::move(cpus);
  c.poller = spec.poller;
  c.isolation = spec.isolation;
  c.shard_mode = spec.shard_mode;
  c.grace_ms = spec.grace_ms;
  c.heap_pages = static_cast<std::size_t>(spec.heap_pages);
  c.pool_size = static_cast<std::size_t>(spec.pool_size);
  *out = std::move(c);
  return true;
}

bool load_affinity_config(const std::string& path, const AffinityOverrides& overrides, const Topology& topology,
                          AffinityConfig* out, std::string* error) {
  AffinitySpec spec;
  if (!path.empty() && !read_affinity_file(path, &spec, error)) return false;
  if (!apply_overrides(overrides, &spec, error)) return false;
  return resolve_affinity(spec, topology, out, error);
}

}  // namespace mnv
