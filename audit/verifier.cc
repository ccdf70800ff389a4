#include "audit/verifier.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "audit/log_reader.h"
#include "audit/merkle.h"
#include "audit/parallel_verify.h"

namespace strongroom::audit {

std::string Break::ToString() const {
  return file + ":" + std::to_string(line) + ": seq " + std::to_string(seq) + ": " + reason;
}

Result<StartPoint> OpenStartPoint(std::string_view line, std::span<const PublicKey> keys,
                                  std::string source) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  AUDIT_ASSIGN_OR_RETURN(ChainedRecord rec, ParseChainedLine(line));
  if (!rec.is_checkpoint) return Err("the line is not a checkpoint line");
  if (!rec.frontier) {
    return Err(
        "the checkpoint line has no \"frontier\" (written before strongroom recorded it), so "
        "the Merkle tree cannot be continued from it: verify from seq 1");
  }
  Result<Checkpoint> opened = OpenCheckpoint(rec.note, keys);
  if (!opened.ok()) return Err("checkpoint rejected: " + opened.message());
  const Checkpoint& cp = *opened;
  if (cp.time != rec.time) return Err("checkpoint note time differs from the line's \"time\"");
  if (cp.head_seq + 1 != rec.seq || cp.head_hash != rec.prev_hash) {
    return Err("the checkpoint's head is not the line before it");
  }
  Result<CompactRange> tree = CompactRange::FromNodes(cp.tree_size, *rec.frontier);
  if (!tree.ok()) return Err("\"frontier\" does not fit the signed tree size: " + tree.message());
  if (tree->Root() != cp.root) {
    return Err("\"frontier\" does not reproduce the signed Merkle root");
  }
  StartPoint start;
  start.checkpoint.checkpoint = cp;
  start.checkpoint.note = rec.note;
  start.checkpoint.seq = rec.seq;
  start.checkpoint.file = std::move(source);
  start.checkpoint.line = 1;
  start.state.last_seq = rec.seq;
  start.state.last_hash = rec.hash;
  start.state.tree = std::move(tree).value();
  return start;
}

Verifier::Verifier(VerifyOptions options) : options_(std::move(options)) {
  if (options_.start) {
    const StartPoint& s = *options_.start;
    report_.state = s.state;
    report_.origin = s.checkpoint.checkpoint.Origin();
    report_.last_checkpoint = s.checkpoint;
    report_.first_seq = s.state.last_seq + 1;
    report_.start = s;
    if (options_.keep_leaves) report_.all_checkpoints.push_back(s.checkpoint);
  }
  if (options_.trusted) {
    const Checkpoint& t = *options_.trusted;
    if (report_.origin.empty()) report_.origin = t.Origin();
    // A checkpoint of the empty tree / before the first line is trivially reached.
    trusted_root_seen_ = t.tree_size == 0 && t.root == EmptyTreeRoot();
    trusted_head_seen_ = t.head_seq == 0;
    if (options_.start) {
      // What the start point already covers is checked against it here; the rest as usual.
      const Checkpoint& s = options_.start->checkpoint.checkpoint;
      const uint64_t s_seq = options_.start->checkpoint.seq;
      trusted_contradicts_start_ = t.Origin() != s.Origin();
      if (t.tree_size < s.tree_size || t.head_seq < s.head_seq) {
        trusted_before_start_ = !(trusted_root_seen_ && trusted_head_seen_);
      } else {
        if (t.tree_size == s.tree_size) {
          trusted_root_seen_ = true;
          trusted_contradicts_start_ |= t.root != s.root;
        }
        if (t.head_seq == s.head_seq) {
          trusted_head_seen_ = true;
          trusted_contradicts_start_ |= t.head_hash != s.head_hash;
        } else if (t.head_seq == s_seq) {
          trusted_head_seen_ = true;
          trusted_contradicts_start_ |= t.head_hash != options_.start->state.last_hash;
        }
      }
    }
  }
}

void Verifier::BeginFile(std::string name) {
  file_ = std::move(name);
  line_in_file_ = 0;
  ++report_.files;
}

void Verifier::BeginSegment(const StartPoint& start, std::string file) {
  segment_start_ = start;
  report_.state = start.state;
  report_.origin = start.checkpoint.checkpoint.Origin();
  report_.last_checkpoint = start.checkpoint;
  file_ = std::move(file);
  line_in_file_ = 0;
}

bool Verifier::SameState(const Verifier& segment) const {
  return report_.state == segment.segment_start_.state &&
         report_.origin == segment.report_.origin && report_.last_checkpoint &&
         report_.last_checkpoint->seq == segment.segment_start_.checkpoint.seq;
}

void Verifier::MergeSegment(Verifier&& segment) {
  Report& s = segment.report_;
  const uint64_t base = line_in_file_;
  report_.lines += s.lines;
  report_.bytes += s.bytes;
  report_.entries += s.entries;
  report_.checkpoints += s.checkpoints;
  report_.macs += s.macs;
  if (s.lines > 0) {
    if (report_.first_time.empty()) report_.first_time = s.first_time;
    report_.last_time = s.last_time;
  }
  if (s.checkpoints > 0) {
    report_.last_checkpoint = std::move(s.last_checkpoint);
    report_.last_checkpoint->line += base;
  }
  for (UnprovenTail& u : s.unproven) {
    if (report_.unproven.size() >= 1000) break;
    u.marker_line += base;
    report_.unproven.push_back(std::move(u));
  }
  report_.unproven_markers += s.unproven_markers;
  report_.unproven_lines += s.unproven_lines;
  // The segment starts right after a checkpoint line: its unsigned tail is the log's.
  report_.unsigned_lines = s.unsigned_lines;
  first_unsigned_file_ = segment.first_unsigned_file_;
  first_unsigned_line_ = segment.first_unsigned_line_ + base;
  report_.state = std::move(s.state);
  report_.leaf_hashes.insert(report_.leaf_hashes.end(), s.leaf_hashes.begin(), s.leaf_hashes.end());
  report_.leaf_seqs.insert(report_.leaf_seqs.end(), s.leaf_seqs.begin(), s.leaf_seqs.end());
  for (VerifiedCheckpoint& c : s.all_checkpoints) {
    c.line += base;
    report_.all_checkpoints.push_back(std::move(c));
  }
  if (s.captured_line) report_.captured_line = std::move(s.captured_line);
  trusted_root_seen_ |= segment.trusted_root_seen_;
  trusted_head_seen_ |= segment.trusted_head_seen_;
  line_in_file_ += segment.line_in_file_;
  fast_path_lines_ += segment.fast_path_lines_;
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
  report_.bytes += line.size() + (terminated ? 1 : 0);
  ChainState& st = report_.state;
  const uint64_t expected = st.last_seq + 1;
  if (st.last_seq == UINT64_MAX) return Fail("sequence number overflow");
  if (!terminated) {
    return Fail(
        "incomplete last line (no newline at the end of the file): an interrupted write "
        "or a cut file");
  }
  // Records and MAC lines that are certainly fine take the fast path (fast_line.h); anything
  // else, including every line that breaks, the full parser, which names the reason.
  FastLine fast;
  if (!options_.full_parser_only && fast_.Check(line, &fast) && fast.seq == expected &&
      fast.prev_hash == st.last_hash) {
    ++fast_path_lines_;
    LineFacts f;
    f.seq = fast.seq;
    f.hash = fast.hash;
    f.time = fast.time;
    f.is_mac = fast.is_mac;
    f.leaf = fast.leaf;
    CheckTrusted(f);
    if (!failed()) Commit(f, line);
    return;
  }
  Result<ChainedRecord> parsed = ParseChainedLine(line);
  if (!parsed.ok()) return Fail(parsed.message());
  const ChainedRecord& rec = *parsed;
  const bool after_start = options_.start && report_.lines == 0;
  if (rec.seq != expected) {
    if (expected == 1) {
      return Fail("the log starts at seq " + std::to_string(rec.seq) +
                  ", not 1: earlier files are missing or the files are out of order");
    }
    if (after_start) {
      return Fail("the files start at seq " + std::to_string(rec.seq) +
                  ", but the starting checkpoint (seq " + std::to_string(st.last_seq) +
                  ") is followed by seq " + std::to_string(expected) +
                  ": files between are missing, or the files are out of order");
    }
    return Fail("found seq " + std::to_string(rec.seq) + " where seq " + std::to_string(expected) +
                " belongs: a line was deleted, inserted or moved, or files are out of order");
  }
  if (rec.prev_hash != st.last_hash) {
    return Fail(expected == 1 ? "the first line's prev_hash is not all zeros"
                : after_start
                    ? "prev_hash is not the hash of the starting checkpoint line: the files do "
                      "not continue the log that checkpoint is from"
                    : "prev_hash is not the hash of the previous line: the line before "
                      "was replaced, or lines from another log were spliced in");
  }
  LineFacts f;
  f.seq = rec.seq;
  f.hash = rec.hash;
  f.time = rec.time;
  f.is_mac = rec.is_mac;
  f.is_checkpoint = rec.is_checkpoint;
  f.is_unproven = rec.is_unproven;
  if (f.is_leaf()) f.leaf = HashLeaf(rec.canonical);
  if (rec.is_checkpoint) VerifyCheckpointLine(rec);
  if (rec.is_unproven) VerifyUnprovenLine(rec);
  CheckTrusted(f);
  if (!failed()) Commit(f, line);
}

void Verifier::Commit(const LineFacts& f, std::string_view line) {
  ChainState& st = report_.state;
  if (f.is_mac) ++report_.macs;
  if (f.is_leaf()) {
    st.tree.Append(f.leaf);
    ++report_.entries;
    if (options_.keep_leaves) {
      report_.leaf_hashes.push_back(f.leaf);
      report_.leaf_seqs.push_back(f.seq);
    }
  }
  st.last_seq = f.seq;
  st.last_hash = f.hash;
  ++report_.lines;
  if (report_.first_time.empty()) report_.first_time = f.time;
  report_.last_time = f.time;
  if (f.is_checkpoint) {
    report_.unsigned_lines = 0;
    first_unsigned_file_.reset();
  } else {
    if (report_.unsigned_lines++ == 0) {
      first_unsigned_file_ = file_;
      first_unsigned_line_ = line_in_file_;
    }
  }
  if (options_.capture_seq && *options_.capture_seq == f.seq) {
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
      PartialLeaves leaves;
      if (options_.start) {
        leaves.base_size = options_.start->state.tree.size();
        leaves.base_nodes = options_.start->state.tree.nodes();
      }
      leaves.later = report_.leaf_hashes;
      Result<std::vector<Hash>> proof = MakeConsistencyProof(leaves, prev.tree_size, cp.tree_size);
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

void Verifier::CheckTrusted(const LineFacts& rec) {
  if (!options_.trusted || failed()) return;
  const Checkpoint& t = *options_.trusted;
  const ChainState& st = report_.state;
  const Hash& leaf = rec.leaf;
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
    FailAtEnd(options_.start ? "no audit lines after the starting checkpoint"
                             : "no audit lines: the log is empty");
    return std::move(report_);
  }
  if (trusted_before_start_) {
    FailAtEnd("the trusted checkpoint is older than the starting checkpoint (tree size " +
              std::to_string(options_.start->checkpoint.checkpoint.tree_size) +
              "): it can only be checked against files from before that point");
    report_.failure->kind = Break::Kind::kIo;
    return std::move(report_);
  }
  if (trusted_contradicts_start_) {
    FailAtEnd(
        "the trusted checkpoint contradicts the starting checkpoint (another origin, or the "
        "same tree size or head with different hashes): the log forked or is another log");
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
  // (A start point is a signed checkpoint too: what follows it is an unsigned tail as usual.)
  if (report_.checkpoints == 0 && !report_.trusted_matched && !options_.start) {
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

// Streams (part of) one file, plain or gzip, into the verifier in large blocks.
uint64_t FeedFileRange(const std::string& path, uint64_t begin, uint64_t end, Verifier* verifier) {
  Result<LogFile> file = LogFile::Open(path);
  if (!file.ok()) {
    verifier->FailLine(Break::Kind::kIo, file.message());
    return begin;
  }
  LineReader reader(&*file, begin, end);
  std::string_view line;
  bool terminated = false;
  while (!verifier->failed()) {
    switch (reader.Read(&line, &terminated)) {
      case LineReader::Next::kLine:
        verifier->AddLine(line, terminated);
        break;
      case LineReader::Next::kEnd:
        return reader.offset();
      case LineReader::Next::kOverlong:
        verifier->FailLine(Break::Kind::kTamper, "line longer than 16 MiB");
        return reader.offset();
      case LineReader::Next::kError:
        verifier->FailLine(reader.data_error() ? Break::Kind::kTamper : Break::Kind::kIo,
                           reader.error());
        return reader.offset();
    }
  }
  return reader.offset();
}

Report VerifyFiles(std::span<const std::string> paths, const VerifyOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  Report report;
  if (options.threads > 1 && !paths.empty()) {
    report = VerifyFilesParallel(paths, options);
  } else {
    Verifier verifier(options);
    for (const std::string& path : paths) {
      verifier.BeginFile(path);
      FeedFileRange(path, 0, UINT64_MAX, &verifier);
      if (verifier.failed()) break;
    }
    report = verifier.Finish();
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.threads = std::max(1u, options.threads);
  return report;
}

}  // namespace strongroom::audit
