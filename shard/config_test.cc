// Tests of the config surface itself (shard/config.h): an app's own table, what print_toml()
// writes reads back to the same config, help lists every knob with its default, long values are
// cut short in messages, and files that are not config files (too large, a directory) are refused.
#include "shard/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace mnv {
namespace {

Config sample() {
  Config c;
  c.add_auto_int("", "workers", 0, 1, 64, "how many");
  c.add_choice("", "mode", "fast", {"fast", "safe"}, "which way");
  c.add_int("", "wait_ms", 250, 0, 10'000, "how long");
  c.add_text("", "name", "", "a name without spaces",
             [](std::string_view v, std::string* why) {
               if (v.find(' ') == std::string_view::npos) return true;
               *why = "has a space";
               return false;
             },
             "a name", /*optional=*/true);
  c.add_bool("app", "verbose", false, "say more");
  c.add_int("app", "depth", 3, 1, 9, "how deep");
  c.add_indexed("slot", "cpu", 15, 0, 63, "slot N's CPU");
  return c;
}

TEST(ConfigTest, AnAppTableReadsFromTomlAndFlags) {
  Config c = sample();
  std::string error;
  ASSERT_TRUE(c.read_toml("workers = 4\n[app]\nverbose = true\ndepth = 5\n[slot.1]\ncpu = 7\n", "t.toml", &error)) << error;
  EXPECT_EQ(c.integer("workers"), 4);
  EXPECT_TRUE(c.boolean("verbose"));
  EXPECT_EQ(c.integer("depth"), 5);
  EXPECT_EQ(c.at("depth"), "t.toml: line 4: app.depth = 5");
  ASSERT_EQ(c.indexed("slot").size(), 1u);
  EXPECT_EQ(c.indexed("slot")[0].value, 7);
  ASSERT_TRUE(c.set_flag("depth", "9", &error)) << error;
  EXPECT_EQ(c.integer("depth"), 9);
  EXPECT_EQ(c.at("depth"), "--depth=9");
  ASSERT_FALSE(c.read_toml("[app]\ndepth = 10\n", "t.toml", &error));
  EXPECT_EQ(error, "t.toml: line 2: app.depth = 10: must be an integer from 1 to 9");
  EXPECT_EQ(c.integer("depth"), 9) << "a failed read changed a value";
  ASSERT_FALSE(c.read_toml("[app]\nwait_ms = 1\n", "t.toml", &error));
  EXPECT_NE(error.find("unknown key in [app] (known: verbose, depth)"), std::string::npos) << error;
}

TEST(ConfigTest, PrintedTomlReadsBackToTheSameConfig) {
  Config c = sample();
  std::string error;
  ASSERT_TRUE(c.read_toml("workers = 2\nmode = \"safe\"\nname = \"a\\\"b\"\n[slot.3]\ncpu = 1\n", "t", &error)) << error;
  ASSERT_TRUE(c.set_flag("verbose", "", &error)) << error;
  std::string printed = c.print_toml();
  Config back = sample();
  ASSERT_TRUE(back.read_toml(printed, "printed", &error)) << error << "\n" << printed;
  EXPECT_EQ(back.print_toml(), printed);
  EXPECT_EQ(back.integer("workers"), 2);
  EXPECT_EQ(back.text("mode"), "safe");
  EXPECT_EQ(back.text("name"), "a\"b");
  EXPECT_TRUE(back.boolean("verbose"));
  EXPECT_EQ(back.indexed("slot").at(0).index, 3);
  // The defaults print and read back too ("auto", an unset optional text).
  std::string defaults = sample().print_toml();
  EXPECT_NE(defaults.find("workers = \"auto\""), std::string::npos) << defaults;
  Config again = sample();
  ASSERT_TRUE(again.read_toml(defaults, "defaults", &error)) << error << "\n" << defaults;
  EXPECT_EQ(again.print_toml(), defaults);
}

TEST(ConfigTest, HelpListsEveryKnobWithItsDefault) {
  std::string help = sample().help();
  for (const char* line : {"--workers=auto", "--mode=fast", "--wait_ms=250", "--name=\"\"", "--verbose=false",
                           "--depth=3", "[slot.N] cpu"}) {
    EXPECT_NE(help.find(line), std::string::npos) << line << "\n" << help;
  }
}

TEST(ConfigTest, LongValuesAreCutShortInMessages) {
  Config c = sample();
  std::string error;
  std::string long_value(500, 'x');
  ASSERT_FALSE(c.read_toml("mode = \"" + long_value + "\"\n", "t", &error));
  EXPECT_LT(error.size(), 160u) << error;
  EXPECT_NE(error.find("...: must be fast or safe"), std::string::npos) << error;
  ASSERT_FALSE(c.set_flag("mode", long_value, &error));
  EXPECT_LT(error.size(), 160u) << error;
}

TEST(ConfigTest, FilesThatAreNotConfigFilesAreRefused) {
  Config c = sample();
  std::string error;
  ASSERT_FALSE(c.read_file("/dev/zero", &error));  // endless: refused once past the limit
  EXPECT_NE(error.find("/dev/zero: larger than 1024 KiB: not a config file"), std::string::npos) << error;
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string tmp = dir != nullptr ? dir : "/tmp";
  ASSERT_FALSE(c.read_file(tmp, &error));
  EXPECT_EQ(error, tmp + ": is a directory, not a config file");
  std::ofstream(tmp + "/ok.toml") << "wait_ms = 5\n";
  ASSERT_TRUE(c.read_file(tmp + "/ok.toml", &error)) << error;
  EXPECT_EQ(c.integer("wait_ms"), 5);
}

TEST(ConfigTest, BoolFlags) {
  Config c = sample();
  std::string error;
  std::vector<std::string> args = {"app", "--verbose", "--depth", "4"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  CommandLine cl;
  ASSERT_TRUE(parse_command_line(static_cast<int>(argv.size()), argv.data(), &c, &cl, &error)) << error;
  EXPECT_TRUE(c.boolean("verbose"));
  EXPECT_EQ(c.integer("depth"), 4);
  args = {"app", "--noverbose", "--print_config"};
  argv.clear();
  for (std::string& a : args) argv.push_back(a.data());
  ASSERT_TRUE(parse_command_line(static_cast<int>(argv.size()), argv.data(), &c, &cl, &error)) << error;
  EXPECT_FALSE(c.boolean("verbose"));
  EXPECT_TRUE(cl.print_config);
  EXPECT_FALSE(c.set_flag("verbose", "maybe", &error));
  EXPECT_EQ(error, "--verbose=maybe: must be true or false");
}

}  // namespace
}  // namespace mnv
