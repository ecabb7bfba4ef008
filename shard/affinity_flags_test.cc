// Tests of the shard knobs as flags (shard/config.h parse_command_line): without a flag the
// --config file (or the defaults without one) applies, a given flag wins over the file and over
// what an app set before, and a bad flag value is an error naming the flag. Runs against a
// made-up Topology; files go under $TEST_TMPDIR.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "shard/affinity_config.h"
#include "shard/config.h"

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

// The shard knobs, as `app` set them first (the app's own values), then the command line.
bool load(const Topology& topology, const std::vector<std::pair<std::string, std::string>>& app,
          std::vector<std::string> args, AffinityConfig* out, std::string* error) {
  Config config;
  add_affinity_knobs(&config);
  for (const auto& [name, value] : app) {
    if (!config.set_flag(name, value, error)) return false;
  }
  args.insert(args.begin(), "app");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  CommandLine cl;
  if (!parse_command_line(static_cast<int>(argv.size()), argv.data(), &config, &cl, error)) return false;
  return resolve_affinity(affinity_spec(config), topology, out, error);
}

TEST(AffinityFlagsTest, FlagsLoadTheFileAndOverrideIt) {
  auto topology = fake_machine();
  std::string path = write_file("shards = 1\npoller = \"epoll\"\nisolation = \"strict\"\n[service]\nheap_pages = 2\n");
  AffinityConfig c;
  std::string error;
  // What the app sets is a default the file wins over; the flags win over both.
  std::vector<std::pair<std::string, std::string>> app = {{"heap_pages", "32"}, {"poller", "poll"}};
  ASSERT_TRUE(load(*topology, app, {"--config=" + path, "--heap_pages=32", "--poller=poll"}, &c, &error)) << error;
  EXPECT_EQ(c.shards, 1);
  EXPECT_EQ(c.poller, PollerKind::kPoll);  // the flag's value over the file's
  EXPECT_EQ(c.isolation, IsolationMode::kStrict);
  EXPECT_EQ(c.heap_pages, 32u);

  ASSERT_TRUE(load(*topology, app,
                   {"--config=" + path, "--shards=auto", "--cpuset=4-5", "--poller=epoll", "--isolation=off",
                    "--shard_mode=processes"},
                   &c, &error))
      << error;
  EXPECT_EQ(c.shards, 2);
  EXPECT_EQ(c.cpus, (std::vector<int>{4, 5}));
  EXPECT_EQ(c.poller, PollerKind::kEpoll);  // the flag beats the app's value
  EXPECT_EQ(c.isolation, IsolationMode::kOff);
  EXPECT_EQ(c.shard_mode, ShardMode::kProcesses);

  ASSERT_FALSE(load(*topology, app, {"--config=" + path, "--shards=0"}, &c, &error));
  EXPECT_NE(error.find("--shards=0"), std::string::npos) << error;

  ASSERT_TRUE(load(*topology, {}, {}, &c, &error)) << error;
  EXPECT_EQ(c.shards, 6);  // no file, no flags: defaults
  EXPECT_EQ(c.poller, PollerKind::kIoUring);
}

// The flag names an app's users type, in both forms (--NAME=VALUE and --NAME VALUE).
TEST(AffinityFlagsTest, ParsedFromACommandLine) {
  auto topology = fake_machine();
  std::string path = write_file("shards = 1\n[service]\npool_size = 7\n");
  AffinityConfig c;
  std::string error;
  ASSERT_TRUE(load(*topology, {}, {"--config", path, "--shards=2", "--cpuset=2-3", "--poller", "poll", "--isolation=mprotect"},
                   &c, &error))
      << error;
  EXPECT_EQ(c.shards, 2);
  EXPECT_EQ(c.cpus, (std::vector<int>{2, 3}));
  EXPECT_EQ(c.poller, PollerKind::kPoll);
  EXPECT_EQ(c.isolation, IsolationMode::kMprotect);
  EXPECT_EQ(c.pool_size, 7u);
}

TEST(AffinityFlagsTest, UnknownFlagsAndStrayArgumentsAreErrors) {
  auto topology = fake_machine();
  AffinityConfig c;
  std::string error;
  ASSERT_FALSE(load(*topology, {}, {"--sharts=2"}, &c, &error));
  EXPECT_EQ(error, "--sharts=2: unknown flag (--help lists every one)");
  ASSERT_FALSE(load(*topology, {}, {"shards=2"}, &c, &error));
  EXPECT_NE(error.find("unexpected argument \"shards=2\""), std::string::npos) << error;
  ASSERT_FALSE(load(*topology, {}, {"--poller"}, &c, &error));
  EXPECT_NE(error.find("--poller: needs a value"), std::string::npos) << error;
}

}  // namespace
}  // namespace mnv
