// shard/config.h — one config surface: every knob is a TOML key and a command-line flag of the
// same name, declared once with its default, its rule and its help.
//
// Why: an app's users set a knob in the config file or on the command line, the same way, with
// one unit convention (a duration is an integer number of milliseconds and its name ends in
// `_ms`). The server skeleton (shard/server.h) declares its own knobs (top level, [service],
// [shard.N]); an app adds a table of its own ([echo], [http], ...) the same way. A knob's name is
// unique across tables, so the flag --NAME needs no table. `--help` and `--print_config` come
// from the same declarations, and what print_toml() writes, read_toml() reads back.
//
// Nothing here throws, aborts, or depends on the runtime: every reader returns false with a
// message of the form `WHERE: KEY = VALUE: WHAT IS WRONG`, WHERE being `FILE: line N` or the flag
// (`--KEY=VALUE`), the value cut short when long. A failed read changes nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mnv {

class Config {
 public:
  // Checks a text value; false with *why (e.g. "at character 3: expected a CPU number").
  using Check = std::function<bool(std::string_view value, std::string* why)>;
  // A config file larger than this is refused (a config is a few hundred bytes).
  static constexpr std::size_t kMaxFileBytes = 1 << 20;

  Config();
  ~Config();
  Config(Config&&) noexcept;
  Config& operator=(Config&&) noexcept;
  Config(const Config&);
  Config& operator=(const Config&);

  // Declarations. `table` is "" for the top level. Each knob's default is the value given here.
  // An integer from lo to hi; `rule` (optional) completes "must be ..." in place of "an integer
  // from LO to HI", e.g. "0 (off) or more, up to 60000".
  void add_int(std::string table, std::string name, std::int64_t value, std::int64_t lo, std::int64_t hi,
               std::string help, std::string rule = "");
  // "auto" (stored as 0) or an integer from lo to hi (lo >= 1).
  void add_auto_int(std::string table, std::string name, std::int64_t value, std::int64_t lo, std::int64_t hi,
                    std::string help);
  // One string of `choices`.
  void add_choice(std::string table, std::string name, std::string value, std::vector<std::string> choices,
                  std::string help);
  // A string that `check` accepts; `optional`: the empty default means "not set" (printed as a
  // comment). `rule` completes "must be ..." for a value of the wrong type.
  void add_text(std::string table, std::string name, std::string value, std::string rule, Check check,
                std::string help, bool optional = false);
  void add_bool(std::string table, std::string name, bool value, std::string help);
  // Tables [TABLE.N] (N a shard index from 0 to max_index) holding one integer `key` from lo to hi.
  void add_indexed(std::string table, std::string key, int max_index, std::int64_t lo, std::int64_t hi,
                   std::string help);

  // Reads TOML text; `source` (the path, usually) starts every message. On error *error lists
  // every problem, one per line, in line order.
  bool read_toml(std::string_view text, std::string_view source, std::string* error);
  // Reads a file (a regular file or a pipe, at most kMaxFileBytes; "-" is not special).
  bool read_file(const std::string& path, std::string* error);
  // A flag: `value` as typed after --NAME= (for a bool, "" means true).
  bool set_flag(std::string_view name, std::string_view value, std::string* error);
  bool has(std::string_view name) const;
  bool is_bool(std::string_view name) const;

  // Values by name (the knob must exist, of that kind).
  std::int64_t integer(std::string_view name) const;  // add_int, add_auto_int (0: auto)
  const std::string& text(std::string_view name) const;  // add_choice, add_text
  bool boolean(std::string_view name) const;
  struct Indexed {
    int index;
    std::int64_t value;
    std::string at;
  };
  const std::vector<Indexed>& indexed(std::string_view table) const;  // in index order
  // Where a knob's value came from: "FILE: line N: key = VALUE" or "--key=VALUE"; "" while the
  // default applies.
  const std::string& at(std::string_view name) const;

  // One line per knob: --NAME=DEFAULT  [TABLE] and what it does.
  std::string help() const;
  // The effective values as a TOML file read_toml() accepts.
  std::string print_toml() const;

  struct Impl;  // (the knob table, in config.cc)

 private:
  std::unique_ptr<Impl> impl_;
};

// What the command line asked for besides knobs.
struct CommandLine {
  bool help = false;          // --help
  bool print_config = false;  // --print_config
  std::string config_path;    // --config=FILE
};

// Parses argv: --config=FILE is read first wherever it stands, then every --NAME=VALUE (or
// --NAME VALUE; a bool may stand alone, or as --noNAME) in order, each winning over the file.
// --help and --print_config are noted in *out. Unknown flags and stray arguments are errors.
bool parse_command_line(int argc, char** argv, Config* config, CommandLine* out, std::string* error);

}  // namespace mnv
