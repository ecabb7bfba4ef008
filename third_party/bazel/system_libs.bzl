"""Repository rule exposing Debian's system C/C++ libraries as cc_library targets.

Link flags come from `pkg-config --libs` at fetch time, so they track the installed packages
instead of being typed by hand. Headers live in /usr/include, which the compiler already searches.
"""

# target name -> pkg-config modules
_LIBS = {
    "liburing": ["liburing"],
    "hwloc": ["hwloc"],
    "absl_flags": ["absl_flags", "absl_flags_parse", "absl_flags_usage"],
    "absl_strings": ["absl_strings", "absl_str_format"],
    "absl_status": ["absl_status", "absl_statusor"],
    "absl_time": ["absl_time"],
    "absl_containers": ["absl_flat_hash_map", "absl_flat_hash_set"],
    "gtest": ["gtest"],
    "gtest_main": ["gtest_main", "gtest"],
    "gmock": ["gmock"],
    "benchmark": ["benchmark"],
    "tomlplusplus": ["tomlplusplus"],
    "simdjson": ["simdjson"],
    "openssl_crypto": ["libcrypto"],
    "zlib": ["zlib"],
}

def _system_libs_impl(ctx):
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, modules in _LIBS.items():
        res = ctx.execute(["pkg-config", "--libs"] + modules)
        if res.return_code != 0:
            fail("pkg-config cannot find %s (%s): run tools/mnv setup\n%s" % (name, " ".join(modules), res.stderr))
        flags = [f for f in res.stdout.strip().split(" ") if f]
        build.append("cc_library(")
        build.append('    name = "%s",' % name)
        build.append("    linkopts = %s," % repr(flags))
        build.append(")")
        build.append("")
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("BUILD", "\n".join(build))

system_libs = repository_rule(
    implementation = _system_libs_impl,
    local = True,
    environ = ["PKG_CONFIG_PATH"],
)
