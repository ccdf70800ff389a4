// strongroom-fault-check: checks a fault-suite history (history.h) for linearizability and
// names its anomalies (anomalies.h).
//
//   strongroom-fault-check [--max-states=N] [--quiet] HISTORY.jsonl
//
// Prints each non-linearisable key with its window and each anomaly found, then one JSON line
// of counts (the harness reads it). Exit status: 0 no anomaly, 1 anomalies, 2 bad input.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "tests/faults/anomalies.h"
#include "tests/faults/linearizability.h"

namespace strongroom::faults {
namespace {

constexpr size_t kMaxWindow = 24;

int Main(int argc, char** argv) {
  CheckOptions options;
  bool quiet = false;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (absl::StartsWith(arg, "--max-states=")) {
      if (!absl::SimpleAtoi(arg.substr(13), &options.max_states_per_key) ||
          options.max_states_per_key == 0) {
        std::cerr << "--max-states needs a positive number\n";
        return 2;
      }
    } else if (arg == "--quiet") {
      quiet = true;
    } else if (path.empty() && !absl::StartsWith(arg, "-")) {
      path = arg;
    } else {
      std::cerr << "usage: strongroom-fault-check [--max-states=N] [--quiet] HISTORY.jsonl\n";
      return 2;
    }
  }
  if (path.empty()) {
    std::cerr << "usage: strongroom-fault-check [--max-states=N] [--quiet] HISTORY.jsonl\n";
    return 2;
  }
  std::ifstream in(path);
  if (!in) {
    std::cerr << "cannot open " << path << "\n";
    return 2;
  }
  auto history = ParseHistory(in);
  if (!history.ok()) {
    std::cerr << history.status().message() << "\n";
    return 2;
  }

  size_t ok = 0, fail = 0, unknown = 0;
  for (const Op& op : history->ops) {
    ok += op.outcome == Outcome::kOk;
    fail += op.outcome == Outcome::kFail;
    unknown += op.outcome == Outcome::kUnknown;
  }
  size_t bad_keys = 0, undecided = 0, keys = 0;
  for (const KeyVerdict& v : CheckLinearizable(history->ops, options)) {
    ++keys;
    if (v.verdict == Verdict::kLinearizable) continue;
    if (v.verdict == Verdict::kUndecided) {
      ++undecided;
      std::cout << "key " << v.key << ": " << VerdictName(v.verdict) << " (" << v.ops
                << " operations): " << v.explanation << "\n";
      continue;
    }
    ++bad_keys;
    std::cout << "key " << v.key << ": NOT LINEARIZABLE (" << v.ops
              << " operations): " << v.explanation << "\n";
    if (quiet) continue;
    size_t shown = 0;
    for (const Op& op : v.window) {
      if (++shown > kMaxWindow) {
        std::cout << "    ... " << v.window.size() - kMaxWindow << " more overlapping\n";
        break;
      }
      std::cout << "    " << Describe(op) << "\n";
    }
  }
  const Anomalies anomalies = FindAnomalies(*history);
  if (!quiet) {
    for (const Finding& f : anomalies.findings) {
      std::cout << FindingName(f.type) << " on " << f.key << ": " << f.text << "\n";
    }
  }
  nlohmann::json summary = {{"ops", history->ops.size()},
                            {"ok", ok},
                            {"fail", fail},
                            {"unknown", unknown},
                            {"keys", keys},
                            {"nonlinearizable_keys", bad_keys},
                            {"undecided_keys", undecided},
                            {"lost_writes", anomalies.lost_writes},
                            {"stale_reads", anomalies.stale_reads},
                            {"duplicated_writes", anomalies.duplicated_writes}};
  std::cout << summary.dump() << "\n";
  const bool clean = bad_keys == 0 && anomalies.lost_writes == 0 && anomalies.stale_reads == 0 &&
                     anomalies.duplicated_writes == 0;
  return clean ? 0 : 1;
}

}  // namespace
}  // namespace strongroom::faults

int main(int argc, char** argv) { return strongroom::faults::Main(argc, argv); }
