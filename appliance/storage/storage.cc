#include "appliance/storage/storage.h"

#include "base/status_macros.h"

namespace strongroom::storage {

absl::StatusOr<std::optional<std::string>> View::Get(std::string_view key) {
  return parent_->Get(Full(key));
}
absl::Status View::Put(std::string_view key, std::string_view value) {
  return parent_->Put(Full(key), value);
}
absl::Status View::Delete(std::string_view key) { return parent_->Delete(Full(key)); }
absl::StatusOr<std::vector<std::string>> View::List(std::string_view prefix) {
  return parent_->List(Full(prefix));
}
absl::Status View::Apply(const std::vector<BatchOp>& ops) {
  std::vector<BatchOp> full;
  full.reserve(ops.size());
  for (const auto& op : ops) full.push_back({op.kind, Full(op.key), op.value});
  return parent_->Apply(full);
}

std::shared_ptr<PendingWrite> View::Submit(std::vector<BatchOp> ops) {
  for (auto& op : ops) op.key.insert(0, prefix_);
  return parent_->Submit(std::move(ops));
}
absl::StatusOr<std::optional<std::string>> View::GetLatest(std::string_view key) {
  return parent_->GetLatest(Full(key));
}

absl::Status DeletePrefix(Storage& storage, std::string_view prefix) {
  ASSIGN_OR_RETURN(auto names, storage.List(prefix));
  for (const auto& name : names) {
    std::string full = std::string(prefix) + name;
    if (!name.empty() && name.back() == '/') {
      RETURN_IF_ERROR(DeletePrefix(storage, full));
    } else {
      RETURN_IF_ERROR(storage.Delete(full));
    }
  }
  return absl::OkStatus();
}

void AppendListName(std::string_view prefix, std::string_view key, std::vector<std::string>* out) {
  std::string_view rest = key.substr(prefix.size());
  const size_t slash = rest.find('/');
  std::string name(slash == std::string_view::npos ? rest : rest.substr(0, slash + 1));
  if (out->empty() || out->back() != name) out->push_back(std::move(name));
}

}  // namespace strongroom::storage
