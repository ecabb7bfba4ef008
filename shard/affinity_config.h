// shard/affinity_config.h — the shard knobs of the config (shard/config.h): how many shards, on
// which CPUs, with which poller and isolation mode, and the per-service budgets.
//
// Why: DESIGN.md §3 "Shards" — one virtual kernel per pinned core, placed by a TOML file that
// command-line flags of the same names override (the server skeleton, shard/server.h, reads
// both). A bad config must stop the app before any shard starts, with a
// message naming the key, the value and the line; never a crash, never a silent default. So
// nothing here throws or aborts: every function returns false and sets *error.
//
// The file (every key optional; unknown keys are errors, in tables too):
//
//   shards = "auto"        # or an integer >= 1; "auto" = one shard per CPU of the cpuset
//   cpuset = "0-3,8"       # cpuset(7) list; default: the CPUs the process may use
//   poller = "io_uring"    # io_uring | epoll | poll
//   isolation = "off"      # off | mprotect | strict | pkeys
//   shard_mode = "auto"    # threads | processes | auto: processes when isolation is mprotect or
//                          # strict and there are several shards (shard/shard.h says why)
//   grace_ms = 2000        # SIGTERM grace period, 0..3600000
//   [service]              # (the skeleton adds host and port here, io, balance, max_run_ms and
//                          # restart_stuck_ms above: shard/server.h)
//   heap_pages = 8         # pages per micro-heap, 1..65536
//   pool_size = 8192      # micro-heaps (connections) per shard, 1..16777216
//   [shard.0]              # optional: pin shard 0 to CPU 2 (must be in the cpuset)
//   cpu = 2
//
// Three steps, each usable alone: read the file into an AffinitySpec (syntax, keys, types,
// ranges), apply command-line overrides, then resolve against the machine's Topology (CPUs exist,
// are online and allowed; shard count fits; every shard gets a distinct CPU).
// load_affinity_config() does all three.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/kernel.h"
#include "runtime/poller.h"
#include "shard/config.h"
#include "shard/cpuset.h"
#include "shard/topology.h"

namespace mnv {

// How shards run: as threads of one process (sharing its address space), or as processes of
// their own (sharing only what is mapped shared before they start; shard/shard.h).
enum class ShardMode { kAuto, kThreads, kProcesses };

// "auto", "threads", "processes".
const char* shard_mode_name(ShardMode mode);
// Parses a name as above; false if unknown.
bool parse_shard_mode(std::string_view name, ShardMode* out);

// The runtime's isolation modes (runtime/kernel.h) by name: "off", "mprotect", "strict", "pkeys".
const char* isolation_name(IsolationMode isolation);
// Parses a name as above; false if unknown.
bool parse_isolation(std::string_view name, IsolationMode* out);

// The resolved config: what the shard launcher needs.
struct AffinityConfig {
  int shards = 0;
  CpuSet cpuset;          // the CPUs shards are placed on (a subset of topology.allowed())
  std::vector<int> cpus;  // cpus[i] is shard i's CPU; shards entries, all distinct
  PollerKind poller = PollerKind::kIoUring;
  IsolationMode isolation = IsolationMode::kOff;
  ShardMode shard_mode = ShardMode::kAuto;
  std::int64_t grace_ms = 2000;
  std::size_t heap_pages = 8;
  std::size_t pool_size = 8192;
};

// The config as read, checked for syntax, keys, types and ranges but not yet against the machine.
// Each `*_at` says where its value came from, for later messages: `FILE: line N: key = VALUE`
// or `--flag=VALUE`; empty while the default applies.
struct AffinitySpec {
  int shards = 0;  // 0 means "auto"
  std::string shards_at;
  std::optional<CpuSet> cpuset;  // none: the CPUs the process may use
  std::string cpuset_at;
  PollerKind poller = PollerKind::kIoUring;
  std::string poller_at;
  IsolationMode isolation = IsolationMode::kOff;
  std::string isolation_at;
  ShardMode shard_mode = ShardMode::kAuto;
  std::string shard_mode_at;
  std::int64_t grace_ms = 2000;
  std::string grace_ms_at;
  std::int64_t heap_pages = 8;
  std::string heap_pages_at;
  std::int64_t pool_size = 8192;
  std::string pool_size_at;
  struct ShardCpu {
    int shard;
    int cpu;
    std::string at;
  };
  std::vector<ShardCpu> shard_cpus;  // [shard.N] cpu = C, in increasing shard order
};

// Declares the knobs above on a config; the AffinitySpec they hold.
void add_affinity_knobs(Config* config);
AffinitySpec affinity_spec(const Config& config);

// Parses TOML text; `source_name` (usually the path) starts every message. On error *out is left
// alone and *error lists every problem found, one per line, in line order.
bool parse_affinity_toml(std::string_view text, std::string_view source_name, AffinitySpec* out,
                         std::string* error);
// Reads and parses a file.
bool read_affinity_file(const std::string& path, AffinitySpec* out, std::string* error);

// Command-line values; each one given wins over the file. Messages name them as --KEY=VALUE.
struct AffinityOverrides {
  std::optional<std::string> shards;  // "N" or "auto"
  std::optional<std::string> cpuset;  // cpuset(7) list
  std::optional<std::string> poller;
  std::optional<std::string> isolation;
  std::optional<std::string> shard_mode;
  std::optional<std::int64_t> grace_ms;
  std::optional<std::int64_t> heap_pages;
  std::optional<std::int64_t> pool_size;
};

// Checks each given value as the file's would be and stores it in *spec. On error *spec is left
// alone.
bool apply_overrides(const AffinityOverrides& overrides, AffinitySpec* spec, std::string* error);

// Checks the spec against the machine and places the shards: [shard.N] overrides first, the rest
// by choose_cpus() over the cpuset's remaining CPUs.
bool resolve_affinity(const AffinitySpec& spec, const Topology& topology, AffinityConfig* out,
                      std::string* error);

// read_affinity_file (skipped when path is empty: defaults), apply_overrides, resolve_affinity.
bool load_affinity_config(const std::string& path, const AffinityOverrides& overrides,
                          const Topology& topology, AffinityConfig* out, std::string* error);

}  // namespace mnv
