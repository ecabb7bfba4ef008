// runtime/fault_injection.h — real hardware faults on demand, for chaos testing containment.
//
// apps/echo --fault_injection and the supervision tests make a micro-thread trap for real: a
// null dereference (SIGSEGV) or an integer division by zero (SIGFPE). Both are hidden from the
// compiler's and UBSan's view (volatile, noinline, no_sanitize) so they happen at run time.
#pragma once

namespace mnv {

__attribute__((noinline, no_sanitize("undefined"))) inline void null_dereference() {
  volatile int* p = nullptr;
  *p = 1;
}

__attribute__((noinline, no_sanitize("undefined"))) inline int divide_by_zero() {
  volatile int zero = 0;
  volatile int one = 1;
  return one / zero;
}

}  // namespace mnv
