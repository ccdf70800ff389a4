// In-memory Storage for tests: the same conformance suite as RocksDbStorage.
#pragma once

#include <map>
#include <mutex>

#include "appliance/storage/storage.h"

namespace strongroom::storage {

class MemoryStorage final : public Storage {
 public:
  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override;
  absl::Status Put(std::string_view key, std::string_view value) override;
  absl::Status Delete(std::string_view key) override;
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix) override;
  absl::Status Apply(const std::vector<BatchOp>& ops) override;

 private:
  std::mutex mu_;
  std::map<std::string, std::string, std::less<>> data_;
};

}  // namespace strongroom::storage
