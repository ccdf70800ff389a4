// Names for what went wrong in a KV v2 register history, found directly from the versions the
// answers carry (the linearizability search, linearizability.h, is the verdict; these say which
// kind of wrong it is, in Jepsen's words):
//
//   lost write       an acknowledged write (version n) that is not there: the final version
//                    table has another value at n, or ends before n; without a final table,
//                    reads invoked after it completed all see versions before n and none sees
//                    its value.
//   stale read       a read invoked after an acknowledged write of version n completed (or after
//                    another read that saw version n completed) sees a version before n, where
//                    the newer write is not lost (later reads or the final table show it); or
//                    a CAS refused although its expected version was current for the whole
//                    time it ran (it was checked against a stale copy).
//   duplicated write a value seen (by a read or in the final table) that its write did not put
//                    there exactly once at the version it was acknowledged with: a write that
//                    failed yet took effect (a replayed CAS), a value at two versions, a value
//                    at another version than its acknowledgement named, or a value nobody wrote.
#pragma once

#include <string>
#include <vector>

#include "tests/faults/history.h"

namespace strongroom::faults {

struct Finding {
  enum class Type { kLostWrite, kStaleRead, kDuplicatedWrite };
  Type type;
  std::string key;
  std::string text;  // what, with the operations involved (Describe)
};

struct Anomalies {
  size_t lost_writes = 0;
  size_t stale_reads = 0;
  size_t duplicated_writes = 0;
  std::vector<Finding> findings;
};

// Classifies the anomalies of `history` key by key.
Anomalies FindAnomalies(const History& history);

const char* FindingName(Finding::Type type);

}  // namespace strongroom::faults
