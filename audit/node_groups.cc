#include "audit/node_groups.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>

#include "audit/chain.h"
#include "audit/checkpoint.h"
#include "audit/log_reader.h"
#include "audit/note.h"

namespace strongroom::audit {

namespace {

// A canonical checkpoint line ends with its last member, "type" (members are sorted).
constexpr std::string_view kCheckpointLineEnd = R"("type":"checkpoint"})";

struct Scan {
  std::string path;
  std::optional<std::string> origin;
  std::optional<uint64_t> first_seq;  // of the first line, when it parses
  Hash first_prev{};
  std::optional<std::string> io_error;
  std::optional<Hash> last_hash;  // computed on demand
  bool last_hash_done = false;
};

std::optional<std::string> OriginOf(const ChainedRecord& rec) {
  Result<SignedNote> note = ParseSignedNote(rec.note);
  if (!note.ok()) return std::nullopt;
  Result<Checkpoint> cp = ParseCheckpointText(note->text);
  if (!cp.ok()) return std::nullopt;
  return cp->Origin();
}

// Reads up to the first checkpoint line: the first line's seq and prev_hash, and the origin.
Scan ScanFile(const std::string& path) {
  Scan s;
  s.path = path;
  Result<LogFile> file = LogFile::Open(path);
  if (!file.ok()) {
    s.io_error = file.message();
    return s;
  }
  if (!file->regular()) return s;  // a pipe is read once, by the verifier
  LineReader reader(&*file);
  std::string_view line;
  bool terminated = false;
  bool first = true;
  while (reader.Read(&line, &terminated) == LineReader::Next::kLine) {
    const bool checkpoint_like = line.ends_with(kCheckpointLineEnd);
    if (first || checkpoint_like) {
      Result<ChainedRecord> rec = ParseChainedLine(line);
      if (first && rec.ok()) {
        s.first_seq = rec->seq;
        s.first_prev = rec->prev_hash;
      }
      first = false;
      if (rec.ok() && rec->is_checkpoint) {
        s.origin = OriginOf(*rec);
        if (s.origin) break;
      }
    }
  }
  return s;
}

// The hash of the file's last line (a line that does not parse gives none).
std::optional<Hash> LastLineHash(const std::string& path) {
  Result<LogFile> file = LogFile::Open(path);
  if (!file.ok() || !file->regular()) return std::nullopt;
  // Plain files: the last 64 KiB usually hold the whole last line.
  uint64_t begin = 0;
  if (!file->compressed() && file->disk_size() > (64 << 10)) begin = file->disk_size() - (64 << 10);
  for (int attempt = 0; attempt < 2; ++attempt) {
    LineReader reader(&*file, begin);
    std::string last;
    uint64_t lines = 0;
    std::string_view line;
    bool terminated = false;
    while (reader.Read(&line, &terminated) == LineReader::Next::kLine) {
      last.assign(line);
      ++lines;
    }
    if (begin == 0 || lines >= 2) {
      Result<ChainedRecord> rec = ParseChainedLine(last);
      if (!rec.ok()) return std::nullopt;
      return rec->hash;
    }
    begin = 0;  // the last line is longer than the tail read: read it all
    Result<LogFile> again = LogFile::Open(path);
    if (!again.ok()) return std::nullopt;
    *file = std::move(again).value();
  }
  return std::nullopt;
}

}  // namespace

FileGroups GroupFilesByOrigin(std::span<const std::string> paths) {
  std::vector<Scan> scans;
  scans.reserve(paths.size());
  std::map<std::string, std::vector<size_t>> by_origin;
  for (const std::string& path : paths) {
    scans.push_back(ScanFile(path));
    if (scans.back().origin) by_origin[*scans.back().origin].push_back(scans.size() - 1);
  }
  FileGroups groups;
  if (by_origin.size() <= 1) {
    // One log: the files as given (the verifier names files that are out of order).
    NodeFiles one;
    if (!by_origin.empty()) one.origin = by_origin.begin()->first;
    one.files.assign(paths.begin(), paths.end());
    groups.nodes.push_back(std::move(one));
    return groups;
  }
  // Files without a checkpoint join the node whose file they continue (repeat: such files can
  // continue each other).
  std::vector<std::optional<std::string>> origin(scans.size());
  for (size_t i = 0; i < scans.size(); ++i) origin[i] = scans[i].origin;
  bool changed = true;
  while (changed) {
    changed = false;
    for (size_t i = 0; i < scans.size(); ++i) {
      if (origin[i] || !scans[i].first_seq || *scans[i].first_seq <= 1) continue;
      for (size_t j = 0; j < scans.size() && !origin[i]; ++j) {
        if (!origin[j] || !scans[j].first_seq || *scans[j].first_seq >= *scans[i].first_seq) {
          continue;
        }
        Scan& candidate = scans[j];
        if (!candidate.last_hash_done) {
          candidate.last_hash = LastLineHash(candidate.path);
          candidate.last_hash_done = true;
        }
        if (candidate.last_hash && *candidate.last_hash == scans[i].first_prev) {
          origin[i] = origin[j];
          by_origin[*origin[j]].push_back(i);
          changed = true;
        }
      }
    }
  }
  for (size_t i = 0; i < scans.size(); ++i) {
    if (origin[i]) continue;
    UnattributedFile u;
    u.file = scans[i].path;
    if (scans[i].io_error) {
      u.reason = *scans[i].io_error;
      u.io = true;
    } else {
      u.reason =
          "cannot tell which node wrote this file: it holds no checkpoint line and does not "
          "continue any other file given";
    }
    groups.unattributed.push_back(std::move(u));
  }
  for (auto& [name, members] : by_origin) {
    // Oldest first; files whose first line does not parse go last (the verifier names them).
    std::stable_sort(members.begin(), members.end(), [&](size_t a, size_t b) {
      const uint64_t sa = scans[a].first_seq.value_or(UINT64_MAX);
      const uint64_t sb = scans[b].first_seq.value_or(UINT64_MAX);
      return sa < sb;
    });
    NodeFiles node;
    node.origin = name;
    for (size_t i : members) node.files.push_back(scans[i].path);
    groups.nodes.push_back(std::move(node));
  }
  return groups;
}

bool MultiReport::ok() const {
  if (!unattributed.empty()) return false;
  for (const NodeReport& n : nodes) {
    if (!n.report.ok() || !n.report.proven()) return false;
  }
  return true;
}

Result<MultiReport> VerifyNodes(const FileGroups& groups, const VerifyOptions& options,
                                std::span<const StartPoint> starts,
                                std::span<const Checkpoint> trusted) {
  std::vector<const StartPoint*> start_of(groups.nodes.size(), nullptr);
  std::vector<const Checkpoint*> trusted_of(groups.nodes.size(), nullptr);
  auto index_of = [&](const std::string& origin) -> Result<size_t> {
    for (size_t i = 0; i < groups.nodes.size(); ++i) {
      if (groups.nodes[i].origin == origin) return i;
    }
    return Err("it is from " + origin + ", but no file given is");
  };
  for (const StartPoint& s : starts) {
    Result<size_t> i = index_of(s.checkpoint.checkpoint.Origin());
    if (!i.ok()) return Err("starting checkpoint " + s.checkpoint.file + ": " + i.message());
    if (start_of[*i] != nullptr) {
      return Err("two starting checkpoints for " + groups.nodes[*i].origin);
    }
    start_of[*i] = &s;
  }
  for (const Checkpoint& t : trusted) {
    Result<size_t> i = index_of(t.Origin());
    if (!i.ok()) return Err("trusted checkpoint: " + i.message());
    if (trusted_of[*i] != nullptr) {
      return Err("two trusted checkpoints for " + groups.nodes[*i].origin);
    }
    trusted_of[*i] = &t;
  }
  MultiReport out;
  out.unattributed = groups.unattributed;
  for (size_t i = 0; i < groups.nodes.size(); ++i) {
    VerifyOptions o = options;
    if (start_of[i] != nullptr) o.start = *start_of[i];
    if (trusted_of[i] != nullptr) o.trusted = *trusted_of[i];
    NodeReport n;
    n.origin = groups.nodes[i].origin;
    n.files = groups.nodes[i].files;
    n.report = VerifyFiles(n.files, o);
    out.nodes.push_back(std::move(n));
  }
  return out;
}

}  // namespace strongroom::audit
