// Tests of shard/affinity_flags: empty flags defer to the --config file (or the defaults without
// one), given flags win over the file and over the app's own overrides, and a bad flag value is
// an error naming the flag. Runs against a made-up Topology; files go under $TEST_TMPDIR.
#include "shard/affinity_flags.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"

namespace mnv {
namespace {

std::string write_file(const std::string& text) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/affinity_flags.toml";
  std::ofstream(path) << text;
  return path;
}

// 8 CPUs, 4 cores of 2 SMT threads (siblings 0/4, 1/5, 2/6, 3/7), two NUMA nodes; CPU 6 is
// offline and CPU 7 is not allowed to this process.
std::unique_ptr<Topology> fake_machine() {
  std::vector<CpuInfo> cpus;
  for (int cpu = 0; cpu < 8; cpu++) {
    int core = cpu % 4;
    cpus.push_back({cpu, true, core, cpu / 4, core < 2 ? 0 : 1});
  }
  cpus[6] = {6, false, -1, -1, -1};
  CpuSet allowed;
  for (int cpu = 0; cpu < 7; cpu++) allowed.add(cpu);
  return Topology::from_cpus(cpus, allowed);
}

TEST(AffinityFlagsTest, FlagsLoadTheFileAndOverrideIt) {
  auto topology = fake_machine();
  std::string path = write_file("shards = 1\npoller = \"epoll\"\nisolation = \"strict\"\n[service]\nheap_pages = 2\n");
  absl::SetFlag(&FLAGS_config, path);
  AffinityConfig c;
  std::string error;
  AffinityOverrides app;
  app.heap_pages = 32;
  app.poller = "poll";
  ASSERT_TRUE(load_affinity_from_flags(*topology, app, &c, &error)) << error;
  EXPECT_EQ(c.shards, 1);
  EXPECT_EQ(c.poller, PollerKind::kPoll);  // the app's value, no flag given
  EXPECT_EQ(c.isolation, IsolationMode::kStrict);
  EXPECT_EQ(c.heap_pages, 32u);

  absl::SetFlag(&FLAGS_shards, "auto");
  absl::SetFlag(&FLAGS_cpuset, "4-5");
  absl::SetFlag(&FLAGS_poller, "epoll");
  absl::SetFlag(&FLAGS_isolation, "off");
  absl::SetFlag(&FLAGS_shard_mode, "processes");
  ASSERT_TRUE(load_affinity_from_flags(*topology, app, &c, &error)) << error;
  EXPECT_EQ(c.shards, 2);
  EXPECT_EQ(c.cpus, (std::vector<int>{4, 5}));
  EXPECT_EQ(c.poller, PollerKind::kEpoll);  // the flag beats the app's value
  EXPECT_EQ(c.isolation, IsolationMode::kOff);
  EXPECT_EQ(c.shard_mode, ShardMode::kProcesses);

  absl::SetFlag(&FLAGS_shards, "0");
  ASSERT_FALSE(load_affinity_from_flags(*topology, app, &c, &error));
  EXPECT_NE(error.find("--shards=0"), std::string::npos) << error;

  absl::SetFlag(&FLAGS_config, "");
  absl::SetFlag(&FLAGS_shards, "");
  absl::SetFlag(&FLAGS_cpuset, "");
  absl::SetFlag(&FLAGS_poller, "");
  absl::SetFlag(&FLAGS_isolation, "");
  absl::SetFlag(&FLAGS_shard_mode, "");
  ASSERT_TRUE(load_affinity_from_flags(*topology, {}, &c, &error)) << error;
  EXPECT_EQ(c.shards, 6);  // no file, no flags: defaults
  EXPECT_EQ(c.poller, PollerKind::kIoUring);
}

// The flag names an app's users type.
TEST(AffinityFlagsTest, ParsedFromACommandLine) {
  auto topology = fake_machine();
  std::string path = write_file("shards = 1\n[service]\npool_size = 7\n");
  std::string config_arg = "--config=" + path;
  std::vector<std::string> args = {"app", config_arg, "--shards=2", "--cpuset=2-3", "--poller=poll",
                                   "--isolation=mprotect"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  absl::ParseCommandLine(static_cast<int>(argv.size()), argv.data());
  AffinityConfig c;
  std::string error;
  ASSERT_TRUE(load_affinity_from_flags(*topology, {}, &c, &error)) << error;
  EXPECT_EQ(c.shards, 2);
  EXPECT_EQ(c.cpus, (std::vector<int>{2, 3}));
  EXPECT_EQ(c.poller, PollerKind::kPoll);
  EXPECT_EQ(c.isolation, IsolationMode::kMprotect);
  EXPECT_EQ(c.pool_size, 7u);
  for (auto* flag : {&FLAGS_config, &FLAGS_shards, &FLAGS_cpuset, &FLAGS_poller, &FLAGS_isolation}) {
    absl::SetFlag(flag, "");
  }
}

}  // namespace
}  // namespace mnv
