// runtime/fault_injection.h — real hardware faults on demand, for chaos testing containment.
//
// apps/echo --fault_injection and the supervision tests make a micro-thread trap for real: a
// null dereference (SIGSEGV) or an integer division by zero (SIGFPE); or hang (spin_forever()). Both are hidden from the
// compiler's and UBSan's view so they happen at run time in optimised builds too: the pointer
// and the divisor are volatile objects (their values are unknown to the optimiser), and the
// quotient is stored to a volatile (an unused division could be dropped).
#pragma once

namespace mnv {

__attribute__((noinline, no_sanitize("undefined"))) inline void null_dereference() {
  volatile int* volatile p = nullptr;
  *p = 1;
}

__attribute__((noinline, no_sanitize("undefined"))) inline int divide_by_zero() {
  volatile int zero = 0;
  volatile int one = 1;
  volatile int quotient = one / zero;
  return quotient;
}

// Never returns, never yields: a runaway handler (the volatile keeps the loop from being
// assumed to end, which C++ would otherwise let the compiler do).
[[noreturn]] __attribute__((noinline)) inline void spin_forever() {
  volatile bool forever = true;
  while (forever) {
  }
  __builtin_unreachable();
}

}  // namespace mnv
