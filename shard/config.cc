// shard/config.cc — the knob table, read from TOML with toml++ and from the command line, and
// written back as TOML. Every message has the form `WHERE: KEY = VALUE: WHAT IS WRONG`.
//
// Debian's libtomlplusplus is a compiled library (TOML_HEADER_ONLY=0) built with exceptions
// (its symbols live in toml::v3::ex); BUILD.bazel defines the matching TOML_* macros. Parse
// errors are caught here and turned into messages; nothing escapes the API.
#include "shard/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <toml++/toml.h>

#if !TOML_EXCEPTIONS
#error "Debian's libtomlplusplus is built with TOML_EXCEPTIONS=1; compile with exceptions on"
#endif

namespace mnv {

namespace {

constexpr std::size_t kMaxShownValue = 60;  // a value longer than this is cut short in messages

struct Knob {
  enum class Kind { kInt, kAutoInt, kChoice, kText, kBool };
  Kind kind;
  std::string table, name, help;
  std::int64_t lo = 0, hi = 0;
  std::vector<std::string> choices;
  std::string rule;  // completes "must be ..."
  Config::Check check;
  bool optional = false;
  // The default, and the value now with where it came from.
  std::int64_t default_int = 0, i = 0;
  std::string default_text, s;
  bool default_bool = false, b = false;
  std::string at;
};

struct IndexedTable {
  std::string table, key, help;
  int max_index;
  std::int64_t lo, hi;
  std::vector<Config::Indexed> entries;
};

const char* type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::none: return "nothing";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
  }
  return "an unknown type";
}

// A value cut to kMaxShownValue characters, for messages.
std::string shorten(std::string s) {
  if (s.size() > kMaxShownValue) s = s.substr(0, kMaxShownValue - 3) + "...";
  return s;
}

// A string as TOML writes it: "..." with escapes.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// A value as it would be written in the file, on one line and cut short.
std::string render(const toml::node& node) {
  if (const auto* s = node.as_string()) return shorten(quote(s->get()));
  if (const auto* i = node.as_integer()) return std::to_string(i->get());
  if (const auto* b = node.as_boolean()) return b->get() ? "true" : "false";
  if (node.is_table()) return "{...}";
  std::ostringstream os;
  node.visit([&](const auto& v) { os << v; });
  std::string out;
  for (char c : os.str()) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  return shorten(out);
}

std::string range_rule(std::int64_t lo, std::int64_t hi) {
  return "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
}

std::string rule_of(const Knob& k) {
  switch (k.kind) {
    case Knob::Kind::kInt:
      return k.rule.empty() ? range_rule(k.lo, k.hi) : "must be " + k.rule;
    case Knob::Kind::kAutoInt:
      return "must be \"auto\" or an integer from " + std::to_string(k.lo) + " to " + std::to_string(k.hi);
    case Knob::Kind::kChoice: {
      std::string out = "must be ";
      for (std::size_t j = 0; j < k.choices.size(); ++j) {
        if (j > 0) out += j + 1 == k.choices.size() ? " or " : ", ";
        out += k.choices[j];
      }
      return out;
    }
    case Knob::Kind::kText:
      return "must be " + k.rule;
    case Knob::Kind::kBool:
      return "must be true or false";
  }
  return "";
}

// Decimal integer text (optional '-'); false if not one or out of int64 range.
bool parse_int(std::string_view text, std::int64_t* out) {
  if (text.empty() || text.size() > 19) return false;
  std::size_t k = text[0] == '-' ? 1 : 0;
  if (k == text.size()) return false;
  std::int64_t v = 0;
  for (; k < text.size(); ++k) {
    if (text[k] < '0' || text[k] > '9') return false;
    v = v * 10 + (text[k] - '0');
  }
  *out = text[0] == '-' ? -v : v;
  return true;
}

std::string value_text(const Knob& k, bool defaults) {
  switch (k.kind) {
    case Knob::Kind::kInt: return std::to_string(defaults ? k.default_int : k.i);
    case Knob::Kind::kAutoInt: {
      std::int64_t v = defaults ? k.default_int : k.i;
      return v == 0 ? "\"auto\"" : std::to_string(v);
    }
    case Knob::Kind::kChoice:
    case Knob::Kind::kText: return quote(defaults ? k.default_text : k.s);
    case Knob::Kind::kBool: return (defaults ? k.default_bool : k.b) ? "true" : "false";
  }
  return "";
}

}  // namespace

struct Config::Impl {
  std::vector<Knob> knobs;
  std::vector<IndexedTable> indexed;

  Knob* find(std::string_view name) {
    for (Knob& k : knobs) {
      if (k.name == name) return &k;
    }
    return nullptr;
  }
  IndexedTable* find_indexed(std::string_view table) {
    for (IndexedTable& t : indexed) {
      if (t.table == table) return &t;
    }
    return nullptr;
  }
  bool is_plain_table(std::string_view table) const {
    return std::any_of(knobs.begin(), knobs.end(), [&](const Knob& k) { return !k.table.empty() && k.table == table; });
  }
  std::vector<std::string> tables() const {  // plain tables, in declaration order
    std::vector<std::string> out;
    for (const Knob& k : knobs) {
      if (!k.table.empty() && std::find(out.begin(), out.end(), k.table) == out.end()) out.push_back(k.table);
    }
    return out;
  }
  std::string known_in(std::string_view table) const {
    std::string out;
    for (const Knob& k : knobs) {
      if (k.table != table) continue;
      out += (out.empty() ? "" : ", ") + k.name;
    }
    if (table.empty()) {
      for (const std::string& t : tables()) out += (out.empty() ? "[" : ", [") + t + "]";
      for (const IndexedTable& t : indexed) out += (out.empty() ? "[" : ", [") + t.table + ".N]";
    }
    return out;
  }
};

namespace {

// Walks a parsed document into the knobs, collecting every problem with its line.
class Reader {
 public:
  Reader(std::string_view source, Config::Impl* impl) : source_(source), impl_(impl) {}

  void top(const toml::table& root) {
    for (auto&& [key, node] : root) {
      std::string name(key.str());
      std::string at = where(name, key, node);
      if (Knob* k = impl_->find(name); k != nullptr && k->table.empty()) {
        value(*k, at, node);
      } else if (impl_->is_plain_table(name)) {
        table(name, at, key, node);
      } else if (IndexedTable* t = impl_->find_indexed(name)) {
        indexed(*t, at, key, node);
      } else {
        problem(key, node, at + ": unknown key (known: " + impl_->known_in("") + ")");
      }
    }
  }

  bool report(std::string* error) {
    if (problems_.empty()) return true;
    std::stable_sort(problems_.begin(), problems_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string text;
    for (const auto& [line, message] : problems_) {
      if (!text.empty()) text += '\n';
      text += message;
    }
    *error = text;
    return false;
  }

 private:
  static std::uint32_t line_of(const toml::key& key, const toml::node& node) {
    std::uint32_t line = key.source().begin.line;
    return line != 0 ? line : node.source().begin.line;
  }

  // "FILE: line N: dotted.key = VALUE", or "FILE: line N: [dotted.key]" for a table header.
  std::string where(std::string_view dotted, const toml::key& key, const toml::node& node) const {
    std::string out(source_);
    out += ": line " + std::to_string(line_of(key, node)) + ": ";
    const auto* table = node.as_table();
    if (table != nullptr && !table->is_inline()) return out + "[" + shorten(std::string(dotted)) + "]";
    return out + shorten(std::string(dotted)) + " = " + render(node);
  }

  void problem(const toml::key& key, const toml::node& node, std::string message) {
    problems_.emplace_back(line_of(key, node), std::move(message));
  }
  void problem(const toml::node& node, std::string message) {
    problems_.emplace_back(node.source().begin.line, std::move(message));
  }

  void value(Knob& k, const std::string& at, const toml::node& node) {
    std::string not_type = std::string(", not ") + type_name(node.type());
    switch (k.kind) {
      case Knob::Kind::kInt:
      case Knob::Kind::kAutoInt: {
        if (const auto* i = node.as_integer()) {
          if (i->get() < k.lo || i->get() > k.hi) return problem(node, at + ": " + rule_of(k));
          k.i = i->get();
        } else if (const auto* s = node.as_string(); k.kind == Knob::Kind::kAutoInt && s != nullptr && s->get() == "auto") {
          k.i = 0;
        } else {
          bool string_ok = k.kind == Knob::Kind::kAutoInt && node.is_string();
          return problem(node, at + ": " + rule_of(k) + (string_ok ? "" : not_type));
        }
        break;
      }
      case Knob::Kind::kChoice: {
        const auto* s = node.as_string();
        if (s == nullptr || std::find(k.choices.begin(), k.choices.end(), s->get()) == k.choices.end()) {
          return problem(node, at + ": " + rule_of(k) + (s == nullptr ? not_type : ""));
        }
        k.s = s->get();
        break;
      }
      case Knob::Kind::kText: {
        const auto* s = node.as_string();
        if (s == nullptr) return problem(node, at + ": " + rule_of(k) + not_type);
        std::string why;
        if (k.check && !k.check(s->get(), &why)) return problem(node, at + ": " + why);
        k.s = s->get();
        break;
      }
      case Knob::Kind::kBool: {
        const auto* b = node.as_boolean();
        if (b == nullptr) return problem(node, at + ": " + rule_of(k) + not_type);
        k.b = b->get();
        break;
      }
    }
    k.at = at;
  }

  void table(const std::string& name, const std::string& at, const toml::key& key, const toml::node& node) {
    const auto* table = node.as_table();
    if (table == nullptr) {
      return problem(key, node, at + ": must be a table ([" + name + "] with " + impl_->known_in(name) + "), not " +
                                    type_name(node.type()));
    }
    for (auto&& [k, v] : *table) {
      std::string kname(k.str());
      std::string vat = where(name + "." + kname, k, v);
      Knob* knob = impl_->find(kname);
      if (knob != nullptr && knob->table == name) {
        value(*knob, vat, v);
      } else {
        problem(k, v, vat + ": unknown key in [" + name + "] (known: " + impl_->known_in(name) + ")");
      }
    }
  }

  void indexed(IndexedTable& t, const std::string& at, const toml::key& key, const toml::node& node) {
    const auto* table = node.as_table();
    if (table == nullptr) {
      return problem(key, node, at + ": must be tables such as [" + t.table + ".0] with " + t.key + " = N, not " +
                                    type_name(node.type()));
    }
    std::map<int, std::uint32_t> seen;  // index -> line
    for (auto&& [k, v] : *table) {
      std::string index_text(k.str());
      std::string sat = where(t.table + "." + index_text, k, v);
      int index = -1;
      if (!index_text.empty() && index_text.size() <= 4 &&
          std::all_of(index_text.begin(), index_text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        index = std::stoi(index_text);
      }
      if (index < 0 || index > t.max_index) {
        problem(k, v, sat + ": \"" + shorten(index_text) + "\" is not a " + t.table + " index (" + t.table + ".0, " +
                          t.table + ".1, ...)");
        continue;
      }
      const auto* entry = v.as_table();
      if (entry == nullptr) {
        problem(k, v, sat + ": must be a table such as [" + t.table + "." + index_text + "] with " + t.key +
                          " = N, not " + type_name(v.type()));
        continue;
      }
      if (auto it = seen.find(index); it != seen.end()) {
        problem(k, v, sat + ": " + t.table + " " + std::to_string(index) + " is already configured at line " +
                          std::to_string(it->second));
        continue;
      }
      seen[index] = line_of(k, v);
      bool found = false;
      for (auto&& [ck, cv] : *entry) {
        std::string name(ck.str());
        std::string cat = where(t.table + "." + index_text + "." + name, ck, cv);
        if (name != t.key) {
          problem(ck, cv, cat + ": unknown key in [" + t.table + "." + index_text + "] (known: " + t.key + ")");
          continue;
        }
        found = true;
        const auto* i = cv.as_integer();
        if (i == nullptr) {
          problem(cv, cat + ": " + range_rule(t.lo, t.hi) + ", not " + type_name(cv.type()));
        } else if (i->get() < t.lo || i->get() > t.hi) {
          problem(cv, cat + ": " + range_rule(t.lo, t.hi));
        } else {
          std::erase_if(t.entries, [&](const Config::Indexed& e) { return e.index == index; });
          t.entries.push_back({index, i->get(), cat});
        }
      }
      if (!found) problem(k, v, sat + ": has no " + t.key + " (write " + t.key + " = N, or remove the table)");
    }
    std::sort(t.entries.begin(), t.entries.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
  }

  std::string_view source_;
  Config::Impl* impl_;
  std::vector<std::pair<std::uint32_t, std::string>> problems_;
};

}  // namespace

Config::Config() : impl_(std::make_unique<Impl>()) {}
Config::~Config() = default;
Config::Config(Config&&) noexcept = default;
Config& Config::operator=(Config&&) noexcept = default;
Config::Config(const Config& other) : impl_(std::make_unique<Impl>(*other.impl_)) {}
Config& Config::operator=(const Config& other) {
  if (this != &other) impl_ = std::make_unique<Impl>(*other.impl_);
  return *this;
}

namespace {
Knob make_knob(Knob::Kind kind, std::string table, std::string name, std::string help) {
  Knob k;
  k.kind = kind;
  k.table = std::move(table);
  k.name = std::move(name);
  k.help = std::move(help);
  return k;
}
}  // namespace

void Config::add_int(std::string table, std::string name, std::int64_t value, std::int64_t lo, std::int64_t hi,
                     std::string help, std::string rule) {
  Knob k = make_knob(Knob::Kind::kInt, std::move(table), std::move(name), std::move(help));
  k.rule = std::move(rule);
  k.lo = lo;
  k.hi = hi;
  k.default_int = k.i = value;
  impl_->knobs.push_back(std::move(k));
}

void Config::add_auto_int(std::string table, std::string name, std::int64_t value, std::int64_t lo, std::int64_t hi,
                          std::string help) {
  Knob k = make_knob(Knob::Kind::kAutoInt, std::move(table), std::move(name), std::move(help));
  k.lo = lo;
  k.hi = hi;
  k.default_int = k.i = value;
  impl_->knobs.push_back(std::move(k));
}

void Config::add_choice(std::string table, std::string name, std::string value, std::vector<std::string> choices,
                        std::string help) {
  Knob k = make_knob(Knob::Kind::kChoice, std::move(table), std::move(name), std::move(help));
  k.choices = std::move(choices);
  k.default_text = k.s = std::move(value);
  impl_->knobs.push_back(std::move(k));
}

void Config::add_text(std::string table, std::string name, std::string value, std::string rule, Check check,
                      std::string help, bool optional) {
  Knob k = make_knob(Knob::Kind::kText, std::move(table), std::move(name), std::move(help));
  k.rule = std::move(rule);
  k.check = std::move(check);
  k.optional = optional;
  k.default_text = k.s = std::move(value);
  impl_->knobs.push_back(std::move(k));
}

void Config::add_bool(std::string table, std::string name, bool value, std::string help) {
  Knob k = make_knob(Knob::Kind::kBool, std::move(table), std::move(name), std::move(help));
  k.default_bool = k.b = value;
  impl_->knobs.push_back(std::move(k));
}

void Config::add_indexed(std::string table, std::string key, int max_index, std::int64_t lo, std::int64_t hi,
                         std::string help) {
  impl_->indexed.push_back({std::move(table), std::move(key), std::move(help), max_index, lo, hi, {}});
}

bool Config::read_toml(std::string_view text, std::string_view source, std::string* error) {
  try {
    toml::table root = toml::parse(text, source);
    Impl next = *impl_;
    Reader reader(source, &next);
    reader.top(root);
    if (!reader.report(error)) return false;
    *impl_ = std::move(next);
    return true;
  } catch (const toml::parse_error& e) {
    *error = std::string(source) + ": line " + std::to_string(e.source().begin.line) + ", column " +
             std::to_string(e.source().begin.column) + ": " + std::string(e.description());
    return false;
  } catch (const std::exception& e) {  // out of memory, mostly
    *error = std::string(source) + ": " + e.what();
    return false;
  }
}

bool Config::read_file(const std::string& path, std::string* error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    *error = path + ": is a directory, not a config file";
    return false;
  }
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      *error = path + ": cannot read: " + std::strerror(err);
      return false;
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxFileBytes) {
      ::close(fd);
      *error = path + ": larger than " + std::to_string(kMaxFileBytes / 1024) +
               " KiB: not a config file (a config is a short TOML file)";
      return false;
    }
  }
  ::close(fd);
  return read_toml(text, path, error);
}

bool Config::has(std::string_view name) const {
  return const_cast<Impl*>(impl_.get())->find(name) != nullptr;
}

bool Config::is_bool(std::string_view name) const {
  const Knob* k = const_cast<Impl*>(impl_.get())->find(name);
  return k != nullptr && k->kind == Knob::Kind::kBool;
}

bool Config::set_flag(std::string_view name, std::string_view value, std::string* error) {
  Knob* k = impl_->find(name);
  std::string at = "--" + std::string(name) + "=" + shorten(std::string(value));
  if (k == nullptr) {
    *error = at + ": unknown flag (--help lists every one)";
    return false;
  }
  auto fail = [&](const std::string& why) {
    *error = at + ": " + why;
    return false;
  };
  switch (k->kind) {
    case Knob::Kind::kInt:
    case Knob::Kind::kAutoInt: {
      std::int64_t v = 0;
      if (k->kind == Knob::Kind::kAutoInt && value == "auto") {
        k->i = 0;
        break;
      }
      if (!parse_int(value, &v) || v < k->lo || v > k->hi) return fail(rule_of(*k));
      k->i = v;
      break;
    }
    case Knob::Kind::kChoice:
      if (std::find(k->choices.begin(), k->choices.end(), value) == k->choices.end()) return fail(rule_of(*k));
      k->s = std::string(value);
      break;
    case Knob::Kind::kText: {
      std::string why;
      if (k->check && !k->check(value, &why)) return fail(why);
      k->s = std::string(value);
      break;
    }
    case Knob::Kind::kBool:
      if (value.empty() || value == "true" || value == "1") {
        k->b = true;
      } else if (value == "false" || value == "0") {
        k->b = false;
      } else {
        return fail(rule_of(*k));
      }
      break;
  }
  k->at = value.empty() && k->kind == Knob::Kind::kBool ? "--" + std::string(name) : at;
  return true;
}

namespace {
const Knob& knob(const Config::Impl& impl, std::string_view name) {
  const Knob* k = const_cast<Config::Impl&>(impl).find(name);
  if (k == nullptr) {
    std::fprintf(stderr, "mnv: config: no knob named %.*s\n", static_cast<int>(name.size()), name.data());
    std::abort();  // a programming error: the knob was never declared
  }
  return *k;
}
}  // namespace

std::int64_t Config::integer(std::string_view name) const { return knob(*impl_, name).i; }
const std::string& Config::text(std::string_view name) const { return knob(*impl_, name).s; }
bool Config::boolean(std::string_view name) const { return knob(*impl_, name).b; }
const std::string& Config::at(std::string_view name) const { return knob(*impl_, name).at; }

const std::vector<Config::Indexed>& Config::indexed(std::string_view table) const {
  static const std::vector<Indexed> none;
  const IndexedTable* t = const_cast<Impl*>(impl_.get())->find_indexed(table);
  return t != nullptr ? t->entries : none;
}

std::string Config::help() const {
  std::string out;
  for (const Knob& k : impl_->knobs) {
    std::string flag = "  --" + k.name + "=";
    if (k.kind == Knob::Kind::kBool) {
      flag += k.default_bool ? "true" : "false";
    } else if (k.kind == Knob::Kind::kAutoInt) {
      flag += k.default_int == 0 ? "auto" : std::to_string(k.default_int);
    } else if (k.kind == Knob::Kind::kInt) {
      flag += std::to_string(k.default_int);
    } else {
      flag += k.default_text.empty() ? "\"\"" : k.default_text;
    }
    if (flag.size() < 30) flag.resize(30, ' ');
    out += flag + " " + (k.table.empty() ? "" : "[" + k.table + "] ") + k.help + "\n";
  }
  for (const IndexedTable& t : impl_->indexed) {
    out += "  [" + t.table + ".N] " + t.key + " = N        " + t.help + " (config file only)\n";
  }
  return out;
}

std::string Config::print_toml() const {
  std::string out;
  auto knobs_of = [&](const std::string& table) {
    for (const Knob& k : impl_->knobs) {
      if (k.table != table) continue;
      out += "# " + k.help + "\n";
      if (k.kind == Knob::Kind::kText && k.optional && k.s.empty()) {
        out += "# " + k.name + " = (not set)\n";
      } else {
        out += k.name + " = " + value_text(k, false) + "\n";
      }
    }
  };
  knobs_of("");
  for (const std::string& table : impl_->tables()) {
    out += "\n[" + table + "]\n";
    knobs_of(table);
  }
  for (const IndexedTable& t : impl_->indexed) {
    for (const Indexed& e : t.entries) {
      out += "\n[" + t.table + "." + std::to_string(e.index) + "]\n" + t.key + " = " + std::to_string(e.value) + "\n";
    }
  }
  return out;
}

bool parse_command_line(int argc, char** argv, Config* config, CommandLine* out, std::string* error) {
  CommandLine cl;
  struct Flag {
    std::string name, value;
  };
  std::vector<Flag> flags;
  for (int a = 1; a < argc; ++a) {
    std::string_view arg = argv[a];
    if (arg.size() < 3 || arg.substr(0, 2) != "--") {
      *error = "unexpected argument \"" + shorten(std::string(arg)) + "\" (flags are --NAME=VALUE; --help lists them)";
      return false;
    }
    arg.remove_prefix(2);
    std::size_t eq = arg.find('=');
    std::string name(arg.substr(0, eq));
    bool has_value = eq != std::string_view::npos;
    std::string value = has_value ? std::string(arg.substr(eq + 1)) : "";
    if (name == "help" || name == "helpfull") {
      cl.help = true;
      continue;
    }
    if (name == "print_config") {
      cl.print_config = true;
      continue;
    }
    bool takes_value = name == "config" || (config->has(name) && !config->is_bool(name));
    if (!has_value && !config->has(name) && name.size() > 2 && name.substr(0, 2) == "no" && config->is_bool(name.substr(2))) {
      flags.push_back({name.substr(2), "false"});
      continue;
    }
    if (!has_value && takes_value) {
      if (a + 1 >= argc) {
        *error = "--" + name + ": needs a value (--" + name + "=VALUE)";
        return false;
      }
      value = argv[++a];
    }
    if (name == "config") {
      cl.config_path = value;
      if (value.empty()) {
        *error = "--config=: needs a file name";
        return false;
      }
      continue;
    }
    flags.push_back({name, value});
  }
  *out = cl;
  if (cl.help) return true;
  Config next = *config;
  if (!cl.config_path.empty() && !next.read_file(cl.config_path, error)) return false;
  for (const Flag& f : flags) {
    if (!next.set_flag(f.name, f.value, error)) return false;
  }
  *config = std::move(next);
  return true;
}

}  // namespace mnv
