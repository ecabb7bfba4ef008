// shard/affinity_config.cc — reading the affinity TOML file with toml++, command-line overrides,
// and resolving shard count and CPUs against the machine. Every message has the form
// `WHERE: KEY = VALUE: WHAT IS WRONG`, WHERE being `FILE: line N` or a flag.
//
// Debian's libtomlplusplus is a compiled library (TOML_HEADER_ONLY=0) built with exceptions
// (its symbols live in toml::v3::ex); BUILD.bazel defines the matching TOML_* macros. Parse
// errors are caught here and turned into messages; nothing escapes the API.
#include "shard/affinity_config.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <map>
#include <sstream>
#include <toml++/toml.h>

#include "runtime/kernel.h"

// The library's symbols are toml::v3::ex::parse etc.: it was built with exceptions, so this file
// must see the same API (toml::parse throws toml::parse_error) or it would not link.
#if !TOML_EXCEPTIONS
#error "Debian's libtomlplusplus is built with TOML_EXCEPTIONS=1; compile with exceptions on"
#endif

namespace mnv {

namespace {

constexpr std::int64_t kMaxGraceMs = 3'600'000;
constexpr std::int64_t kMaxHeapPages = 65'536;
constexpr std::int64_t kMaxPoolSize = 16'777'216;
constexpr const char* kPollers = "io_uring, epoll or poll";
constexpr const char* kIsolations = "off, mprotect, strict or pkeys";
constexpr const char* kShardModes = "auto, threads or processes";

// parse_poller (runtime/poller.h) for a string_view, as the other parsers here take.
bool parse_poller_name(std::string_view name, PollerKind* out) { return parse_poller(std::string(name).c_str(), out); }

const char* type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
  }
  return "an unknown type";
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

// A value as it would be written in the file, on one line and at most ~60 characters.
std::string render(const toml::node& node) {
  if (const auto* s = node.as_string()) return quote(s->get());
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
  if (out.size() > 60) out = out.substr(0, 57) + "...";
  return out;
}

std::string cpus_text(const CpuSet& set) {
  return (set.count() == 1 ? "CPU " : "CPUs ") + format_cpuset(set);
}

// "auto" -> 0, "N" (1..kMaxCpus) -> N; false otherwise.
bool parse_shards_text(std::string_view text, int* out) {
  if (text == "auto") {
    *out = 0;
    return true;
  }
  if (text.empty() || text.size() > 5) return false;
  int v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > CpuSet::kMaxCpus) return false;
  *out = v;
  return true;
}

std::string shards_rule() {
  return "must be \"auto\" or an integer from 1 to " + std::to_string(CpuSet::kMaxCpus);
}

std::string range_rule(std::int64_t lo, std::int64_t hi) {
  return "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
}

// Walks the parsed document into an AffinitySpec, collecting every problem with its line.
class Reader {
 public:
  Reader(std::string_view source, AffinitySpec* spec) : source_(source), spec_(spec) {}

  void top(const toml::table& root) {
    for (auto&& [key, node] : root) {
      std::string name(key.str());
      std::string at = where(name, key, node);
      if (name == "shards") {
        shards(at, node);
      } else if (name == "cpuset") {
        cpuset(at, node);
      } else if (name == "poller") {
        named(at, node, parse_poller_name, kPollers, &spec_->poller, &spec_->poller_at);
      } else if (name == "isolation") {
        named(at, node, parse_isolation, kIsolations, &spec_->isolation, &spec_->isolation_at);
      } else if (name == "shard_mode") {
        named(at, node, parse_shard_mode, kShardModes, &spec_->shard_mode, &spec_->shard_mode_at);
      } else if (name == "grace_ms") {
        integer(at, node, 0, kMaxGraceMs, &spec_->grace_ms, &spec_->grace_ms_at);
      } else if (name == "service") {
        service(at, key, node);
      } else if (name == "shard") {
        shard_tables(at, key, node);
      } else {
        problem(key, node,
                at + ": unknown key (known: shards, cpuset, poller, isolation, shard_mode, grace_ms, [service], [shard.N])");
      }
    }
  }

  // Every problem, in line order, one per line.
  bool report(std::string* error) {
    if (problems_.empty()) return true;
    std::stable_sort(problems_.begin(), problems_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
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
    if (table != nullptr && !table->is_inline()) return out + "[" + std::string(dotted) + "]";
    return out + std::string(dotted) + " = " + render(node);
  }

  void problem(const toml::key& key, const toml::node& node, std::string message) {
    problems_.emplace_back(line_of(key, node), std::move(message));
  }
  // For values, whose key was already located by `at`.
  void problem(const toml::node& node, std::string message) {
    problems_.emplace_back(node.source().begin.line, std::move(message));
  }

  void shards(const std::string& at, const toml::node& node) {
    if (const auto* i = node.as_integer()) {
      if (i->get() < 1 || i->get() > CpuSet::kMaxCpus) return problem(node, at + ": " + shards_rule());
      spec_->shards = static_cast<int>(i->get());
    } else if (const auto* s = node.as_string(); s != nullptr && s->get() == "auto") {
      spec_->shards = 0;
    } else {
      return problem(node, at + ": " + shards_rule() + (node.is_string() ? "" : std::string(", not ") + type_name(node.type())));
    }
    spec_->shards_at = at;
  }

  void cpuset(const std::string& at, const toml::node& node) {
    const auto* s = node.as_string();
    if (s == nullptr) {
      return problem(node, at + ": must be a string in cpuset(7) list form such as \"0-3,8\", not " +
                               type_name(node.type()));
    }
    CpuSet set;
    std::string why;
    if (!parse_cpuset(s->get(), &set, &why)) return problem(node, at + ": " + why);
    spec_->cpuset = set;
    spec_->cpuset_at = at;
  }

  // A string naming one value of an enum: `parse` reads it (false if unknown), `rule` says what
  // it must be.
  template <typename E, typename Parse>
  void named(const std::string& at, const toml::node& node, Parse parse, const char* rule, E* out,
             std::string* out_at) {
    const auto* s = node.as_string();
    E value;
    if (s == nullptr || !parse(s->get(), &value)) {
      return problem(node, at + ": must be " + rule +
                               (s == nullptr ? std::string(", not ") + type_name(node.type()) : ""));
    }
    *out = value;
    *out_at = at;
  }

  bool integer(const std::string& at, const toml::node& node, std::int64_t lo, std::int64_t hi, std::int64_t* out,
               std::string* out_at) {
    const auto* i = node.as_integer();
    if (i == nullptr) {
      problem(node, at + ": " + range_rule(lo, hi) + ", not " + type_name(node.type()));
      return false;
    }
    if (i->get() < lo || i->get() > hi) {
      problem(node, at + ": " + range_rule(lo, hi));
      return false;
    }
    *out = i->get();
    if (out_at != nullptr) *out_at = at;
    return true;
  }

  void service(const std::string& at, const toml::key& key, const toml::node& node) {
    const auto* table = node.as_table();
    if (table == nullptr) {
      return problem(key, node, at + ": must be a table ([service] with heap_pages and pool_size), not " +
                                    type_name(node.type()));
    }
    for (auto&& [k, v] : *table) {
      std::string name(k.str());
      std::string vat = where("service." + name, k, v);
      if (name == "heap_pages") {
        integer(vat, v, 1, kMaxHeapPages, &spec_->heap_pages, &spec_->heap_pages_at);
      } else if (name == "pool_size") {
        integer(vat, v, 1, kMaxPoolSize, &spec_->pool_size, &spec_->pool_size_at);
      } else {
        problem(k, v, vat + ": unknown key in [service] (known: heap_pages, pool_size)");
      }
    }
  }

  void shard_tables(const std::string& at, const toml::key& key, const toml::node& node) {
    const auto* table = node.as_table();
    if (table == nullptr) {
      return problem(key, node, at + ": must be tables such as [shard.0] with cpu = N, not " + type_name(node.type()));
    }
    std::map<int, std::uint32_t> seen;  // shard index -> line
    for (auto&& [k, v] : *table) {
      std::string index_text(k.str());
      std::string sat = where("shard." + index_text, k, v);
      int index = -1;
      if (!index_text.empty() && index_text.size() <= 4 &&
          std::all_of(index_text.begin(), index_text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        index = std::stoi(index_text);
      }
      if (index < 0 || index >= CpuSet::kMaxCpus) {
        problem(k, v, sat + ": \"" + index_text + "\" is not a shard index (shard.0, shard.1, ...)");
        continue;
      }
      const auto* shard = v.as_table();
      if (shard == nullptr) {
        problem(k, v, sat + ": must be a table such as [shard." + index_text + "] with cpu = N, not " +
                          type_name(v.type()));
        continue;
      }
      if (auto it = seen.find(index); it != seen.end()) {
        problem(k, v, sat + ": shard " + std::to_string(index) + " is already configured at line " +
                          std::to_string(it->second));
        continue;
      }
      seen[index] = line_of(k, v);
      std::int64_t cpu = -1;
      std::string cpu_at;
      bool cpu_ok = false;
      for (auto&& [ck, cv] : *shard) {
        std::string name(ck.str());
        std::string cat = where("shard." + index_text + "." + name, ck, cv);
        if (name == "cpu") {
          cpu_ok = integer(cat, cv, 0, CpuSet::kMaxCpus - 1, &cpu, &cpu_at);
        } else {
          problem(ck, cv, cat + ": unknown key in [shard." + index_text + "] (known: cpu)");
        }
      }
      if (shard->find("cpu") == shard->end()) {
        problem(k, v, sat + ": has no cpu (write cpu = N, or remove the table)");
      } else if (cpu_ok) {
        spec_->shard_cpus.push_back({index, static_cast<int>(cpu), cpu_at});
      }
    }
    std::sort(spec_->shard_cpus.begin(), spec_->shard_cpus.end(),
              [](const auto& a, const auto& b) { return a.shard < b.shard; });
  }

  std::string_view source_;
  AffinitySpec* spec_;
  std::vector<std::pair<std::uint32_t, std::string>> problems_;
};

}  // namespace

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
  try {
    toml::table root = toml::parse(text, source_name);
    AffinitySpec spec;
    Reader reader(source_name, &spec);
    reader.top(root);
    if (!reader.report(error)) return false;
    *out = std::move(spec);
    return true;
  } catch (const toml::parse_error& e) {
    *error = std::string(source_name) + ": line " + std::to_string(e.source().begin.line) + ", column " +
             std::to_string(e.source().begin.column) + ": " + std::string(e.description());
    return false;
  } catch (const std::exception& e) {  // out of memory, mostly
    *error = std::string(source_name) + ": " + e.what();
    return false;
  }
}

bool read_affinity_file(const std::string& path, AffinitySpec* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    *error = path + ": cannot read: " + std::strerror(errno);
    return false;
  }
  return parse_affinity_toml(text.str(), path, out, error);
}

bool apply_overrides(const AffinityOverrides& o, AffinitySpec* spec, std::string* error) {
  AffinitySpec s = *spec;
  if (o.shards) {
    std::string at = "--shards=" + *o.shards;
    if (!parse_shards_text(*o.shards, &s.shards)) {
      *error = at + ": " + shards_rule();
      return false;
    }
    s.shards_at = at;
  }
  if (o.cpuset) {
    std::string at = "--cpuset=" + *o.cpuset;
    CpuSet set;
    std::string why;
    if (!parse_cpuset(*o.cpuset, &set, &why)) {
      *error = at + ": " + why;
      return false;
    }
    s.cpuset = set;
    s.cpuset_at = at;
  }
  // A flag naming one value of an enum (as Reader::named).
  auto named = [error](const char* flag, const std::optional<std::string>& value, auto parse, const char* rule,
                       auto* field, std::string* field_at) {
    if (!value) return true;
    std::string at = std::string("--") + flag + "=" + *value;
    if (!parse(*value, field)) {
      *error = at + ": must be " + rule;
      return false;
    }
    *field_at = at;
    return true;
  };
  if (!named("poller", o.poller, parse_poller_name, kPollers, &s.poller, &s.poller_at) ||
      !named("isolation", o.isolation, parse_isolation, kIsolations, &s.isolation, &s.isolation_at) ||
      !named("shard_mode", o.shard_mode, parse_shard_mode, kShardModes, &s.shard_mode, &s.shard_mode_at)) {
    return false;
  }
  struct IntOverride {
    const char* flag;
    const std::optional<std::int64_t>& value;
    std::int64_t lo, hi;
    std::int64_t* field;
    std::string* field_at;
  };
  for (const IntOverride& i : {IntOverride{"grace_ms", o.grace_ms, 0, kMaxGraceMs, &s.grace_ms, &s.grace_ms_at},
                               IntOverride{"heap_pages", o.heap_pages, 1, kMaxHeapPages, &s.heap_pages, &s.heap_pages_at},
                               IntOverride{"pool_size", o.pool_size, 1, kMaxPoolSize, &s.pool_size, &s.pool_size_at}}) {
    if (!i.value) continue;
    std::string at = std::string("--") + i.flag + "=" + std::to_string(*i.value);
    if (*i.value < i.lo || *i.value > i.hi) {
      *error = at + ": " + range_rule(i.lo, i.hi);
      return false;
    }
    *i.field = *i.value;
    *i.field_at = at;
  }
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
