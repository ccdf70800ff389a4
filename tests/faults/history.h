// A history of operations on KV v2 registers, as the fault harness (tests/faults/harness/)
// records it: one JSON object per line, each an operation one client invoked on one key, with
// its invocation and completion times (one monotonic clock, nanoseconds) and its result
// (Jepsen's ok / fail / info). A line may instead give a key's final version table, read once
// the faults healed (for the lost-write check).
//
//   {"op":"write","key":"k1","value":"c3-17","client":3,"node":"n2","invoke":10,
//    "complete":20,"outcome":"ok","version":6}
//   {"op":"cas","key":"k1","cas":6,"value":"c1-4",...,"outcome":"fail"}
//   {"op":"read","key":"k1",...,"outcome":"ok","found":true,"value":"c3-17","version":6}
//   {"op":"write",...,"outcome":"unknown"}          (timed out: may or may not have happened)
//   {"final":"k1","current":7,"versions":{"1":"c0-1","2":"c2-1"}}
//
// "outcome": "ok" (acknowledged), "fail" (definitely did not take effect: for a CAS, the
// check-and-set did not match), "unknown" (no answer, or an answer that leaves it open; the
// completion time is then ignored: the operation may take effect at any time after its
// invocation, or never).
#pragma once

#include <cstdint>
#include <istream>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace strongroom::faults {

enum class Kind { kRead, kWrite, kCas };
enum class Outcome { kOk, kFail, kUnknown };

struct Op {
  int64_t index = 0;  // line number in the history (for reports)
  int64_t client = 0;
  std::string node;  // the node the client sent it to (for reports)
  std::string key;
  Kind kind = Kind::kRead;
  Outcome outcome = Outcome::kUnknown;
  // write / cas: the value written (unique per key); read ok: the value seen (when found).
  std::string value;
  int64_t cas = 0;     // cas: the version the write requires (options.cas)
  bool found = false;  // read ok: the key had a current version
  // read ok: the version seen (0: none); write / cas ok: the version the answer names; -1 when
  // the answer named none.
  int64_t version = -1;
  int64_t invoke = 0;
  int64_t complete = 0;
  std::string detail;  // status / error text, for reports
};

// A key's version table read after the faults healed: versions[n] is the value of version n.
struct FinalKey {
  int64_t current = 0;
  std::map<int64_t, std::string> versions;
};

struct History {
  std::vector<Op> ops;
  std::map<std::string, FinalKey> finals;
};

// Bounds on what ParseHistory accepts (the history is a file; treat it as any input).
struct HistoryLimits {
  size_t max_line = 1 << 16;
  size_t max_ops = 5'000'000;
  size_t max_string = 256;
  int64_t max_version = 1'000'000'000;
};

// Parses the JSON lines of `in`. Fails on malformed lines, unknown kinds or outcomes, an
// unknown-outcome read with a completion before its invocation, and two writes of one value
// to one key (values identify writes).
absl::StatusOr<History> ParseHistory(std::istream& in, const HistoryLimits& limits = {});

// One line for reports: "#12 c3@n2 cas k1 cas=5 'c3-17' -> ok v6 [10.000000s, 10.020000s]".
std::string Describe(const Op& op);

const char* KindName(Kind kind);
const char* OutcomeName(Outcome outcome);

}  // namespace strongroom::faults
