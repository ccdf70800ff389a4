// A linearizability checker for KV v2 registers (one register per key, holding a value and its
// version number), after Wing & Gong and Lowe ("Testing for linearizability", 2017) as
// Porcupine and Knossos implement them: a depth-first search for an order of the operations
// that respects real time (an operation that completed before another was invoked comes first)
// and the register's sequential specification, with memoisation of (operations linearised,
// register state) pairs so each is explored once.
//
// The model:
//   state      (value, version); initially (none, 0)
//   write v    ok: version+1 = answered version (when the answer named one); state (v, version+1)
//   cas n v    ok: version = n (and the answered version is n+1); state (v, n+1)
//              fail: version != n; state unchanged
//   read       ok: (value, version) = state
// Operations with an unknown outcome may take effect at any time after their invocation, or
// never (their completion is open-ended); an unknown read constrains nothing and is ignored.
// Keys are independent registers, so each key's sub-history is checked on its own (a history is
// linearizable iff every key's is).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/faults/history.h"

namespace strongroom::faults {

enum class Verdict { kLinearizable, kNotLinearizable, kUndecided };

struct KeyVerdict {
  std::string key;
  Verdict verdict = Verdict::kLinearizable;
  size_t ops = 0;
  size_t states_explored = 0;
  // kNotLinearizable: the operation no order could get past (the completed operation whose
  // completion the deepest search reached without linearising it), and the operations
  // overlapping it in time (the smallest window that shows the problem, roughly).
  std::vector<Op> window;
  std::string explanation;
};

struct CheckOptions {
  // Search budget per key (states pushed); beyond it the key's verdict is kUndecided.
  size_t max_states_per_key = 2'000'000;
};

// Checks one key's operations (every op's key must be the same; ops of other kinds of results
// are as documented above).
KeyVerdict CheckKey(const std::vector<Op>& ops, const CheckOptions& options = {});

// Partitions `ops` by key and checks each.
std::vector<KeyVerdict> CheckLinearizable(const std::vector<Op>& ops,
                                          const CheckOptions& options = {});

const char* VerdictName(Verdict verdict);

}  // namespace strongroom::faults
