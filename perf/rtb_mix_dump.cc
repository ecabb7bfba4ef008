// perf/rtb_mix_dump.cc — writes the seeded OpenRTB request mix (perf/rtb_mix.h) to files: one
// body per line in --out (perf/http_load --bodies_file reads it; a wrk Lua script can read it
// with io.lines), and with --dir one file per request (req_000001.json ...). Prints the count, the
// malformed ones and the mean size.
//
//   bazel build //perf:rtb_mix_dump && bazel-bin/perf/rtb_mix_dump --count=10000 --seed=1 --out=/tmp/mix.txt
#include <stdio.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "perf/rtb_mix.h"

ABSL_FLAG(int, count, 10000, "requests to generate");
ABSL_FLAG(uint64_t, seed, 1, "the seed (the same seed gives the same requests)");
ABSL_FLAG(double, malformed_share, 0.01, "share of malformed requests (0..1)");
ABSL_FLAG(int, users, 100000, "distinct user ids (Zipf-distributed)");
ABSL_FLAG(std::string, out, "", "a file to write, one request body per line");
ABSL_FLAG(std::string, dir, "", "a directory (existing) to write req_NNNNNN.json files into");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  mnv::perf::RtbMixOptions opt;
  opt.count = absl::GetFlag(FLAGS_count);
  opt.seed = absl::GetFlag(FLAGS_seed);
  opt.malformed_share = absl::GetFlag(FLAGS_malformed_share);
  opt.users = absl::GetFlag(FLAGS_users);
  const std::string out = absl::GetFlag(FLAGS_out), dir = absl::GetFlag(FLAGS_dir);
  if (opt.count < 1 || opt.users < 1 || opt.malformed_share < 0 || opt.malformed_share > 1) {
    fprintf(stderr, "rtb_mix_dump: --count and --users must be at least 1, --malformed_share 0..1\n");
    return 2;
  }
  if (out.empty() && dir.empty()) {
    fprintf(stderr, "rtb_mix_dump: give --out=FILE (one body per line) and/or --dir=DIR (one file each)\n");
    return 2;
  }
  mnv::perf::RtbMix mix = mnv::perf::make_rtb_mix(opt);
  if (!out.empty()) {
    std::ofstream f(out, std::ios::binary | std::ios::trunc);
    for (const std::string& b : mix.bodies) f << b << '\n';
    if (!f.good()) {
      fprintf(stderr, "rtb_mix_dump: --out=%s cannot be written\n", out.c_str());
      return 1;
    }
  }
  if (!dir.empty()) {
    char name[64];
    for (std::size_t i = 0; i < mix.bodies.size(); ++i) {
      snprintf(name, sizeof name, "/req_%06zu.json", i + 1);
      std::ofstream f(dir + name, std::ios::binary | std::ios::trunc);
      f << mix.bodies[i];
      if (!f.good()) {
        fprintf(stderr, "rtb_mix_dump: %s%s cannot be written (does --dir exist?)\n", dir.c_str(), name);
        return 1;
      }
    }
  }
  printf("%zu requests (%zu malformed), mean %.0f bytes, seed %llu\n", mix.bodies.size(), mix.malformed,
         mix.mean_bytes, static_cast<unsigned long long>(opt.seed));
  return 0;
}
