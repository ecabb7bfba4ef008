// apps/rtb/campaigns.cc — the campaigns file, read with toml++ and checked key by key (see
// campaigns.h). Debian's libtomlplusplus is built with exceptions (BUILD.bazel defines the
// matching TOML_* macros, as shard/config does); its parse error is caught here.
#include "apps/rtb/campaigns.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>
#include <utility>

namespace mnv::rtb {

namespace {

constexpr std::int64_t kMaxWindowS = 31 * 86400;

// Collects problems (line, message) and reports them in line order.
class Checker {
 public:
  explicit Checker(std::string_view source) : source_(source) {}

  std::string where(const toml::node& node) const {
    return std::string(source_) + ": line " + std::to_string(node.source().begin.line);
  }
  // "FILE: line N: campaign "ID": KEY = VALUE: WHAT".
  void problem(const toml::node& node, std::string_view campaign, std::string_view key, const std::string& what) {
    std::string msg = where(node) + ": ";
    if (!campaign.empty()) msg += "campaign \"" + std::string(campaign) + "\": ";
    msg += std::string(key);
    if (!is_header(node)) msg += " = " + render(node);
    msg += ": " + what;
    problems_.emplace_back(node.source().begin.line, std::move(msg));
  }
  static bool is_header(const toml::node& node) {
    return (node.is_table() && !node.as_table()->is_inline()) || node.is_array_of_tables();
  }
  void problem_at(std::uint32_t line, std::string msg) { problems_.emplace_back(line, std::move(msg)); }
  bool ok() const { return problems_.empty(); }
  std::string report() {
    std::stable_sort(problems_.begin(), problems_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string text;
    for (const auto& p : problems_) {
      if (!text.empty()) text += '\n';
      text += p.second;
    }
    return text;
  }

 private:
  // A value as written in a file, on one line, cut short.
  static std::string render(const toml::node& node) {
    std::string out = render_full(node);
    for (char& c : out) {
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    }
    if (out.size() > 60) out = out.substr(0, 57) + "...";
    return out;
  }
  static std::string render_full(const toml::node& node) {
    if (const auto* s = node.as_string()) return '"' + s->get() + '"';
    if (const auto* f = node.as_floating_point()) {
      char buf[64];
      auto r = std::to_chars(buf, buf + sizeof buf, f->get());  // the shortest exact form
      return std::string(buf, r.ptr);
    }
    if (const auto* a = node.as_array()) {
      std::string out = "[";
      for (std::size_t i = 0; i < a->size(); ++i) out += (i ? ", " : "") + render_full(*a->get(i));
      return out + "]";
    }
    std::ostringstream os;
    node.visit([&](const auto& v) { os << v; });
    return os.str();
  }
  std::string_view source_;
  std::vector<std::pair<std::uint32_t, std::string>> problems_;
};

bool is_upper3(std::string_view s) {
  return s.size() == 3 && std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

// "IAB<n>" or "IAB<n>-<m>".
bool is_iab_category(std::string_view s) {
  if (s.size() < 4 || s.substr(0, 3) != "IAB") return false;
  std::size_t i = 3, digits = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) ++digits;
  if (digits == 0) return false;
  if (i == s.size()) return true;
  if (s[i++] != '-') return false;
  digits = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) ++digits;
  return digits > 0 && i == s.size();
}

bool is_domain(std::string_view s) {
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.back() == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
  });
}

struct CampaignReader {
  Checker& check;
  std::string_view id;  // for messages, once known

  bool integer(const toml::node& n, std::string_view key, std::int64_t lo, std::int64_t hi, std::int64_t* out) {
    const auto* i = n.as_integer();
    if (i == nullptr || i->get() < lo || i->get() > hi) {
      check.problem(n, id, key, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
      return false;
    }
    *out = i->get();
    return true;
  }
  bool string(const toml::node& n, std::string_view key, bool (*valid)(std::string_view), const char* rule,
              std::string* out) {
    const auto* s = n.as_string();
    if (s == nullptr || s->get().empty() || (valid != nullptr && !valid(s->get()))) {
      check.problem(n, id, key, std::string("must be ") + rule);
      return false;
    }
    *out = s->get();
    return true;
  }
  bool strings(const toml::node& n, std::string_view key, bool (*valid)(std::string_view), const char* rule,
               std::vector<std::string>* out) {
    const auto* a = n.as_array();
    if (a == nullptr) {
      check.problem(n, id, key, std::string("must be an array of ") + rule);
      return false;
    }
    out->clear();
    bool ok = true;
    for (const toml::node& e : *a) {
      std::string s;
      if (string(e, std::string(key) + "[]", valid, rule, &s)) {
        out->push_back(std::move(s));
      } else {
        ok = false;
      }
    }
    return ok;
  }

  void creative(const toml::table& t, const toml::node& at, Creative* c) {
    bool has_type = false;
    for (auto&& [k, v] : t) {
      std::string key = "creative." + std::string(k.str());
      std::int64_t x = 0;
      if (k == "crid") {
        string(v, key, nullptr, "a non-empty string", &c->crid);
      } else if (k == "type") {
        std::string type;
        if (!string(v, key, nullptr, "\"banner\", \"video\" or \"native\"", &type)) continue;
        has_type = true;
        if (type == "banner") {
          c->type = CreativeType::kBanner;
        } else if (type == "video") {
          c->type = CreativeType::kVideo;
        } else if (type == "native") {
          c->type = CreativeType::kNative;
        } else {
          check.problem(v, id, key, "must be \"banner\", \"video\" or \"native\"");
        }
      } else if (k == "w") {
        if (integer(v, key, 1, 65535, &x)) c->w = static_cast<std::uint16_t>(x);
      } else if (k == "h") {
        if (integer(v, key, 1, 65535, &x)) c->h = static_cast<std::uint16_t>(x);
      } else if (k == "mime") {
        string(v, key, nullptr, "a non-empty string (e.g. \"video/mp4\")", &c->mime);
      } else if (k == "adomain") {
        strings(v, key, is_domain, "domains (e.g. \"acme.example\")", &c->adomain);
      } else if (k == "adm") {
        string(v, key, nullptr, "a non-empty string (the ad markup)", &c->adm);
      } else {
        check.problem(v, id, key, "unknown key (known: crid, type, w, h, mime, adomain, adm)");
      }
    }
    auto missing = [&](const char* what) {
      check.problem_at(at.source().begin.line, check.where(at) + ": campaign \"" + std::string(id) + "\": creative" +
                                                   (c->crid.empty() ? "" : " \"" + c->crid + "\"") + ": " + what);
    };
    if (c->crid.empty() && t.get("crid") == nullptr) missing("crid is required");
    if (!has_type && t.get("type") == nullptr) missing("type is required (banner, video or native)");
    if (t.get("adm") == nullptr) missing("adm is required");
    if (t.get("adomain") == nullptr || (c->adomain.empty() && t.get("adomain")->is_array())) {
      missing("adomain is required: at least one advertiser domain (requests' badv blocks by it)");
    }
    if (has_type && c->type == CreativeType::kBanner && (t.get("w") == nullptr || t.get("h") == nullptr)) {
      missing("a banner needs w and h");
    }
    if (has_type && c->type == CreativeType::kVideo && t.get("mime") == nullptr) missing("a video needs mime");
  }

  void campaign(const toml::table& t, Campaign* c) {
    if (const toml::node* n = t.get("id")) {
      if (string(*n, "id", nullptr, "a non-empty string", &c->id)) id = c->id;
    }
    bool has_total = false, has_daily = false, has_bid = false;
    for (auto&& [k, v] : t) {
      std::string_view key = k.str();
      std::int64_t x = 0;
      if (key == "id") {
        continue;
      } else if (key == "total_budget_micros") {
        has_total = integer(v, key, 1, INT64_MAX / 4, &c->total_budget);
      } else if (key == "daily_budget_micros") {
        has_daily = integer(v, key, 1, INT64_MAX / 4, &c->daily_budget);
      } else if (key == "bid_cpm_micros") {
        has_bid = integer(v, key, 1, kMaxCpmMicros, &c->bid_cpm);
      } else if (key == "categories") {
        strings(v, key, is_iab_category, "IAB categories (e.g. \"IAB18\", \"IAB9-30\")", &c->categories);
      } else if (key == "exclude_categories") {
        strings(v, key, is_iab_category, "IAB categories (e.g. \"IAB25\")", &c->exclude_categories);
      } else if (key == "countries") {
        strings(v, key, is_upper3, "ISO 3166-1 alpha-3 codes (e.g. \"USA\")", &c->countries);
      } else if (key == "device_types") {
        const auto* a = v.as_array();
        if (a == nullptr) {
          check.problem(v, id, key, "must be an array of OpenRTB device types (1 to 7)");
          continue;
        }
        for (const toml::node& e : *a) {
          if (integer(e, "device_types[]", 1, 7, &x)) c->device_types |= 1u << x;
        }
      } else if (key == "sites") {
        strings(v, key, is_domain, "domains", &c->sites);
      } else if (key == "apps") {
        strings(v, key, is_domain, "app bundles (e.g. \"com.example.game\")", &c->apps);
      } else if (key == "exclude_sites") {
        strings(v, key, is_domain, "domains", &c->exclude_sites);
      } else if (key == "exclude_apps") {
        strings(v, key, is_domain, "app bundles", &c->exclude_apps);
      } else if (key == "freq_cap") {
        const auto* f = v.as_table();
        if (f == nullptr || f->get("impressions") == nullptr || f->get("window_s") == nullptr || f->size() != 2) {
          check.problem(v, id, key, "must be { impressions = N, window_s = SECONDS }");
          continue;
        }
        if (integer(*f->get("impressions"), "freq_cap.impressions", 1, 1'000'000, &x)) {
          c->freq_cap.impressions = static_cast<std::uint32_t>(x);
        }
        if (integer(*f->get("window_s"), "freq_cap.window_s", 1, kMaxWindowS, &x)) {
          c->freq_cap.window_s = static_cast<std::uint32_t>(x);
        }
      } else if (key == "creative") {
        const auto* a = v.as_array();
        if (a == nullptr || !a->is_array_of_tables()) {
          check.problem(v, id, key, "must be [[campaign.creative]] tables");
          continue;
        }
        if (a->size() > static_cast<std::size_t>(kMaxCreativesPerCampaign)) {
          check.problem(v, id, key, "more than " + std::to_string(kMaxCreativesPerCampaign) + " creatives");
          continue;
        }
        std::set<std::string> crids;
        for (const toml::node& e : *a) {
          Creative cr;
          creative(*e.as_table(), e, &cr);
          if (!cr.crid.empty() && !crids.insert(cr.crid).second) {
            check.problem(e, id, "creative", "crid \"" + cr.crid + "\" appears twice in this campaign");
          }
          c->creatives.push_back(std::move(cr));
        }
      } else {
        check.problem(v, id, key,
                      "unknown key (known: id, total_budget_micros, daily_budget_micros, bid_cpm_micros, categories, "
                      "countries, device_types, sites, apps, exclude_sites, exclude_apps, exclude_categories, "
                      "freq_cap, creative)");
      }
    }
    std::string head = c->at + ": campaign" + (id.empty() ? "" : " \"" + std::string(id) + "\"") + ": ";
    std::uint32_t line = t.source().begin.line;
    if (t.get("id") == nullptr) check.problem_at(line, head + "id is required");
    if (t.get("total_budget_micros") == nullptr) check.problem_at(line, head + "total_budget_micros is required");
    if (t.get("daily_budget_micros") == nullptr) check.problem_at(line, head + "daily_budget_micros is required");
    if (t.get("bid_cpm_micros") == nullptr) check.problem_at(line, head + "bid_cpm_micros is required");
    if (t.get("creative") == nullptr) check.problem_at(line, head + "at least one [[campaign.creative]] is required");
    if (has_total && has_daily && c->daily_budget > c->total_budget) {
      check.problem(*t.get("daily_budget_micros"), id, "daily_budget_micros",
                    "must not exceed total_budget_micros (" + std::to_string(c->total_budget) + ")");
    }
    (void)has_bid;
  }
};

}  // namespace

bool category_covers(std::string_view parent, std::string_view cat) {
  if (cat.size() < parent.size() || cat.substr(0, parent.size()) != parent) return false;
  return cat.size() == parent.size() || cat[parent.size()] == '-';
}

bool domain_covers(std::string_view listed, std::string_view name) {
  if (name.size() < listed.size() || name.substr(name.size() - listed.size()) != listed) return false;
  return name.size() == listed.size() || name[name.size() - listed.size() - 1] == '.';
}

bool parse_campaigns(std::string_view text, std::string_view source, CampaignSet* out, std::string* error) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    *error = std::string(source) + ": line " + std::to_string(e.source().begin.line) + ": " +
             std::string(e.description());
    return false;
  }
  Checker check(source);
  CampaignSet set;
  for (auto&& [k, v] : root) {
    if (k == "campaign") {
      const auto* a = v.as_array();
      if (a == nullptr || !a->is_array_of_tables()) {
        check.problem(v, "", "campaign", "must be [[campaign]] tables");
        continue;
      }
      if (a->size() > static_cast<std::size_t>(kMaxCampaigns)) {
        check.problem(v, "", "campaign", "more than " + std::to_string(kMaxCampaigns) + " campaigns");
        continue;
      }
      std::set<std::string_view> ids;
      set.campaigns.reserve(a->size());
      for (const toml::node& e : *a) {
        Campaign c;
        c.index = static_cast<std::uint32_t>(set.campaigns.size());
        c.at = check.where(e);
        CampaignReader reader{check, {}};
        reader.campaign(*e.as_table(), &c);
        set.campaigns.push_back(std::move(c));
      }
      for (const Campaign& c : set.campaigns) {
        if (!c.id.empty() && !ids.insert(c.id).second) {
          check.problem_at(0, c.at + ": campaign \"" + c.id + "\": id appears twice (ids must be unique)");
        }
      }
    } else if (k == "rates") {
      const auto* t = v.as_table();
      if (t == nullptr) {
        check.problem(v, "", "rates", "must be a table of CURRENCY = micro-USD per unit");
        continue;
      }
      for (auto&& [cur, rate] : *t) {
        std::string key = "rates." + std::string(cur.str());
        const auto* i = rate.as_integer();
        if (!is_upper3(cur.str()) || cur == "USD") {
          check.problem(rate, "", key, "the key must be an ISO 4217 code other than USD (e.g. EUR)");
        } else if (i == nullptr || i->get() < 1 || i->get() > 1'000'000'000'000) {
          check.problem(rate, "", key, "must be micro-USD per unit, an integer from 1 to 1000000000000");
        } else {
          set.rates.push_back(Rate{std::string(cur.str()), i->get()});
        }
      }
    } else {
      check.problem(v, "", k.str(), "unknown key (known: [[campaign]], [rates])");
    }
  }
  if (!check.ok()) {
    *error = check.report();
    return false;
  }
  *out = std::move(set);
  return true;
}

bool load_campaigns(const std::string& path, CampaignSet* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > (64u << 20)) {
    *error = path + ": larger than 64 MiB";
    return false;
  }
  return parse_campaigns(text, path, out, error);
}

}  // namespace mnv::rtb
