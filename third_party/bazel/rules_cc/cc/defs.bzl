# Offline stand-in for @rules_cc: Bazel 4.2.3's @bazel_tools//tools/cpp loads these names from
# @rules_cc//cc:defs.bzl. Debian's bazel-rules-cc is too new for 4.2.3, and nothing may be
# downloaded, so each name forwards to the native rule (see shared/notes/offline-bazel.md).
def cc_library(**attrs):
    native.cc_library(**attrs)

def cc_binary(**attrs):
    native.cc_binary(**attrs)

def cc_test(**attrs):
    native.cc_test(**attrs)

def cc_import(**attrs):
    native.cc_import(**attrs)

def cc_proto_library(**attrs):
    native.cc_proto_library(**attrs)

def cc_toolchain(**attrs):
    native.cc_toolchain(**attrs)

def cc_toolchain_suite(**attrs):
    native.cc_toolchain_suite(**attrs)

def objc_library(**attrs):
    native.objc_library(**attrs)
