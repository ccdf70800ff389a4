// libFuzzer target for what a Raft member hands the state machine: log entries (batches) and
// snapshots (appliance/raft/log_codec.h), decoded as untrusted bytes. Besides crashes, leaks and
// UB (ASan/UBSan), it checks:
//  - a batch that decodes re-encodes to the same bytes (the encoding is canonical);
//  - a snapshot that decodes re-encodes to the same bytes;
//  - errors are DataLoss only.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "appliance/raft/log_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using strongroom::raft::DecodeBatch;
  using strongroom::raft::DecodeSnapshot;
  using strongroom::raft::EncodeBatch;
  using strongroom::raft::SnapshotWriter;
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  auto batch = DecodeBatch(in);
  if (batch.ok()) {
    if (EncodeBatch(*batch) != in) std::abort();
  } else if (batch.status().code() != absl::StatusCode::kDataLoss) {
    std::abort();
  }

  std::vector<std::pair<std::string, std::string>> pairs;
  absl::Status s = DecodeSnapshot(in, [&](std::string_view k, std::string_view v) {
    pairs.emplace_back(k, v);
    return absl::OkStatus();
  });
  if (s.ok()) {
    SnapshotWriter w;
    for (const auto& [k, v] : pairs) w.Add(k, v);
    if (std::move(w).Finish() != in) std::abort();
  } else if (s.code() != absl::StatusCode::kDataLoss) {
    std::abort();
  }
  return 0;
}
