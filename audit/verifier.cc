#include "audit/verifier.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

#include "audit/merkle.h"

namespace strongroom::audit {

std::string Break::ToString() const {
  return file + ":" + std::to_string(line) + ": seq " + std::to_string(seq) + ": " + reason;
}

Verifier::Verifier(VerifyOptions options) : options_(std::move(options)) {
  if (options_.trusted) {
    const Checkpoint& t = *options_.trusted;
    report_.origin = t.Origin();
    // A checkpoint of the empty tree / before the first line is trivially reached.
    trusted_root_seen_ = t.tree_size == 0 && t.root == EmptyTreeRoot();
    trusted_head_seen_ = t.head_seq == 0;
  }
}

void Verifier::BeginFile(std::string name) {
  file_ = std::move(name);
  line_in_file_ = 0;
  ++report_.files;
}

void Verifier::Fail(std::string reason, Break::Kind kind) {
  if (failed()) return;
  Break b;
  b.kind = kind;
  b.file = file_;
  b.line = line_in_file_;
  b.seq = report_.state.last_seq + 1;
  b.reason = std::move(reason);
  report_.failure = std::move(b);
}

void Verifier::FailAtEnd(std::string reason) {
  ++line_in_file_;  // one past the last line of the last file
  Fail(std::move(reason));
}

void Verifier::FailLine(Break::Kind kind, std::string reason) {
  if (failed()) return;
  ++line_in_file_;
  Fail(std::move(reason), kind);
}

void Verifier::AddFileContents(std::string_view data) {
  while (!data.empty() && !failed()) {
    const size_t eol = data.find('\n');
    if (eol == std::string_view::npos) {
      AddLine(data, /*terminated=*/false);
      return;
    }
    AddLine(data.substr(0, eol), /*terminated=*/true);
    data.remove_prefix(eol + 1);
  }
}

void Verifier::AddLine(std::string_view line, bool terminated) {
  if (failed()) return;
  ++line_in_file_;
  ChainState& st = report_.state;
  const uint64_t expected = st.last_seq + 1;
  if (st.last_seq == UINT64_MAX) return Fail("sequence number overflow");
  if (!terminated) {
    return Fail(
        "incomplete last line (no newline at the end of the file): an interrupted write "
        "or a cut file");
  }
  Result<ChainedRecord> parsed = ParseChainedLine(line);
  if (!parsed.ok()) return Fail(parsed.message());
  const ChainedRecord& rec = *parsed;
  if (rec.seq != expected) {
    if (expected == 1) {
      return Fail("the log starts at seq " + std::to_string(rec.seq) +
                  ", not 1: earlier files are missing or the files are out of order");
    }
    return Fail("found seq " + std::to_string(rec.seq) + " where seq " + std::to_string(expected) +
                " belongs: a line was deleted, inserted or moved, or files are out of order");
  }
  if (rec.prev_hash != st.last_hash) {
    return Fail(expected == 1 ? "the first line's prev_hash is not all zeros"
                              : "prev_hash is not the hash of the previous line: the line before "
                                "was replaced, or lines from another log were spliced in");
  }
  const Hash leaf = rec.is_leaf() ? HashLeaf(rec.canonical) : Hash{};
  if (rec.is_checkpoint) VerifyCheckpointLine(rec);
  if (rec.is_unproven) VerifyUnprovenLine(rec);
  CheckTrusted(rec, leaf);
  if (failed()) return;
  // The line is good: commit it.
  if (rec.is_mac) ++report_.macs;
  if (rec.is_leaf()) {
    st.tree.Append(leaf);
    ++report_.entries;
    if (options_.keep_leaves) {
      report_.leaf_hashes.push_back(leaf);
      report_.leaf_seqs.push_back(rec.seq);
    }
  }
  st.last_seq = rec.seq;
  st.last_hash = rec.hash;
  ++report_.lines;
  if (report_.first_time.empty()) report_.first_time = rec.time;
  report_.last_time = rec.time;
  if (rec.is_checkpoint) {
    report_.unsigned_lines = 0;
    first_unsigned_file_.reset();
  } else {
    if (report_.unsigned_lines++ == 0) {
      first_unsigned_file_ = file_;
      first_unsigned_line_ = line_in_file_;
    }
  }
  if (options_.capture_seq && *options_.capture_seq == rec.seq) {
    report_.captured_line = std::string(line);
  }
}

void Verifier::VerifyCheckpointLine(const ChainedRecord& rec) {
  const ChainState& st = report_.state;
  Result<Checkpoint> opened = OpenCheckpoint(rec.note, options_.keys);
  if (!opened.ok()) return Fail("checkpoint rejected: " + opened.message());
  const Checkpoint& cp = *opened;
  if (cp.time != rec.time) return Fail("checkpoint note time differs from the line's \"time\"");
  const std::string origin = cp.Origin();
  if (report_.origin.empty()) {
    report_.origin = origin;
  } else if (origin != report_.origin) {
    return Fail("checkpoint origin " + origin + " differs from " + report_.origin +
                ": lines from another audit device or node were spliced in");
  }
  if (cp.head_seq != rec.seq - 1 || cp.head_hash != st.last_hash) {
    return Fail("checkpoint head (seq " + std::to_string(cp.head_seq) +
                ") is not the line before it: the checkpoint was moved or lines were replaced");
  }
  const std::string since =
      report_.last_checkpoint ? "since the previous checkpoint (" + report_.last_checkpoint->file +
                                    ":" + std::to_string(report_.last_checkpoint->line) + ")"
                              : "since the start of the log";
  if (cp.tree_size != st.tree.size()) {
    return Fail("checkpoint signs " + std::to_string(cp.tree_size) + " entries but " +
                std::to_string(st.tree.size()) + " precede it: entries were inserted or removed " +
                since);
  }
  if (cp.root != st.tree.Root()) {
    return Fail(
        "checkpoint root differs from the Merkle root of the entries before it: an "
        "entry was altered, inserted, removed or reordered " +
        since);
  }
  if (rec.frontier && *rec.frontier != st.tree.nodes()) {
    return Fail("checkpoint \"frontier\" is not the Merkle tree's compact range");
  }
  if (options_.keep_leaves && report_.last_checkpoint) {
    // Redundant with the recomputation above, but it is what an auditor holding only the two
    // checkpoints would check: the previous head is a prefix of this one.
    const Checkpoint& prev = report_.last_checkpoint->checkpoint;
    if (prev.tree_size > 0) {
      Result<std::vector<Hash>> proof =
          MakeConsistencyProof(report_.leaf_hashes, prev.tree_size, cp.tree_size);
      Status consistent =
          proof.ok() ? VerifyConsistency(prev.tree_size, cp.tree_size, *proof, prev.root, cp.root)
                     : proof.status();
      if (!consistent.ok()) {
        return Fail("checkpoint is inconsistent with the previous one: " + consistent.message());
      }
    }
  }
  VerifiedCheckpoint v;
  v.checkpoint = cp;
  v.note = rec.note;
  v.seq = rec.seq;
  v.file = file_;
  v.line = line_in_file_;
  if (options_.keep_leaves) report_.all_checkpoints.push_back(v);
  report_.last_checkpoint = std::move(v);
  ++report_.checkpoints;
}

void Verifier::VerifyUnprovenLine(const ChainedRecord& rec) {
  ++report_.unproven_markers;
  report_.unproven_lines += rec.removed_lines;
  if (report_.unproven.size() >= 1000) return;
  UnprovenTail u;
  u.marker_seq = rec.seq;
  u.file = file_;
  u.marker_line = line_in_file_;
  u.lines = rec.removed_lines;
  u.bytes = rec.removed_bytes;
  u.sha256 = HexEncode(rec.removed_sha256);
  u.moved_to = rec.moved_to;
  u.reason = rec.reason;
  report_.unproven.push_back(std::move(u));
}

void Verifier::CheckTrusted(const ChainedRecord& rec, const Hash& leaf) {
  if (!options_.trusted || failed()) return;
  const Checkpoint& t = *options_.trusted;
  const ChainState& st = report_.state;
  if (rec.is_leaf() && !trusted_root_seen_ && st.tree.size() + 1 == t.tree_size) {
    // This entry completes the tree the trusted checkpoint signed (computed on a copy: the
    // line is not committed until every check passed).
    CompactRange tree = st.tree;
    tree.Append(leaf);
    if (tree.Root() != t.root) {
      return Fail("the log differs from the trusted checkpoint: the Merkle root over the first " +
                  std::to_string(t.tree_size) +
                  " entries does not match (an entry up to here was altered, or the log forked)");
    }
    trusted_root_seen_ = true;
  }
  if (!trusted_head_seen_ && rec.seq == t.head_seq) {
    if (rec.hash != t.head_hash) {
      return Fail("the hash of this line differs from the head of the trusted checkpoint");
    }
    trusted_head_seen_ = true;
  }
}

Report Verifier::Finish() {
  if (failed()) return std::move(report_);
  if (report_.lines == 0) {
    FailAtEnd("no audit lines: the log is empty");
    return std::move(report_);
  }
  if (options_.trusted && !(trusted_root_seen_ && trusted_head_seen_)) {
    const Checkpoint& t = *options_.trusted;
    FailAtEnd("the log ends at seq " + std::to_string(report_.state.last_seq) + " with " +
              std::to_string(report_.state.tree.size()) +
              " entries, but the trusted checkpoint covers seq " + std::to_string(t.head_seq) +
              " and " + std::to_string(t.tree_size) +
              " entries: the tail was cut off or this is an older copy");
    return std::move(report_);
  }
  report_.trusted_matched = options_.trusted.has_value();
  if (report_.checkpoints == 0 && !report_.trusted_matched) {
    FailAtEnd("no signed checkpoint in the log: nothing authenticates its " +
              std::to_string(report_.lines) + " lines");
    return std::move(report_);
  }
  if (options_.require_signed_tail && report_.unsigned_lines > 0) {
    Break b;
    b.file = *first_unsigned_file_;
    b.line = first_unsigned_line_;
    b.seq = report_.state.last_seq - report_.unsigned_lines + 1;
    b.reason = std::to_string(report_.unsigned_lines) +
               " lines from here on are not covered by a signed checkpoint";
    report_.failure = std::move(b);
  }
  return std::move(report_);
}

namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// Streams one file into the verifier in chunks, holding at most one line in memory.
void FeedFile(const std::string& path, Verifier* verifier) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    verifier->FailLine(Break::Kind::kIo, "cannot open: " + std::string(std::strerror(errno)));
    return;
  }
  std::string pending;
  std::string chunk(1 << 20, '\0');
  bool overlong = false;
  while (!verifier->failed()) {
    const size_t n = std::fread(chunk.data(), 1, chunk.size(), f.get());
    if (n == 0) {
      if (std::ferror(f.get())) {
        verifier->FailLine(Break::Kind::kIo, "read error: " + std::string(std::strerror(errno)));
        return;
      }
      break;
    }
    std::string_view data(chunk.data(), n);
    while (!data.empty() && !verifier->failed()) {
      const size_t eol = data.find('\n');
      const std::string_view part = data.substr(0, eol);
      if (!overlong) {
        if (pending.size() + part.size() > kMaxLineBytes) {
          overlong = true;
          pending.clear();
        } else {
          pending.append(part);
        }
      }
      if (eol == std::string_view::npos) break;
      data.remove_prefix(eol + 1);
      if (overlong) {
        verifier->FailLine(Break::Kind::kTamper, "line longer than 16 MiB");
        return;
      }
      verifier->AddLine(pending, /*terminated=*/true);
      pending.clear();
    }
  }
  if (verifier->failed()) return;
  if (overlong) {
    verifier->FailLine(Break::Kind::kTamper, "line longer than 16 MiB");
  } else if (!pending.empty()) {
    verifier->AddLine(pending, /*terminated=*/false);
  }
}

}  // namespace

Report VerifyFiles(std::span<const std::string> paths, const VerifyOptions& options) {
  Verifier verifier(options);
  for (const std::string& path : paths) {
    verifier.BeginFile(path);
    FeedFile(path, &verifier);
    if (verifier.failed()) break;
  }
  return verifier.Finish();
}

}  // namespace strongroom::audit
