#include "net/http/router.h"

#include <cstring>

namespace mnv::http {

namespace {
std::uint32_t bit(Method m) { return 1u << static_cast<unsigned>(m); }
}  // namespace

void Router::add(Method method, std::string_view path, Route route, bool prefix) {
  entries_.push_back(Entry{method, prefix, std::string(path), route});
  all_ |= bit(method);
}

Router::Match Router::find(Method method, std::string_view path) const {
  // The best path match: exact, else the longest prefix. All routes of that path count for Allow.
  const Entry* best = nullptr;
  for (const Entry& e : entries_) {
    bool hit = e.prefix ? path.starts_with(e.path) : path == e.path;
    if (!hit) continue;
    if (best == nullptr || (!e.prefix && best->prefix) ||
        (e.prefix && best->prefix && e.path.size() > best->path.size())) {
      best = &e;
    }
  }
  Match m;
  if (best == nullptr) return m;
  const Entry* get = nullptr;
  for (const Entry& e : entries_) {
    if (e.prefix != best->prefix || e.path != best->path) continue;
    m.allowed |= bit(e.method);
    if (e.method == method) m.route = e.route;
    if (e.method == Method::kGet) get = &e;
  }
  if (m.route == nullptr && method == Method::kHead && get != nullptr) m.route = get->route;
  return m;
}

std::size_t Router::allow_list(std::uint32_t methods, char* buf) {
  if (methods & bit(Method::kGet)) methods |= bit(Method::kHead);
  methods |= bit(Method::kOptions);
  std::size_t n = 0;
  for (unsigned i = 0; i < static_cast<unsigned>(Method::kOther); ++i) {
    if (!(methods & (1u << i))) continue;
    std::string_view name = method_name(static_cast<Method>(i));
    if (n > 0) {
      std::memcpy(buf + n, ", ", 2);
      n += 2;
    }
    std::memcpy(buf + n, name.data(), name.size());
    n += name.size();
  }
  return n;
}

}  // namespace mnv::http
