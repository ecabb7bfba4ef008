"""Repository rule exposing Debian's llhttp C sources (package node-llhttp) as a cc_library.

node-llhttp ships the generated parser as sources (/usr/share/llhttp/*.c) and its header
(/usr/share/include/llhttp/llhttp.h), not as a library; this builds them. Only the HTTP parser's
benchmark (perf/http_parser_bench.cc) uses it, as the peer our own parser is measured against
(the fuzzer, tools/fuzz_http.sh, builds the same sources with clang outside Bazel).
"""

_SRC = "/usr/share/llhttp"
_HDR = "/usr/share/include/llhttp/llhttp.h"

def _llhttp_impl(ctx):
    for f in ["llhttp.c", "api.c", "http.c"]:
        p = ctx.path(_SRC + "/" + f)
        if not p.exists:
            fail("%s not found: node-llhttp is not installed; run tools/mnv setup" % p)
        ctx.symlink(p, f)
    ctx.symlink(ctx.path(_HDR), "llhttp.h")
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("BUILD", """package(default_visibility = ["//visibility:public"])

cc_library(
    name = "llhttp",
    srcs = ["llhttp.c", "api.c", "http.c"],
    hdrs = ["llhttp.h"],
    includes = ["."],
    copts = ["-w", "-O2"],
)
""")

llhttp_repository = repository_rule(
    implementation = _llhttp_impl,
    local = True,
)
