// apps/rtb/bidder.h — the bidder's site: its routes, its [rtb] config table, its metrics and
// each shard's state, for main.cc and the tests.
//
//   POST /openrtb2/bid         200 BidResponse | 204 no-bid (reason counted) | 400 with the
//                              reason | 413 over max_bid_body; Content-Encoding: gzip bodies,
//                              gzip answers on Accept-Encoding: gzip; x-openrtb-version: 2.6
//   GET|POST /rtb/win, /rtb/bill, /rtb/loss   signed notices (apps/rtb/notice.h): 200 accepted,
//                              400 malformed or a price above the bid, 403 forged, 409 replayed,
//                              410 expired
//   GET /healthz               200 "ok"
//   GET /metrics               every shard's series (shard/metrics_page.h), with per campaign
//                              (those in the file at start): rtb_campaign_spent_micros_total,
//                              rtb_campaign_reserved_micros (each shard's slice, published every
//                              20 ms) and rtb_campaign_budget_micros{kind="total"|"daily"} (shard 0)
//
// Per request, on the shard that accepted it: the body's first piece awaited with no context held
// (the whole body within body_timeout_ms, default tmax), then the body (inflated if gzip) into one of the
// shard's request contexts (each with its own simdjson parser: a request that waits for a cap
// owner keeps its views; given back however the handler ends, a trap included: runtime/process.h
// ReclaimHook), parsed, auctioned (apps/rtb/auction.h); then for each impression the
// candidates in price order through pacing, the frequency cap (asked of the user's owner shard,
// under the deadline; with [rtb] caps = "redis", of Redis for counts the owner's cache holds no
// fresh copy of: apps/rtb/redis_caps.h) and a budget reservation (apps/rtb/budget.h); the
// BidResponse is written with signed notice URLs. The deadline is tmax (or default_tmax_ms) less safety_margin_ms from
// the handler's start; a decision past it answers 204 (nbr 15) and releases what it reserved.
// Load shedding: each shard measures its loop's lag (a 1 ms ticker, how late it wakes); while
// the lag is above shed_lag_ms, bid requests get an immediate 204 without being parsed.
//
// Reload: SIGHUP bumps a generation in shared memory; each shard, at its next tick, reads the
// campaigns file and builds a new immutable index; a request in progress keeps the one it
// started with. A file that does not load is logged (file, line, campaign, field) and the old
// campaigns keep serving.
//
// [rtb] knobs: see add_knobs() in bidder.cc (--help lists them with their defaults).
#pragma once

#include <string>

#include "metrics/registry.h"
#include "net/http/server.h"
#include "shard/config.h"
#include "shard/server.h"
#include "shard/shard.h"

namespace mnv::rtb {

// The bidder as the server skeleton runs it (routes added to g_site): main() is
// run_server(argc, argv, service()).
Service service();

// The site every shard serves.
extern http::Site g_site;

void add_routes(http::Site* site);
void add_knobs(Config& config);
// Reads the [rtb] table, loads and checks the campaigns file and makes the shared state (budget
// book, reload generation) for `max_shards` shards; before any shard starts.
bool configure(const Config& config, std::string* error);
void add_metrics(metrics::Registry& registry);
bool init_shard(Shard& shard, Server& server, std::string* error);
void fini_shard(Shard& shard, Server& server);
// SIGHUP: every shard reloads the campaigns file at its next tick.
void request_reload();

}  // namespace mnv::rtb
