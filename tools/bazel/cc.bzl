"""The project's C++ rules: the native ones, each target carrying the flags its code needs.

mnvkd is C++20 (coroutines, std::source_location, constinit). The flag is on every target rather
than only in the project's .bazelrc, so the targets build the same from an embedder's workspace,
which reads no .bazelrc of ours (examples/embed). Every BUILD file of the project loads these in
place of the native rules:

    load("//tools/bazel:cc.bzl", "cc_binary", "cc_library", "cc_test")

An embedder's own code that includes mnvkd's headers needs C++20 too: `copts = MNVKD_COPTS`
(or "-std=c++20") on its targets.
"""

MNVKD_COPTS = ["-std=c++20"]

def cc_library(copts = [], **kwargs):
    native.cc_library(copts = MNVKD_COPTS + copts, **kwargs)

def cc_binary(copts = [], **kwargs):
    native.cc_binary(copts = MNVKD_COPTS + copts, **kwargs)

def cc_test(copts = [], **kwargs):
    native.cc_test(copts = MNVKD_COPTS + copts, **kwargs)
