// Tests of the affinity config: a valid file, defaults, every kind of bad value (each message
// must name the key, the value and `line N`), TOML syntax errors, command-line overrides winning
// over the file, "auto" resolving to the allowed CPUs (also in a thread restricted to one CPU),
// and the shipped sample file. Machine-dependent errors (absent, offline and disallowed CPUs,
// SMT and NUMA placement) use a made-up Topology; "auto" and the sample use the real one. Files
// are written under $TEST_TMPDIR.
#include "shard/affinity_config.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <string>
#include <thread>
#include <vector>

#include "runtime/kernel.h"
#include "shard/server.h"

namespace mnv {
namespace {

std::string write_file(const std::string& text) {
  static int counter = 0;
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/affinity_" + std::to_string(++counter) + ".toml";
  std::ofstream(path) << text;
  return path;
}

// 8 CPUs, 4 cores of 2 SMT threads (siblings 0/4, 1/5, 2/6, 3/7), two NUMA nodes (cores 0-1 on
// node 0, 2-3 on node 1); CPU 6 is offline and CPU 7 is not allowed to this process.
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

std::unique_ptr<Topology> real_machine() {
  std::string error;
  auto t = Topology::discover(&error);
  EXPECT_NE(t, nullptr) << error;
  return t;
}

bool load(const std::string& text, const Topology& topology, AffinityConfig* out, std::string* error,
          const AffinityOverrides& overrides = {}) {
  return load_affinity_config(write_file(text), overrides, topology, out, error);
}

AffinityConfig load_ok(const std::string& text, const Topology& topology, const AffinityOverrides& overrides = {}) {
  AffinityConfig config;
  std::string error;
  EXPECT_TRUE(load(text, topology, &config, &error, overrides)) << text << "\n=> " << error;
  return config;
}

// Loads `text` against the fake machine, expects failure, and checks the message holds every
// part in `parts` (key, value, "line N", reason).
void expect_error(const std::string& text, std::initializer_list<std::string> parts,
                  const AffinityOverrides& overrides = {}) {
  auto topology = fake_machine();
  AffinityConfig config;
  config.shards = -7;
  std::string error;
  ASSERT_FALSE(load(text, *topology, &config, &error, overrides)) << text;
  EXPECT_EQ(config.shards, -7) << "a failed load wrote its output";
  for (const std::string& part : parts) {
    EXPECT_NE(error.find(part), std::string::npos) << "message lacks \"" << part << "\"\n  file:\n"
                                                   << text << "\n  message: " << error;
  }
}

TEST(AffinityConfigTest, ReadsAValidFile) {
  auto topology = fake_machine();
  AffinityConfig c = load_ok(R"(
shards = 3
cpuset = "0-3"
poller = "epoll"
isolation = "mprotect"
shard_mode = "processes"
grace_ms = 500
[service]
heap_pages = 4
pool_size = 100
[shard.2]
cpu = 1
)",
                             *topology);
  EXPECT_EQ(c.shards, 3);
  EXPECT_EQ(format_cpuset(c.cpuset), "0-3");
  // Shard 2 is pinned to CPU 1; shards 0 and 1 get distinct cores of one node: 0 and 2 are
  // cores 0 and 2 on different nodes, so the node with two free cores (node 1: CPUs 2, 3) wins.
  EXPECT_EQ(c.cpus, (std::vector<int>{2, 3, 1}));
  EXPECT_EQ(c.poller, PollerKind::kEpoll);
  EXPECT_EQ(c.isolation, IsolationMode::kMprotect);
  EXPECT_EQ(c.shard_mode, ShardMode::kProcesses);
  EXPECT_EQ(c.grace_ms, 500);
  EXPECT_EQ(c.heap_pages, 4u);
  EXPECT_EQ(c.pool_size, 100u);
}

TEST(AffinityConfigTest, EmptyFileGivesTheDefaults) {
  auto topology = fake_machine();
  AffinityConfig c = load_ok("# nothing\n", *topology);
  EXPECT_EQ(c.shards, 6);  // auto: CPUs 0-5 (6 offline, 7 not allowed)
  EXPECT_EQ(format_cpuset(c.cpuset), "0-5");
  // Distinct cores first (0-3), then siblings on the first-filled node (4, 5 on node 0).
  EXPECT_EQ(c.cpus, (std::vector<int>{0, 1, 4, 5, 2, 3}));
  EXPECT_EQ(c.poller, PollerKind::kIoUring);
  EXPECT_EQ(c.isolation, IsolationMode::kOff);
  EXPECT_EQ(c.shard_mode, ShardMode::kAuto);
  EXPECT_EQ(c.grace_ms, 2000);
  EXPECT_EQ(c.heap_pages, 8u);
  EXPECT_EQ(c.pool_size, 8192u);
}

TEST(AffinityConfigTest, NoFileAtAllGivesTheDefaults) {
  auto topology = fake_machine();
  AffinityConfig c;
  std::string error;
  ASSERT_TRUE(load_affinity_config("", {}, *topology, &c, &error)) << error;
  EXPECT_EQ(c.shards, 6);
}

TEST(AffinityConfigTest, EveryShardGetsADistinctAllowedCpu) {
  auto topology = fake_machine();
  for (int n = 1; n <= 6; n++) {
    AffinityConfig c = load_ok("shards = " + std::to_string(n) + "\n", *topology);
    ASSERT_EQ(static_cast<int>(c.cpus.size()), n);
    CpuSet used;
    for (int cpu : c.cpus) {
      EXPECT_TRUE(topology->allowed().contains(cpu)) << cpu;
      EXPECT_TRUE(used.add(cpu));
    }
    EXPECT_EQ(used.count(), n);
  }
}

TEST(AffinityConfigTest, UnknownKeys) {
  expect_error("shards = 2\nsharts = 4\n", {"line 2", "sharts = 4", "unknown key"});
  expect_error("[servic]\nheap_pages = 8\n", {"line 1", "[servic]", "unknown key"});
  expect_error("[service]\nheap_pages = 8\nheap_page = 9\n", {"line 3", "service.heap_page = 9", "unknown key in [service]"});
  expect_error("[shard.0]\ncpu = 1\ncore = 2\n", {"line 3", "shard.0.core = 2", "unknown key in [shard.0]"});
  expect_error("service.pool = 5\n", {"line 1", "service.pool = 5", "unknown key"});
}

TEST(AffinityConfigTest, WrongTypes) {
  expect_error("shards = true\n", {"line 1", "shards = true", "must be \"auto\" or an integer", "not a boolean"});
  expect_error("\nshards = 2.5\n", {"line 2", "shards = 2.5", "not a floating-point number"});
  expect_error("cpuset = 3\n", {"line 1", "cpuset = 3", "must be a string", "not an integer"});
  expect_error("cpuset = [0, 1]\n", {"line 1", "cpuset = [", "not an array"});
  expect_error("poller = 1\n", {"line 1", "poller = 1", "must be io_uring, epoll or poll", "not an integer"});
  expect_error("isolation = false\n", {"line 1", "isolation = false", "must be off, mprotect, strict or pkeys"});
  expect_error("shard_mode = 2\n", {"line 1", "shard_mode = 2", "must be auto, threads or processes", "not an integer"});
  expect_error("grace_ms = \"2000\"\n", {"line 1", "grace_ms = \"2000\"", "must be an integer", "not a string"});
  expect_error("[service]\nheap_pages = 1.5\n", {"line 2", "service.heap_pages = 1.5", "not a floating-point number"});
  expect_error("[service]\npool_size = 1979-05-27\n", {"line 2", "service.pool_size = 1979-05-27", "not a date"});
  expect_error("[shard.0]\ncpu = \"1\"\n", {"line 2", "shard.0.cpu = \"1\"", "must be an integer", "not a string"});
  expect_error("service = 3\n", {"line 1", "service = 3", "must be a table", "not an integer"});
  expect_error("shard = 1\n", {"line 1", "shard = 1", "must be tables", "not an integer"});
  expect_error("shard.0 = 5\n", {"line 1", "shard.0 = 5", "must be a table", "not an integer"});
}

TEST(AffinityConfigTest, BadShardCounts) {
  expect_error("shards = 0\n", {"line 1", "shards = 0", "must be \"auto\" or an integer from 1 to 1024"});
  expect_error("shards = -2\n", {"line 1", "shards = -2", "from 1 to 1024"});
  expect_error("shards = 5000\n", {"line 1", "shards = 5000", "from 1 to 1024"});
  expect_error("shards = \"many\"\n", {"line 1", "shards = \"many\"", "must be \"auto\""});
  expect_error("shards = \"4\"\n", {"line 1", "shards = \"4\"", "must be \"auto\""});
  expect_error("shards = 7\n", {"line 1", "shards = 7", "more shards than CPUs",
                                "the CPUs this process may use (0-5) has 6"});
  expect_error("shards = 3\ncpuset = \"0-1\"\n",
               {"line 1", "shards = 3", "more shards than CPUs", "the cpuset 0-1", "line 2: cpuset = \"0-1\"", "has 2"});
}

TEST(AffinityConfigTest, BadCpusets) {
  expect_error("cpuset = \"0-x\"\n", {"line 1", "cpuset = \"0-x\"", "at character 3: expected a CPU number, found 'x'"});
  expect_error("cpuset = \"\"\n", {"line 1", "cpuset = \"\"", "empty CPU list"});
  expect_error("cpuset = \"3-1\"\n", {"line 1", "cpuset = \"3-1\"", "range 3-1 is reversed"});
  expect_error("cpuset = \"0-2000\"\n", {"line 1", "cpuset = \"0-2000\"", "beyond the largest supported CPU"});
  expect_error("cpuset = \"0-9\"\n", {"line 1", "cpuset = \"0-9\"", "CPUs 8-9 do not exist on this machine (it has CPUs 0-7)"});
  expect_error("cpuset = \"12\"\n", {"line 1", "cpuset = \"12\"", "CPU 12 does not exist"});
  expect_error("\ncpuset = \"5-6\"\n", {"line 2", "cpuset = \"5-6\"", "CPU 6 is offline (online: 0-5,7)"});
  expect_error("cpuset = \"0,7\"\n",
               {"line 1", "cpuset = \"0,7\"", "CPU 7 is outside the CPUs this process may use (0-5;"});
}

TEST(AffinityConfigTest, BadPollerAndIsolation) {
  expect_error("poller = \"kqueue\"\n", {"line 1", "poller = \"kqueue\"", "must be io_uring, epoll or poll"});
  expect_error("poller = \"IO_URING\"\n", {"line 1", "poller = \"IO_URING\""});
  expect_error("shard_mode = \"fork\"\n", {"line 1", "shard_mode = \"fork\"", "must be auto, threads or processes"});
  expect_error("isolation = \"full\"\n", {"line 1", "isolation = \"full\"", "must be off, mprotect, strict or pkeys"});
}

TEST(AffinityConfigTest, BadRanges) {
  expect_error("grace_ms = -1\n", {"line 1", "grace_ms = -1", "must be an integer from 0 to 3600000"});
  expect_error("[service]\nheap_pages = 0\n", {"line 2", "service.heap_pages = 0", "from 1 to 65536"});
  expect_error("[service]\npool_size = 99999999999\n", {"line 2", "service.pool_size = 99999999999", "from 1 to 16777216"});
  expect_error("[shard.0]\ncpu = -1\n", {"line 2", "shard.0.cpu = -1", "from 0 to 1023"});
}

TEST(AffinityConfigTest, BadShardOverrides) {
  // A CPU outside the cpuset.
  expect_error("cpuset = \"0-1\"\n[shard.0]\ncpu = 3\n",
               {"line 3", "shard.0.cpu = 3", "CPU 3 is not in the cpuset 0-1", "line 1: cpuset"});
  // Outside the default set (CPU 7 is not allowed), absent, offline.
  expect_error("[shard.0]\ncpu = 7\n", {"line 2", "shard.0.cpu = 7", "not in the CPUs this process may use (0-5)"});
  expect_error("[shard.0]\ncpu = 100\n", {"line 2", "shard.0.cpu = 100", "CPU 100 does not exist"});
  expect_error("[shard.0]\ncpu = 6\n", {"line 2", "shard.0.cpu = 6", "CPU 6 is offline"});
  // A shard index >= shards.
  expect_error("shards = 2\n[shard.2]\ncpu = 0\n",
               {"line 3", "shard.2.cpu = 0", "there is no shard 2 (shards = 2, so shard indexes are 0 to 1)"});
  expect_error("cpuset = \"0-1\"\n[shard.5]\ncpu = 0\n", {"line 3", "shard.5.cpu = 0", "shards = \"auto\" = 2"});
  // The same CPU for two shards.
  expect_error("[shard.0]\ncpu = 1\n\n[shard.1]\ncpu = 1\n",
               {"line 5", "shard.1.cpu = 1", "CPU 1 is already shard 0's", "line 2: shard.0.cpu = 1"});
  // Not a shard index; no cpu; the same shard twice.
  expect_error("[shard.x]\ncpu = 1\n", {"line 1", "[shard.x]", "\"x\" is not a shard index"});
  expect_error("[shard.-1]\ncpu = 1\n", {"line 1", "[shard.-1]", "not a shard index"});
  expect_error("[shard.0]\n", {"line 1", "[shard.0]", "has no cpu"});
  expect_error("[shard.0]\ncpu = 1\n[shard.00]\ncpu = 2\n", {"line 3", "[shard.00]", "shard 0 is already configured at line 1"});
}

TEST(AffinityConfigTest, TomlSyntaxErrorsNameTheLine) {
  expect_error("shards = 2\npoller = \n", {"line 2", "column"});
  expect_error("shards = 2\nshards = 3\n", {"line 2", "shards"});
  expect_error("[service\n", {"line 1"});
  expect_error("cpuset = \"0-1\n", {"line 1"});
}

TEST(AffinityConfigTest, ReportsEveryProblemInLineOrder) {
  auto topology = fake_machine();
  AffinityConfig c;
  std::string error;
  ASSERT_FALSE(load("zeta = 1\nshards = 0\npoller = \"x\"\nalpha = 2\n", *topology, &c, &error));
  std::string path_free = error;
  std::size_t a = error.find("line 1: zeta"), b = error.find("line 2: shards"), p = error.find("line 3: poller"),
              d = error.find("line 4: alpha");
  ASSERT_NE(a, std::string::npos) << error;
  ASSERT_NE(b, std::string::npos) << error;
  ASSERT_NE(p, std::string::npos) << error;
  ASSERT_NE(d, std::string::npos) << error;
  EXPECT_LT(a, b);
  EXPECT_LT(b, p);
  EXPECT_LT(p, d);
}

TEST(AffinityConfigTest, MessagesStartWithTheFileName) {
  auto topology = fake_machine();
  std::string path = write_file("shards = 0\n");
  AffinityConfig c;
  std::string error;
  ASSERT_FALSE(load_affinity_config(path, {}, *topology, &c, &error));
  EXPECT_EQ(error, path + ": line 1: shards = 0: must be \"auto\" or an integer from 1 to 1024");
}

TEST(AffinityConfigTest, MissingFile) {
  auto topology = fake_machine();
  AffinityConfig c;
  std::string error;
  ASSERT_FALSE(load_affinity_config("/nonexistent/affinity.toml", {}, *topology, &c, &error));
  EXPECT_EQ(error, "/nonexistent/affinity.toml: cannot open: No such file or directory");
}

TEST(AffinityConfigTest, PkeysIsRefusedWhereTheCpuHasNone) {
  std::string why;
  if (Kernel::isolation_available(IsolationMode::kPkeys, &why)) GTEST_SKIP() << "this CPU has pkeys";
  expect_error("isolation = \"pkeys\"\n", {"line 1", "isolation", "pkeys isolation is not available here"});
}

TEST(AffinityConfigTest, OverridesWinOverTheFile) {
  auto topology = fake_machine();
  const std::string file = R"(shards = 1
cpuset = "0"
poller = "epoll"
isolation = "mprotect"
grace_ms = 100
[service]
heap_pages = 4
pool_size = 10
)";
  AffinityOverrides o;
  o.shards = "2";
  o.cpuset = "2-3";
  o.poller = "poll";
  o.isolation = "strict";  // (pkeys would be refused on CPUs without protection keys)
  o.shard_mode = "threads";
  o.grace_ms = 0;
  o.heap_pages = 16;
  o.pool_size = 100;
  AffinityConfig c = load_ok(file, *topology, o);
  EXPECT_EQ(c.shards, 2);
  EXPECT_EQ(format_cpuset(c.cpuset), "2-3");
  EXPECT_EQ(c.cpus, (std::vector<int>{2, 3}));
  EXPECT_EQ(c.poller, PollerKind::kPoll);
  EXPECT_EQ(c.isolation, IsolationMode::kStrict);
  EXPECT_EQ(c.shard_mode, ShardMode::kThreads);
  EXPECT_EQ(c.grace_ms, 0);
  EXPECT_EQ(c.heap_pages, 16u);
  EXPECT_EQ(c.pool_size, 100u);

  // Only what is given changes.
  AffinityOverrides just_shards;
  just_shards.shards = "auto";
  c = load_ok(file, *topology, just_shards);
  EXPECT_EQ(c.shards, 1);  // auto over the file's cpuset "0"
  EXPECT_EQ(c.poller, PollerKind::kEpoll);
  EXPECT_EQ(c.heap_pages, 4u);
}

TEST(AffinityConfigTest, BadOverridesNameTheFlag) {
  auto with = [](auto set) {
    AffinityOverrides o;
    set(o);
    return o;
  };
  expect_error("", {"--shards=0", "must be \"auto\" or an integer"}, with([](auto& o) { o.shards = "0"; }));
  expect_error("", {"--shards=-1"}, with([](auto& o) { o.shards = "-1"; }));
  expect_error("", {"--shards=two"}, with([](auto& o) { o.shards = "two"; }));
  expect_error("", {"--shards=9", "more shards than CPUs"}, with([](auto& o) { o.shards = "9"; }));
  expect_error("", {"--cpuset=0-", "at character 3"}, with([](auto& o) { o.cpuset = "0-"; }));
  expect_error("", {"--cpuset=7", "outside the CPUs this process may use"}, with([](auto& o) { o.cpuset = "7"; }));
  expect_error("", {"--poller=kqueue", "io_uring, epoll or poll"}, with([](auto& o) { o.poller = "kqueue"; }));
  expect_error("", {"--isolation=on", "off, mprotect"}, with([](auto& o) { o.isolation = "on"; }));
  expect_error("", {"--shard_mode=fork", "auto, threads or processes"}, with([](auto& o) { o.shard_mode = "fork"; }));
  expect_error("", {"--heap_pages=0", "from 1 to 65536"}, with([](auto& o) { o.heap_pages = 0; }));
  expect_error("", {"--pool_size=-5"}, with([](auto& o) { o.pool_size = -5; }));
  expect_error("", {"--grace_ms=4000000"}, with([](auto& o) { o.grace_ms = 4000000; }));
  // An override can make the file's shard table wrong: the message names the file's line.
  expect_error("[shard.1]\ncpu = 3\n", {"line 2", "shard.1.cpu = 3", "there is no shard 1", "shards = 1"},
               with([](auto& o) { o.shards = "1"; }));
  expect_error("[shard.0]\ncpu = 3\n", {"line 2", "shard.0.cpu = 3", "not in the cpuset 0-1 (--cpuset=0-1)"},
               with([](auto& o) { o.cpuset = "0-1"; }));
}

TEST(AffinityConfigTest, FailedOverridesLeaveTheSpecAlone) {
  AffinitySpec spec;
  std::string error;
  ASSERT_TRUE(parse_affinity_toml("shards = 2\npoller = \"epoll\"\n", "t.toml", &spec, &error)) << error;
  AffinityOverrides o;
  o.shards = "3";
  o.poller = "bogus";
  EXPECT_FALSE(apply_overrides(o, &spec, &error));
  EXPECT_EQ(spec.shards, 2);
  EXPECT_EQ(spec.poller, PollerKind::kEpoll);
  EXPECT_EQ(spec.shards_at, "t.toml: line 1: shards = 2");
}

TEST(AffinityConfigTest, AutoIsTheAllowedCpuCountOfThisMachine) {
  auto topology = real_machine();
  ASSERT_NE(topology, nullptr);
  AffinityConfig c = load_ok("shards = \"auto\"\n", *topology);
  EXPECT_EQ(c.shards, topology->allowed().count());
  EXPECT_EQ(c.cpuset, topology->allowed());
  CpuSet used;
  for (int cpu : c.cpus) used.add(cpu);
  EXPECT_EQ(used, topology->allowed());
}

TEST(AffinityConfigTest, AutoInAThreadRestrictedToOneCpu) {
  auto full = real_machine();
  ASSERT_NE(full, nullptr);
  int only = full->allowed().to_vector().back();
  AffinityConfig c;
  std::string error;
  bool ok = false;
  std::thread([&] {
    cpu_set_t mask;
    CPU_ZERO(&mask);
    CPU_SET(only, &mask);
    ASSERT_EQ(sched_setaffinity(0, sizeof mask, &mask), 0);
    auto t = Topology::discover(&error);
    if (t == nullptr) return;
    ok = load(R"(shards = "auto")", *t, &c, &error);
    if (!ok || full->allowed().count() < 2) return;
    // Naming another CPU is refused with the reason.
    AffinityConfig other;
    std::string why;
    if (load("cpuset = \"" + format_cpuset(full->allowed()) + "\"\n", *t, &other, &why)) {
      error = "a cpuset beyond the thread's affinity was accepted";
      ok = false;
    } else if (why.find("outside the CPUs this process may use (" + std::to_string(only) + ";") == std::string::npos) {
      error = "unexpected message: " + why;
      ok = false;
    }
  }).join();
  ASSERT_TRUE(ok) << error;
  EXPECT_EQ(c.shards, 1);
  EXPECT_EQ(c.cpus, std::vector<int>{only});
}

TEST(AffinityConfigTest, SampleFileParsesAndFitsThisMachine) {
  auto topology = real_machine();
  ASSERT_NE(topology, nullptr);
  // The sample is a whole server config (shard/server.h): the shard knobs and the others.
  Config config;
  add_server_knobs(&config);
  std::string error;
  ASSERT_TRUE(config.read_file("shard/sample_affinity.toml", &error)) << error;
  AffinitySpec spec = affinity_spec(config);
  EXPECT_EQ(spec.shards, 0);  // auto
  EXPECT_FALSE(spec.cpuset.has_value());
  AffinityConfig c;
  ASSERT_TRUE(resolve_affinity(spec, *topology, &c, &error)) << error;
  EXPECT_EQ(c.shards, topology->allowed().count());
  EXPECT_EQ(c.poller, PollerKind::kIoUring);
  EXPECT_EQ(c.isolation, IsolationMode::kOff);
  EXPECT_EQ(c.grace_ms, 2000);
  EXPECT_EQ(c.heap_pages, 8u);
  EXPECT_EQ(c.pool_size, 8192u);
}

TEST(AffinityConfigTest, IsolationNames) {
  for (IsolationMode mode : {IsolationMode::kOff, IsolationMode::kMprotect, IsolationMode::kStrict, IsolationMode::kPkeys}) {
    IsolationMode parsed;
    ASSERT_TRUE(parse_isolation(isolation_name(mode), &parsed));
    EXPECT_EQ(parsed, mode);
  }
  IsolationMode parsed;
  EXPECT_FALSE(parse_isolation("", &parsed));
  EXPECT_FALSE(parse_isolation("OFF", &parsed));
}

TEST(AffinityConfigTest, ShardModeNames) {
  for (ShardMode mode : {ShardMode::kAuto, ShardMode::kThreads, ShardMode::kProcesses}) {
    ShardMode parsed;
    ASSERT_TRUE(parse_shard_mode(shard_mode_name(mode), &parsed));
    EXPECT_EQ(parsed, mode);
  }
  ShardMode parsed;
  EXPECT_FALSE(parse_shard_mode("", &parsed));
  EXPECT_FALSE(parse_shard_mode("process", &parsed));
}

}  // namespace
}  // namespace mnv
