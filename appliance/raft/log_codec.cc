#include "appliance/raft/log_codec.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/strings.h"

namespace strongroom::raft {
namespace {

constexpr std::string_view kBatchMagic = "SRB1";
constexpr std::string_view kSnapshotMagic = "SRS1";
constexpr uint8_t kPut = 1;
constexpr uint8_t kDelete = 2;

template <typename T>
void PutInt(std::string* out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutBytes(std::string* out, std::string_view b) {
  PutInt<uint32_t>(out, static_cast<uint32_t>(b.size()));
  out->append(b);
}

// Reads from a view, failing (not crashing) on every short read.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <typename T>
  bool Int(T* v) {
    if (in_.size() < sizeof(T)) return false;
    T r = 0;
    for (size_t i = 0; i < sizeof(T); ++i)
      r = static_cast<T>(r | (static_cast<T>(static_cast<uint8_t>(in_[i])) << (8 * i)));
    in_.remove_prefix(sizeof(T));
    *v = r;
    return true;
  }
  bool Bytes(std::string_view* b) {
    uint32_t n = 0;
    if (!Int(&n) || in_.size() < n) return false;
    *b = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool Magic(std::string_view m) {
    if (!in_.starts_with(m)) return false;
    in_.remove_prefix(m.size());
    return true;
  }
  size_t left() const { return in_.size(); }
  // Fewer than 8 zero bytes, and nothing else, are left.
  bool Padding() const {
    return in_.size() < 8 && in_.find_first_not_of('\0') == std::string_view::npos;
  }

 private:
  std::string_view in_;
};

absl::Status Malformed(std::string_view what) {
  return absl::DataLossError(absl::StrCat("malformed replicated ", Av(what)));
}

}  // namespace

EncodedOps EncodeOps(const std::vector<storage::BatchOp>& ops) {
  EncodedOps out;
  out.count = static_cast<uint32_t>(ops.size());
  for (const auto& op : ops) {
    bool put = op.kind == storage::BatchOp::Kind::kPut;
    out.bytes.push_back(static_cast<char>(put ? kPut : kDelete));
    PutBytes(&out.bytes, op.key);
    if (put) PutBytes(&out.bytes, op.value);
  }
  return out;
}

size_t JoinedBatchSize(const std::vector<const EncodedOps*>& parts) {
  size_t n = kBatchMagic.size() + sizeof(uint32_t);
  for (const EncodedOps* p : parts) n += p->bytes.size();
  return (n + 7) / 8 * 8;
}

void JoinBatch(const std::vector<const EncodedOps*>& parts, char* out) {
  uint64_t count = 0;
  for (const EncodedOps* p : parts) count += p->count;
  std::string header(kBatchMagic);
  PutInt<uint32_t>(&header, static_cast<uint32_t>(count));
  char* at = out;
  std::memcpy(at, header.data(), header.size());
  at += header.size();
  for (const EncodedOps* p : parts) {
    std::memcpy(at, p->bytes.data(), p->bytes.size());
    at += p->bytes.size();
  }
  std::memset(at, 0, static_cast<size_t>(out + JoinedBatchSize(parts) - at));
}

std::string EncodeBatch(const std::vector<storage::BatchOp>& ops) {
  const EncodedOps encoded = EncodeOps(ops);
  const std::vector<const EncodedOps*> parts = {&encoded};
  std::string out(JoinedBatchSize(parts), '\0');
  JoinBatch(parts, out.data());
  return out;
}

absl::StatusOr<std::vector<storage::BatchOp>> DecodeBatch(std::string_view bytes) {
  // The encoding is canonical: padded to exactly the next multiple of 8.
  if (bytes.size() % 8 != 0) return Malformed("batch (not a multiple of 8 bytes)");
  Reader r(bytes);
  uint32_t count = 0;
  if (!r.Magic(kBatchMagic) || !r.Int(&count)) return Malformed("batch header");
  // Every op takes at least 5 bytes: a count beyond that is a lie, not a reason to allocate.
  if (count > r.left() / 5) return Malformed("batch count");
  std::vector<storage::BatchOp> ops;
  ops.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint8_t kind = 0;
    std::string_view key, value;
    if (!r.Int(&kind) || !r.Bytes(&key)) return Malformed("batch op");
    if (kind == kPut) {
      if (!r.Bytes(&value)) return Malformed("batch value");
      ops.push_back(storage::BatchOp::Put(std::string(key), std::string(value)));
    } else if (kind == kDelete) {
      ops.push_back(storage::BatchOp::Delete(std::string(key)));
    } else {
      return Malformed("batch op kind");
    }
  }
  if (!r.Padding()) return Malformed("batch (trailing bytes)");
  return ops;
}

SnapshotWriter::SnapshotWriter(size_t piece_bytes) : piece_bytes_(piece_bytes) {
  pieces_.emplace_back(kSnapshotMagic);
  if (piece_bytes_ > 0) pieces_.back().reserve(piece_bytes_);
  PutInt<uint64_t>(&pieces_.back(), 0);
}

SnapshotWriter::SnapshotWriter(size_t piece_bytes, std::function<void(std::string&&)> on_piece)
    : SnapshotWriter(piece_bytes) {
  on_piece_ = std::move(on_piece);
}

void SnapshotWriter::Add(std::string_view key, std::string_view value) {
  const size_t pair = 8 + key.size() + value.size();
  if (piece_bytes_ > 0 && pieces_.back().size() + pair > piece_bytes_) {
    if (on_piece_ && pieces_.size() > 1) {
      on_piece_(std::move(pieces_.back()));
      pieces_.pop_back();
    }
    pieces_.emplace_back();
    pieces_.back().reserve(std::max(piece_bytes_, pair));
  }
  PutBytes(&pieces_.back(), key);
  PutBytes(&pieces_.back(), value);
  ++count_;
}

std::vector<std::string> SnapshotWriter::FinishPieces() && {
  std::string count;
  PutInt<uint64_t>(&count, count_);
  pieces_.front().replace(kSnapshotMagic.size(), count.size(), count);
  return std::move(pieces_);
}

std::string SnapshotWriter::Finish() && {
  std::vector<std::string> pieces = std::move(*this).FinishPieces();
  std::string out;
  for (const std::string& p : pieces) out += p;
  return out;
}

absl::Status DecodeSnapshot(
    std::string_view bytes,
    const std::function<absl::Status(std::string_view key, std::string_view value)>& each) {
  Reader r(bytes);
  uint64_t count = 0;
  if (!r.Magic(kSnapshotMagic) || !r.Int(&count)) return Malformed("snapshot header");
  if (count > r.left() / 8) return Malformed("snapshot count");
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view key, value;
    if (!r.Bytes(&key) || !r.Bytes(&value)) return Malformed("snapshot pair");
    absl::Status s = each(key, value);
    if (!s.ok()) return s;
  }
  if (r.left() != 0) return Malformed("snapshot (trailing bytes)");
  return absl::OkStatus();
}

}  // namespace strongroom::raft
