// shard/affinity_flags.h — the command-line flags of the affinity config, shared by every app:
//
//   --config=FILE       the affinity TOML file (shard/affinity_config.h); none: defaults
//   --shards=N|auto     --cpuset=LIST    --poller=NAME    --isolation=MODE
//   --shard_mode=threads|processes|auto
//
// Each flag left empty defers to the file (or its default); a given flag wins over the file.
// Why a separate library: the config reader stays free of Abseil, and an app gets the whole
// "file, then flags, then the machine" sequence from one call, after absl::ParseCommandLine:
//
//   std::string error;
//   auto topology = mnv::Topology::discover(&error);
//   mnv::AffinityConfig config;
//   if (topology == nullptr || !mnv::load_affinity_from_flags(*topology, {}, &config, &error)) {
//     std::fprintf(stderr, "app: %s\n", error.c_str());
//     return 2;
//   }
#pragma once

#include <string>

#include "absl/flags/declare.h"
#include "shard/affinity_config.h"

ABSL_DECLARE_FLAG(std::string, config);
ABSL_DECLARE_FLAG(std::string, shards);
ABSL_DECLARE_FLAG(std::string, cpuset);
ABSL_DECLARE_FLAG(std::string, poller);
ABSL_DECLARE_FLAG(std::string, isolation);
ABSL_DECLARE_FLAG(std::string, shard_mode);

namespace mnv {

// The non-empty flags among --shards, --cpuset, --poller, --isolation, --shard_mode as overrides.
AffinityOverrides affinity_overrides_from_flags();

// load_affinity_config(--config, overrides, topology): `app` carries the app's own overrides
// (e.g. its --heap_pages); the flags above win over the same fields in it.
bool load_affinity_from_flags(const Topology& topology, const AffinityOverrides& app, AffinityConfig* out,
                              std::string* error);

}  // namespace mnv
