"""The repositories mnvkd's targets need, for its own WORKSPACE and for an embedder's.

    local_repository(name = "mnvkd", path = "...")
    load("@mnvkd//:deps.bzl", "mnvkd_dependencies")
    mnvkd_dependencies()

Declares, each unless the WORKSPACE already declared it (so an embedder's own choice wins):
  @rules_cc, @remote_coverage_tools  offline stand-ins kept in mnvkd's third_party/bazel/ (Bazel
                                     4.2.3 would download them; see third_party/bazel/)
  @rules_java, @platforms            Debian's bazel-rules-java and bazel-platforms
  @mnvkd_sys                         Debian's C/C++ libraries (pkg-config), as cc_library targets
  @mnvkd_llhttp                      Debian's llhttp sources (node-llhttp), for perf/ only

The system libraries are @mnvkd_sys, not a generic name such as @sys, so that they cannot clash
with a repository of the embedder's, and mnvkd's BUILD files name them by that same name.
"""

load("//third_party/bazel:llhttp.bzl", "llhttp_repository")
load("//third_party/bazel:system_libs.bzl", "system_libs")

def _in_tree_repository_impl(ctx):
    # <mnvkd>/third_party/bazel/<dir>, wherever mnvkd is (the main workspace or an external one).
    here = ctx.path(Label("//third_party/bazel:system_libs.bzl")).dirname
    for child in here.get_child(ctx.attr.dir).readdir():
        ctx.symlink(child, child.basename)

# A repository made of a directory under mnvkd's third_party/bazel/.
_in_tree_repository = repository_rule(
    implementation = _in_tree_repository_impl,
    attrs = {"dir": attr.string(mandatory = True)},
)

def _maybe(rule, name, **kwargs):
    if not native.existing_rule(name):
        rule(name = name, **kwargs)

def mnvkd_dependencies():
    """Declares every repository mnvkd's targets use (see the file's comment)."""
    _maybe(_in_tree_repository, name = "rules_cc", dir = "rules_cc")
    _maybe(_in_tree_repository, name = "remote_coverage_tools", dir = "coverage_tools")
    _maybe(native.local_repository, name = "rules_java", path = "/usr/share/bazel/rules/java")
    _maybe(native.local_repository, name = "platforms", path = "/usr/share/bazel/tools/platforms")
    _maybe(system_libs, name = "mnvkd_sys")
    _maybe(llhttp_repository, name = "mnvkd_llhttp")
