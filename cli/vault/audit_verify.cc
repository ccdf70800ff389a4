// `strongroom audit verify`: the offline audit log verifier (audit/, the library strongroom-audit
// is built on) linked into the CLI. Nothing is sent to a server. Flags as strongroom-audit
// verify's, in Go flag syntax (-pubkey FILE or --pubkey=FILE); -format=json prints the report
// object strongroom-audit --json prints.
//
// Exit status, as every strongroom command: 0 the log is intact, 1 a local error (bad flags, an
// unreadable key, checkpoint or log file), 2 the log failed verification (broken, or an unproven
// tail) — strongroom-audit itself uses 1 for a broken log and 2 for usage errors.
#include <algorithm>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "audit/chain.h"
#include "audit/checkpoint.h"
#include "audit/json.h"
#include "audit/keys.h"
#include "audit/node_groups.h"
#include "audit/report_format.h"
#include "audit/verifier.h"
#include "base/strings.h"
#include "cli/vault/command.h"

namespace strongroom::vault {
namespace {

constexpr std::string_view kUsage =
    "Usage: strongroom audit verify -pubkey FILE [-checkpoint FILE] [-from-checkpoint FILE]\n"
    "                               [-require-signed-tail] [-threads N] [-format=json] LOGFILE...\n"
    "\n"
    "  Verifies audit log files offline (oldest first; rotated and gzip files continue the\n"
    "  chain; several nodes' files are grouped by node): every line's hash and sequence number,\n"
    "  every checkpoint's signature, head and Merkle root. See docs/audit-verification.md.\n"
    "\n"
    "  -pubkey FILE           PEM public key of the audit signing key (repeatable)\n"
    "  -checkpoint FILE       a checkpoint fetched earlier that the log must contain or extend\n"
    "                         (repeatable: one per node)\n"
    "  -from-checkpoint FILE  start after this checkpoint line (repeatable: one per node)\n"
    "  -require-signed-tail   fail when lines follow the last checkpoint\n"
    "  -threads N             verify with N threads (default: every core)\n"
    "\n"
    "  Exit status: 0 intact, 1 usage or input error, 2 verification failed.";

constexpr size_t kMaxKeyBytes = 1 << 16, kMaxCheckpointBytes = 1 << 20;

// A checkpoint file holds the signed note itself, or a checkpoint line copied from a log.
absl::StatusOr<std::string> CheckpointNote(const std::string& path) {
  auto data = ReadInput(path, kMaxCheckpointBytes);
  if (!data.ok()) return data.status();
  if (!absl::StartsWith(*data, "{")) return std::move(*data);
  std::string text = std::move(*data);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  auto rec = audit::ParseChainedLine(text);
  if (!rec.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a checkpoint line: ", rec.message()));
  }
  if (!rec->is_checkpoint) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the line is not a checkpoint"));
  }
  return rec->note;
}

}  // namespace

int AuditVerify(Context& ctx, const std::vector<std::string>& argv) {
  FlagSet flags;
  std::vector<std::string> pubkeys, checkpoints, from_checkpoints;
  bool require_signed_tail = false;
  int64_t threads = 0;
  std::string format;
  flags.Strings("pubkey", &pubkeys, /*split_commas=*/false);
  flags.Strings("checkpoint", &checkpoints, /*split_commas=*/false);
  flags.Strings("from-checkpoint", &from_checkpoints, /*split_commas=*/false);
  flags.Bool("require-signed-tail", &require_signed_tail);
  flags.Int("threads", &threads);
  flags.String("format", &format);
  if (auto rc = ctx.Parse(&flags, argv, kUsage)) return *rc;
  if (!format.empty() && format != "table" && format != "json") {
    return ctx.Local(absl::StrCat("Invalid output format: ", format, " (table or json)"));
  }
  const std::vector<std::string>& files = flags.args();
  if (pubkeys.empty()) return ctx.Local("-pubkey is required");
  if (files.empty()) return ctx.Local("Not enough arguments (expected at least 1 log file, got 0)");
  if (flags.Given("threads") && (threads < 1 || threads > 1024)) {
    return ctx.Local("-threads needs a number from 1 to 1024");
  }

  std::vector<audit::PublicKey> keys;
  for (const std::string& path : pubkeys) {
    auto pem = ReadInput(path, kMaxKeyBytes);
    if (!pem.ok()) return ctx.Local(Sv(pem.status().message()));
    auto key = audit::PublicKey::FromPem(*pem);
    if (!key.ok()) return ctx.Local(absl::StrCat(path, ": ", key.message()));
    keys.push_back(std::move(key).value());
  }
  std::vector<audit::Checkpoint> trusted;
  for (const std::string& path : checkpoints) {
    auto note = CheckpointNote(path);
    if (!note.ok()) return ctx.Local(Sv(note.status().message()));
    auto cp = audit::OpenCheckpoint(*note, keys);
    if (!cp.ok()) {
      return ctx.Local(absl::StrCat("trusted checkpoint ", path, " rejected: ", cp.message()));
    }
    trusted.push_back(*cp);
  }
  std::vector<audit::StartPoint> starts;
  for (const std::string& path : from_checkpoints) {
    auto line = ReadInput(path, kMaxCheckpointBytes);
    if (!line.ok()) return ctx.Local(Sv(line.status().message()));
    const size_t eol = line->find('\n');
    if (eol != std::string::npos && eol + 1 != line->size()) {
      return ctx.Local(absl::StrCat("starting checkpoint ", path,
                                    ": the file holds more than one line; give only the "
                                    "checkpoint line (tail -n 1 of the file before)"));
    }
    auto start = audit::OpenStartPoint(*line, keys, path);
    if (!start.ok()) {
      return ctx.Local(absl::StrCat("starting checkpoint ", path, " rejected: ", start.message()));
    }
    starts.push_back(std::move(start).value());
  }

  audit::VerifyOptions options;
  options.keys = keys;
  options.require_signed_tail = require_signed_tail;
  options.threads = threads > 0 ? static_cast<unsigned>(threads)
                                : std::max(1u, std::thread::hardware_concurrency());
  const bool as_json = format == "json";
  const audit::FileGroups groups = audit::GroupFilesByOrigin(files);
  if (!groups.several_origins()) {
    if (trusted.size() > 1 || starts.size() > 1) {
      return ctx.Local(
          "the files are one node's log: give -checkpoint and -from-checkpoint at most once");
    }
    if (!trusted.empty()) options.trusted = trusted[0];
    if (!starts.empty()) options.start = starts[0];
    const audit::Report report = audit::VerifyFiles(files, options);
    std::string text =
        as_json ? audit::CanonicalJson(audit::ReportJson(report)) : audit::ReportText(report);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    ctx.Out(text);
    if (!report.ok()) {
      return report.failure->kind == audit::Break::Kind::kIo ? kLocalError : kRemoteError;
    }
    return report.proven() ? kOk : kRemoteError;
  }
  auto multi = audit::VerifyNodes(groups, options, starts, trusted);
  if (!multi.ok()) return ctx.Local(multi.message());
  std::string text = as_json ? audit::CanonicalJson(audit::MultiReportJson(*multi))
                             : audit::MultiReportText(*multi);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  ctx.Out(text);
  bool failed = false, io = false;
  for (const audit::NodeReport& n : multi->nodes) {
    if (!n.report.ok()) {
      (n.report.failure->kind == audit::Break::Kind::kIo ? io : failed) = true;
    } else if (!n.report.proven()) {
      failed = true;
    }
  }
  for (const audit::UnattributedFile& u : multi->unattributed) (u.io ? io : failed) = true;
  return failed ? kRemoteError : io ? kLocalError : kOk;
}

}  // namespace strongroom::vault
