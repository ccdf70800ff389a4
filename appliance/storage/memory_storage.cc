#include "appliance/storage/memory_storage.h"

namespace strongroom::storage {

absl::StatusOr<std::optional<std::string>> MemoryStorage::Get(std::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = data_.find(key);
  if (it == data_.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

absl::Status MemoryStorage::Put(std::string_view key, std::string_view value) {
  std::lock_guard<std::mutex> lock(mu_);
  data_.insert_or_assign(std::string(key), std::string(value));
  return absl::OkStatus();
}

absl::Status MemoryStorage::Delete(std::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = data_.find(key);
  if (it != data_.end()) data_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> MemoryStorage::List(std::string_view prefix) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (auto it = data_.lower_bound(prefix); it != data_.end() && it->first.starts_with(prefix);
       ++it) {
    AppendListName(prefix, it->first, &out);
  }
  return out;
}

absl::Status MemoryStorage::Apply(const std::vector<BatchOp>& ops) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& op : ops) {
    if (op.kind == BatchOp::Kind::kPut) {
      data_.insert_or_assign(op.key, op.value);
    } else {
      auto it = data_.find(op.key);
      if (it != data_.end()) data_.erase(it);
    }
  }
  return absl::OkStatus();
}

}  // namespace strongroom::storage
