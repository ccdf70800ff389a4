#include "audit/report_format.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <utility>

namespace strongroom::audit {

std::string B64(const Hash& h) { return Base64Encode(AsBytes(h)); }

namespace {

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

double PerSecond(double amount, double seconds) { return seconds > 0 ? amount / seconds : 0; }

// "1234567 lines/s, 1520.3 MB/s (12.345 s, 8 threads)"
std::string ThroughputText(uint64_t lines, uint64_t bytes, double seconds, unsigned threads) {
  return Fixed(PerSecond(static_cast<double>(lines), seconds), 0) + " lines/s, " +
         Fixed(PerSecond(static_cast<double>(bytes) / 1e6, seconds), 1) + " MB/s (" +
         Fixed(seconds, 3) + " s, " + std::to_string(threads) +
         (threads == 1 ? " thread)" : " threads)");
}

Json ThroughputJson(uint64_t lines, uint64_t bytes, double seconds, unsigned threads) {
  Json t = Json::Object();
  t.Set("seconds", *Json::Number(Fixed(seconds, 3)));
  t.Set("lines_per_second",
        *Json::Number(Fixed(PerSecond(static_cast<double>(lines), seconds), 0)));
  t.Set("megabytes_per_second",
        *Json::Number(Fixed(PerSecond(static_cast<double>(bytes) / 1e6, seconds), 1)));
  t.Set("bytes", Json::Uint(bytes));
  t.Set("threads", Json::Uint(threads));
  return t;
}

}  // namespace

Json CheckpointJson(const VerifiedCheckpoint& v) {
  Json j = Json::Object();
  j.Set("file", Json::String(v.file));
  j.Set("line", Json::Uint(v.line));
  j.Set("seq", Json::Uint(v.seq));
  j.Set("tree_size", Json::Uint(v.checkpoint.tree_size));
  j.Set("root", Json::String(B64(v.checkpoint.root)));
  j.Set("time", Json::String(v.checkpoint.time));
  return j;
}

Json ReportJson(const Report& r) {
  Json j = Json::Object();
  j.Set("ok", Json::Bool(r.ok() && r.proven()));
  j.Set("files", Json::Uint(r.files));
  j.Set("first_seq", Json::Uint(r.first_seq));
  j.Set("start_checkpoint", r.start ? CheckpointJson(r.start->checkpoint) : Json::Null());
  j.Set("lines", Json::Uint(r.lines));
  j.Set("entries", Json::Uint(r.entries));
  j.Set("checkpoints", Json::Uint(r.checkpoints));
  j.Set("first_time", Json::String(r.first_time));
  j.Set("last_time", Json::String(r.last_time));
  j.Set("origin", Json::String(r.origin));
  j.Set("last_seq", Json::Uint(r.state.last_seq));
  j.Set("tree_size", Json::Uint(r.state.tree.size()));
  j.Set("root", Json::String(B64(r.state.tree.Root())));
  j.Set("unsigned_lines", Json::Uint(r.unsigned_lines));
  j.Set("mac_lines", Json::Uint(r.macs));
  j.Set("unproven_lines", Json::Uint(r.unproven_lines));
  j.Set("unproven_markers", Json::Uint(r.unproven_markers));
  Json unproven = Json::Array();
  for (const UnprovenTail& u : r.unproven) {
    Json o = Json::Object();
    o.Set("marker_seq", Json::Uint(u.marker_seq));
    o.Set("file", Json::String(u.file));
    o.Set("marker_line", Json::Uint(u.marker_line));
    o.Set("lines", Json::Uint(u.lines));
    o.Set("bytes", Json::Uint(u.bytes));
    o.Set("sha256", Json::String(u.sha256));
    o.Set("moved_to", Json::String(u.moved_to));
    o.Set("reason", Json::String(u.reason));
    unproven.Append(std::move(o));
  }
  j.Set("unproven", std::move(unproven));
  j.Set("trusted_checkpoint_matched", Json::Bool(r.trusted_matched));
  j.Set("throughput", ThroughputJson(r.lines, r.bytes, r.seconds, r.threads));
  j.Set("last_checkpoint", r.last_checkpoint ? CheckpointJson(*r.last_checkpoint) : Json::Null());
  if (r.failure) {
    Json b = Json::Object();
    b.Set("kind", Json::String(r.failure->kind == Break::Kind::kIo ? "io" : "tamper"));
    b.Set("file", Json::String(r.failure->file));
    b.Set("line", Json::Uint(r.failure->line));
    b.Set("seq", Json::Uint(r.failure->seq));
    b.Set("reason", Json::String(r.failure->reason));
    j.Set("break", std::move(b));
  } else {
    j.Set("break", Json::Null());
  }
  return j;
}

std::string FailureText(const Report& r) {
  std::ostringstream out;
  out << r.failure->ToString() << "\n";
  out << "FAILED: " << r.lines << " lines (" << r.entries << " entries, " << r.checkpoints
      << " checkpoints) verified before the break\n";
  return out.str();
}

std::string ReportText(const Report& r) {
  if (!r.ok()) return FailureText(r);
  std::ostringstream out;
  if (r.proven()) {
    out << "OK: audit log intact\n";
  } else {
    out << "UNPROVEN: the chain and signatures hold, but the service found " << r.unproven_markers
        << " tail(s) it could not prove it wrote and moved them out of the log (below)\n";
  }
  out << "  files:              " << r.files << "\n";
  if (r.start) {
    const VerifiedCheckpoint& c = r.start->checkpoint;
    out << "  started after:      checkpoint seq " << c.seq << " (" << c.file << "), tree size "
        << c.checkpoint.tree_size << ", " << c.checkpoint.time << "\n";
  }
  out << "  lines:              " << r.lines << " (seq " << r.first_seq << ".." << r.state.last_seq
      << ")\n";
  out << "  entries verified:   " << r.entries << "\n";
  out << "  checkpoints:        " << r.checkpoints << " verified, origin " << r.origin << "\n";
  out << "  time span:          " << r.first_time << " .. " << r.last_time << "\n";
  if (r.last_checkpoint) {
    const VerifiedCheckpoint& c = *r.last_checkpoint;
    out << "  last checkpoint:    " << c.file << ":" << c.line << " (seq " << c.seq
        << "), tree size " << c.checkpoint.tree_size << ", root " << B64(c.checkpoint.root) << "\n";
  }
  out << "  unsigned tail:      " << r.unsigned_lines << " lines after the last checkpoint";
  if (r.unsigned_lines > 0) out << " (chained, but no signature covers them yet)";
  out << "\n";
  if (r.trusted_matched) out << "  trusted checkpoint: contained in the log\n";
  out << "  throughput:         " << ThroughputText(r.lines, r.bytes, r.seconds, r.threads) << "\n";
  for (const UnprovenTail& u : r.unproven) {
    out << "  unproven tail:      " << u.lines << " lines, " << u.bytes << " bytes (sha256 "
        << u.sha256 << ") moved to " << u.moved_to << "; marked at " << u.file << ":"
        << u.marker_line << " (seq " << u.marker_seq << "): " << u.reason << "\n";
  }
  return out.str();
}

namespace {

struct Totals {
  uint64_t intact = 0, unproven = 0, broken = 0;
  uint64_t files = 0, lines = 0, entries = 0, checkpoints = 0, bytes = 0;
  double seconds = 0;
  unsigned threads = 1;
};

Totals Sum(const MultiReport& m) {
  Totals t;
  for (const NodeReport& n : m.nodes) {
    const Report& r = n.report;
    if (!r.ok()) {
      ++t.broken;
    } else if (!r.proven()) {
      ++t.unproven;
    } else {
      ++t.intact;
    }
    t.files += n.files.size();
    t.lines += r.lines;
    t.entries += r.entries;
    t.checkpoints += r.checkpoints;
    t.bytes += r.bytes;
    t.seconds += r.seconds;  // the nodes are verified one after the other
    t.threads = std::max(t.threads, r.threads);
  }
  t.files += m.unattributed.size();
  return t;
}

}  // namespace

std::string MultiReportText(const MultiReport& m) {
  std::ostringstream out;
  for (const NodeReport& n : m.nodes) {
    out << "node " << n.origin << " (" << n.files.size() << " files)\n";
    out << ReportText(n.report) << "\n";
  }
  for (const UnattributedFile& u : m.unattributed) {
    out << "unattributed: " << u.file << ": " << u.reason << "\n";
  }
  if (!m.unattributed.empty()) out << "\n";
  const Totals t = Sum(m);
  out << (m.ok() ? "OK" : "FAILED") << ": " << m.nodes.size() << " nodes: " << t.intact
      << " intact, " << t.unproven << " unproven, " << t.broken << " broken";
  if (!m.unattributed.empty()) out << "; " << m.unattributed.size() << " files of no node";
  out << "\n";
  out << "  total:              " << t.files << " files, " << t.lines << " lines, " << t.entries
      << " entries, " << t.checkpoints << " checkpoints verified\n";
  out << "  throughput:         " << ThroughputText(t.lines, t.bytes, t.seconds, t.threads) << "\n";
  return out.str();
}

Json MultiReportJson(const MultiReport& m) {
  Json nodes = Json::Array();
  for (const NodeReport& n : m.nodes) {
    Json j = ReportJson(n.report);
    j.Set("origin", Json::String(n.origin));
    Json files = Json::Array();
    for (const std::string& f : n.files) files.Append(Json::String(f));
    j.Set("file_names", std::move(files));
    nodes.Append(std::move(j));
  }
  Json unattributed = Json::Array();
  for (const UnattributedFile& u : m.unattributed) {
    Json o = Json::Object();
    o.Set("file", Json::String(u.file));
    o.Set("kind", Json::String(u.io ? "io" : "unattributed"));
    o.Set("reason", Json::String(u.reason));
    unattributed.Append(std::move(o));
  }
  const Totals t = Sum(m);
  Json total = Json::Object();
  total.Set("nodes", Json::Uint(m.nodes.size()));
  total.Set("intact", Json::Uint(t.intact));
  total.Set("unproven", Json::Uint(t.unproven));
  total.Set("broken", Json::Uint(t.broken));
  total.Set("files", Json::Uint(t.files));
  total.Set("lines", Json::Uint(t.lines));
  total.Set("entries", Json::Uint(t.entries));
  total.Set("checkpoints", Json::Uint(t.checkpoints));
  total.Set("throughput", ThroughputJson(t.lines, t.bytes, t.seconds, t.threads));
  Json j = Json::Object();
  j.Set("ok", Json::Bool(m.ok()));
  j.Set("nodes", std::move(nodes));
  j.Set("unattributed", std::move(unattributed));
  j.Set("total", std::move(total));
  return j;
}

}  // namespace strongroom::audit
