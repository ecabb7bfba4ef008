// apps/rtb — the OpenRTB 2.6 bidder, one shard per chosen core (apps/rtb/bidder.h).
//
//   bazel run //apps/rtb -- --port=8080 --campaigns=$PWD/apps/rtb/campaigns.toml
//                    --hmac_key=a-long-secret-key-here
//   curl -d @apps/rtb/testdata/banner.json http://127.0.0.1:8080/openrtb2/bid
//   kill -HUP <pid>                  # reload the campaigns file
//   bazel run //apps/rtb -- --help   (every knob, with its default)
//
// Everything but the bidder is the server skeleton's (shard/server.h).
#include <string>

#include "apps/rtb/bidder.h"
#include "shard/server.h"

int main(int argc, char** argv) {
  mnv::rtb::add_routes(&mnv::rtb::g_site);
  mnv::Service rtb;
  rtb.name = "rtb";
  rtb.about = "OpenRTB 2.6 bidder: POST /openrtb2/bid, GET|POST /rtb/win|bill|loss, /healthz, /metrics";
  rtb.handler = mnv::http::serve;
  rtb.message = &mnv::rtb::g_site;
  rtb.min_heap_pages = 4;
  rtb.add_knobs = mnv::rtb::add_knobs;
  rtb.configure = mnv::rtb::configure;
  rtb.add_metrics = mnv::rtb::add_metrics;
  rtb.init_shard = mnv::rtb::init_shard;
  rtb.fini_shard = mnv::rtb::fini_shard;
  rtb.reload = mnv::rtb::request_reload;
  return mnv::run_server(argc, argv, rtb);
}
