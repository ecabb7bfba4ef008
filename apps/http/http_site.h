// apps/http/http_site.h — the HTTP app's routes (/plaintext, /json, /echo) and its [http] config
// table, for main.cc and the tests.
//
//   [http]
//   max_target = 4096            # request-target bytes; over: 414
//   max_head = 8192              # request head bytes (also past the 4080-byte ring); over: 431
//   max_headers = 64             # header fields; over: 431
//   max_body = 1048576           # body bytes; over: 413
//   header_timeout_ms = 10000    # a request's head, from its first byte
//   body_timeout_ms = 30000      # a request's whole body
//   keepalive_timeout_ms = 60000 # idle between requests
//   send_timeout_ms = 30000      # each blocked write of a response
#pragma once

#include <string>

#include "net/http/server.h"
#include "shard/config.h"

namespace mnv::http_app {

// The site every shard serves (routes added by add_routes(), options by configure()).
extern http::Site g_site;

void add_routes(http::Site* site);
void add_knobs(Config& config);
bool configure(const Config& config, http::ServerOptions* options, std::string* error);

}  // namespace mnv::http_app
