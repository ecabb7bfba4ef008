// net/http/router.h — maps (method, path) to a handler coroutine: exact paths and prefixes.
//
// Routes are added at start-up (the only allocation); find() then scans them without
// allocating: an exact path beats a prefix, a longer prefix beats a shorter one. A path with
// routes but none for the method reports the methods it has (405 with Allow); HEAD falls back
// to the GET route (the server sends the head only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "net/http/request_parser.h"
#include "runtime/thread.h"

namespace mnv::http {

class Request;
class Response;
using Route = Task<> (*)(Request& req, Response& res);

class Router {
 public:
  void add(Method method, std::string_view path, Route route) { add(method, path, route, false); }
  void add_prefix(Method method, std::string_view prefix, Route route) { add(method, prefix, route, true); }

  struct Match {
    Route route = nullptr;     // null: no route for this method (see allowed)
    std::uint32_t allowed = 0;  // methods with a route for this path (bit per Method); 0: 404
  };
  Match find(Method method, std::string_view path) const;
  // The methods of every route (for OPTIONS *).
  std::uint32_t all_methods() const { return all_; }

  // Writes "GET, HEAD, POST" for a method set (HEAD with GET, OPTIONS always) into buf; returns
  // its length (buf: at least 96 bytes).
  static std::size_t allow_list(std::uint32_t methods, char* buf);

 private:
  struct Entry {
    Method method;
    bool prefix;
    std::string path;
    Route route;
  };
  void add(Method method, std::string_view path, Route route, bool prefix);

  std::vector<Entry> entries_;
  std::uint32_t all_ = 0;
};

}  // namespace mnv::http
