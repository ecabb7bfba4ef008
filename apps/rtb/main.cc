// apps/rtb — the OpenRTB 2.6 bidder, one shard per chosen core (apps/rtb/bidder.h).
//
//   bazel run //apps/rtb -- --port=8080 --campaigns=$PWD/apps/rtb/campaigns.toml
//                    --hmac_key=a-long-secret-key-here
//   curl -d @apps/rtb/testdata/banner.json http://127.0.0.1:8080/openrtb2/bid
//   kill -HUP <pid>                  # reload the campaigns file
//   bazel run //apps/rtb -- --help   (every knob, with its default)
//
// Everything but the bidder is the server skeleton's (shard/server.h).
#include "apps/rtb/bidder.h"
#include "shard/server.h"

int main(int argc, char** argv) { return mnv::run_server(argc, argv, mnv::rtb::service()); }
