// shard/affinity_flags.cc — Abseil flag definitions for the affinity config and the one call
// that loads the file and applies them.
#include "shard/affinity_flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, config, "", "affinity config file (TOML); empty: built-in defaults");
ABSL_FLAG(std::string, shards, "", "shard count: N or auto (one per CPU of the cpuset); empty: from --config");
ABSL_FLAG(std::string, cpuset, "", "CPUs for shards in cpuset(7) list form, e.g. 0-3,8; empty: from --config");
ABSL_FLAG(std::string, poller, "", "io_uring, epoll or poll; empty: from --config (default io_uring)");
ABSL_FLAG(std::string, isolation, "", "off, mprotect, strict or pkeys; empty: from --config (default off)");
ABSL_FLAG(std::string, shard_mode, "",
          "threads, processes or auto (processes when isolation is mprotect or strict and there are several "
          "shards); empty: from --config (default auto)");

namespace mnv {

AffinityOverrides affinity_overrides_from_flags() {
  AffinityOverrides o;
  auto take = [](const absl::Flag<std::string>& flag, std::optional<std::string>* field) {
    std::string value = absl::GetFlag(flag);
    if (!value.empty()) *field = std::move(value);
  };
  take(FLAGS_shards, &o.shards);
  take(FLAGS_cpuset, &o.cpuset);
  take(FLAGS_poller, &o.poller);
  take(FLAGS_isolation, &o.isolation);
  take(FLAGS_shard_mode, &o.shard_mode);
  return o;
}

bool load_affinity_from_flags(const Topology& topology, const AffinityOverrides& app, AffinityConfig* out,
                              std::string* error) {
  AffinityOverrides o = app;
  AffinityOverrides flags = affinity_overrides_from_flags();
  if (flags.shards) o.shards = flags.shards;
  if (flags.cpuset) o.cpuset = flags.cpuset;
  if (flags.poller) o.poller = flags.poller;
  if (flags.isolation) o.isolation = flags.isolation;
  if (flags.shard_mode) o.shard_mode = flags.shard_mode;
  return load_affinity_config(absl::GetFlag(FLAGS_config), o, topology, out, error);
}

}  // namespace mnv
