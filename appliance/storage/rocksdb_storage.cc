#include "appliance/storage/rocksdb_storage.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "absl/strings/str_cat.h"
#include "base/strings.h"

namespace strongroom::storage {
namespace {

absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("storage ", Av(what), ": ", s.ToString()));
}

rocksdb::WriteOptions WriteOpts(bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  wo.disableWAL = !sync;
  return wo;
}

rocksdb::Slice S(std::string_view v) { return rocksdb::Slice(v.data(), v.size()); }

}  // namespace

absl::StatusOr<std::unique_ptr<RocksDbStorage>> RocksDbStorage::Open(const std::string& path,
                                                                     bool sync) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  options.max_open_files = 256;
  options.keep_log_file_num = 4;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &db);
  if (!s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open RocksDB at \"", path, "\": ", s.ToString()));
  }
  return std::unique_ptr<RocksDbStorage>(new RocksDbStorage(db, sync));
}

RocksDbStorage::RocksDbStorage(rocksdb::DB* db, bool sync) : db_(db), sync_(sync) {}

RocksDbStorage::~RocksDbStorage() {
  if (db_) db_->Close().PermitUncheckedError();
}

absl::StatusOr<std::optional<std::string>> RocksDbStorage::Get(std::string_view key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), S(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "get");
  return std::optional<std::string>(std::move(value));
}

absl::Status RocksDbStorage::Put(std::string_view key, std::string_view value) {
  return FromRocks(db_->Put(WriteOpts(sync_), S(key), S(value)), "put");
}

absl::Status RocksDbStorage::Delete(std::string_view key) {
  return FromRocks(db_->Delete(WriteOpts(sync_), S(key)), "delete");
}

absl::StatusOr<std::vector<std::string>> RocksDbStorage::List(std::string_view prefix) {
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  it->Seek(S(prefix));
  while (it->Valid()) {
    std::string_view key(it->key().data(), it->key().size());
    if (!key.starts_with(prefix)) break;
    AppendListName(prefix, key, &out);
    const std::string& name = out.back();
    if (name.back() == '/') {
      // Skip the whole folder: seek just past "<prefix><name>" ('/' + 1 == '0').
      std::string next = absl::StrCat(Av(prefix), name);
      next.back() = static_cast<char>('/' + 1);
      it->Seek(next);
    } else {
      it->Next();
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "list");
  return out;
}

absl::Status RocksDbStorage::Apply(const std::vector<BatchOp>& ops) {
  rocksdb::WriteBatch batch;
  for (const auto& op : ops) {
    rocksdb::Status s = op.kind == BatchOp::Kind::kPut ? batch.Put(S(op.key), S(op.value))
                                                       : batch.Delete(S(op.key));
    if (!s.ok()) return FromRocks(s, "batch");
  }
  return FromRocks(db_->Write(WriteOpts(sync_), &batch), "batch write");
}

std::unique_ptr<RocksDbStorage::View> RocksDbStorage::Pin() {
  return std::unique_ptr<View>(new View(db_.get(), db_->GetSnapshot()));
}

RocksDbStorage::View::~View() { db_->ReleaseSnapshot(snapshot_); }

absl::Status RocksDbStorage::View::Scan(const ScanFn& each) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!each(std::string_view(it->key().data(), it->key().size()),
              std::string_view(it->value().data(), it->value().size()))) {
      break;
    }
  }
  return FromRocks(it->status(), "scan");
}

absl::Status RocksDbStorage::Scan(const ScanFn& each) { return Pin()->Scan(each); }

absl::Status RocksDbStorage::Clear() {
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    rocksdb::Status s = batch.Delete(it->key());
    if (!s.ok()) return FromRocks(s, "clear");
  }
  if (!it->status().ok()) return FromRocks(it->status(), "clear");
  return FromRocks(db_->Write(WriteOpts(sync_), &batch), "clear");
}

}  // namespace strongroom::storage
