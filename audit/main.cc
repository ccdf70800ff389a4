// strongroom-audit: the offline audit log verifier for auditors. See docs/audit-verification.md.
//
// Exit status: 0 the log is intact / the proof holds; 1 verification failed (the report names the
// first line that breaks); 2 usage or input error (unreadable file, bad key, malformed bundle).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "audit/chain.h"
#include "audit/checkpoint.h"
#include "audit/encoding.h"
#include "audit/json.h"
#include "audit/keys.h"
#include "audit/merkle.h"
#include "audit/node_groups.h"
#include "audit/report_format.h"
#include "audit/verifier.h"

namespace strongroom::audit {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr std::string_view kMainUsage = R"(Usage: strongroom-audit <command> [options] LOGFILE...

Offline verification of a strongroom audit log: hash chain, signed checkpoints, Merkle proofs.

Commands:
  verify        check a log (files oldest first) and name the first line that breaks
  inclusion     prove, or check a proof, that an entry is in a signed checkpoint
  consistency   prove, or check a proof, that one checkpoint is a prefix of a later one
  help          show this text

Run 'strongroom-audit <command> --help' for the options of a command.
Exit status: 0 intact / proof holds, 1 verification failed, 2 usage or input error.
)";

constexpr std::string_view kVerifyUsage =
    R"(Usage: strongroom-audit verify --pubkey FILE [--checkpoint FILE] [--from-checkpoint FILE]
                               [--require-signed-tail] [--threads N] [--json] LOGFILE...

Verifies the audit log LOGFILE... given oldest first (rotated files continue the chain: e.g.
audit.log.2.gz audit.log.1 audit.log; gzip files are read as they are). Checks every line's hash
and sequence number, every checkpoint's signature, head and Merkle root, and that each
checkpoint extends the one before.

The files may be several cluster nodes' logs (each node has its own chain and checkpoint origin
strongroom-audit/<device>/<node>): they are then grouped by origin, each node's files ordered by
sequence number and verified as one log, and the report lists every node and a total; the exit
status is 0 only if every node's log is intact. --checkpoint and --from-checkpoint may then be
given once per node.

Options:
  --pubkey FILE        PEM public key (SubjectPublicKeyInfo) of the audit signing key, ECDSA
                       P-256 or Ed25519. Repeat to trust several keys (key rotation).
  --checkpoint FILE    a checkpoint the auditor fetched earlier from the live service (the
                       signed note, or a checkpoint line from the log). The log must contain or
                       extend it; this catches a cut-off tail or an older copy of the log.
  --from-checkpoint FILE
                       start after this checkpoint line instead of at seq 1: the last line of
                       the file before LOGFILE... (e.g. `zcat audit.log.3.gz | tail -n 1`). It
                       must be signed by --pubkey; the first LOGFILE must continue it.
  --require-signed-tail
                       fail when lines follow the last checkpoint (for closed, rotated logs).
  --threads N          verify with N threads (default: every core). The signed checkpoints cut
                       the log into segments that are verified at once and stitched in order.
  --json               print the report as one JSON object.

Exit status: 0 intact, 1 broken (the first break is printed as file:line: seq N: reason),
2 usage or input error.
)";

constexpr std::string_view kInclusionUsage =
    R"(Usage: strongroom-audit inclusion --pubkey FILE --seq N [--checkpoint FILE]
                                  [--from-checkpoint FILE] [--json] LOGFILE...
       strongroom-audit inclusion --pubkey FILE --proof BUNDLE

First form: verifies the log, then builds and checks an RFC 9162 inclusion proof that the entry
with sequence number N is in the latest checkpoint of the log (or in --checkpoint FILE). With
--json the proof is printed as a self-contained bundle (entry, proof hashes, signed checkpoint).

Second form: checks such a bundle offline, without the log: the checkpoint signature, the
entry's own hash and the inclusion proof.

Options:
  --pubkey FILE       PEM public key of the audit signing key (repeatable).
  --seq N             sequence number of the audit entry (a request or response line).
  --checkpoint FILE   prove inclusion in this checkpoint instead of the log's latest.
  --from-checkpoint FILE
                      the log files start after this checkpoint line (see verify --help);
                      entries and checkpoints from there on can be proven.
  --proof BUNDLE      check a bundle written by --json.
  --threads N         verify the log with N threads (default: every core).
  --json              print the proof bundle as JSON.

Exit status: 0 proof holds, 1 verification failed, 2 usage or input error.
)";

constexpr std::string_view kConsistencyUsage =
    R"(Usage: strongroom-audit consistency --pubkey FILE --from A [--to B]
                                    [--from-checkpoint FILE] [--json] LOGFILE...
       strongroom-audit consistency --pubkey FILE --proof BUNDLE

First form: verifies the log, then builds and checks an RFC 9162 consistency proof that the
checkpoint with tree size A is a prefix of the checkpoint with tree size B (default: the
latest). Sizes are the second line of a checkpoint (the number of audit entries it covers).

Second form: checks such a bundle offline, from the two signed checkpoints and the proof.

Options:
  --pubkey FILE   PEM public key of the audit signing key (repeatable).
  --from A        tree size of the earlier checkpoint (at least 1).
  --to B          tree size of the later checkpoint.
  --from-checkpoint FILE
                  the log files start after this checkpoint line (see verify --help); A may be
                  its tree size or any later checkpoint's.
  --proof BUNDLE  check a bundle written by --json.
  --threads N     verify the log with N threads (default: every core).
  --json          print the proof bundle as JSON.

Exit status: 0 proof holds, 1 verification failed, 2 usage or input error.
)";

struct Args {
  std::vector<std::string> pubkeys;
  std::vector<std::string> checkpoints;       // repeatable: one per node
  std::vector<std::string> from_checkpoints;  // repeatable: one per node
  std::optional<std::string> proof;
  std::optional<uint64_t> seq;
  std::optional<uint64_t> from;
  std::optional<uint64_t> to;
  bool require_signed_tail = false;
  std::optional<uint64_t> threads;
  bool json = false;
  bool help = false;
  std::vector<std::string> files;
};

int UsageError(std::string_view message, std::string_view usage) {
  std::cerr << "strongroom-audit: " << message << "\n\n" << usage;
  return kExitUsage;
}

// Parses the options of one command; `allowed` lists the options it takes.
std::optional<std::string> ParseArgs(int argc, char** argv, std::vector<std::string_view> allowed,
                                     Args* args) {
  auto takes = [&](std::string_view opt) {
    return std::find(allowed.begin(), allowed.end(), opt) != allowed.end();
  };
  bool options_done = false;
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
      args->files.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      args->help = true;
      continue;
    }
    std::string name(arg);
    std::optional<std::string> value;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (!takes(name)) return "unknown option " + name;
    if (name == "--json" || name == "--require-signed-tail") {
      if (value) return name + " takes no value";
      (name == "--json" ? args->json : args->require_signed_tail) = true;
      continue;
    }
    if (!value) {
      if (i + 1 >= argc) return name + " needs a value";
      value = argv[++i];
    }
    if (name == "--pubkey") {
      args->pubkeys.push_back(*value);
    } else if (name == "--checkpoint") {
      args->checkpoints.push_back(*value);
    } else if (name == "--from-checkpoint") {
      args->from_checkpoints.push_back(*value);
    } else if (name == "--proof") {
      args->proof = *value;
    } else {
      std::optional<uint64_t> n = ParseDecimalU64(*value);
      if (!n) return name + " needs a non-negative integer";
      if (name == "--threads") {
        if (*n == 0 || *n > 1024) return "--threads needs a number from 1 to 1024";
        args->threads = *n;
        continue;
      }
      (name == "--seq" ? args->seq : name == "--from" ? args->from : args->to) = *n;
    }
  }
  return std::nullopt;
}

Result<std::string> ReadSmallFile(const std::string& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Err("cannot open " + path);
  std::string data;
  char buf[65536];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > limit) return Err(path + " is too large");
  }
  if (in.bad()) return Err("cannot read " + path);
  return data;
}

Result<std::vector<PublicKey>> LoadKeys(const Args& args) {
  if (args.pubkeys.empty()) return Err("--pubkey is required");
  std::vector<PublicKey> keys;
  for (const std::string& path : args.pubkeys) {
    AUDIT_ASSIGN_OR_RETURN(std::string pem, ReadSmallFile(path, 1 << 16));
    Result<PublicKey> key = PublicKey::FromPem(pem);
    if (!key.ok()) return Err(path + ": " + key.message());
    keys.push_back(std::move(key).value());
  }
  return keys;
}

// A checkpoint file holds the signed note itself, or a checkpoint line copied from a log.
Result<std::string> ReadCheckpointNote(const std::string& path) {
  AUDIT_ASSIGN_OR_RETURN(std::string data, ReadSmallFile(path, 1 << 20));
  if (!data.empty() && data[0] == '{') {
    while (!data.empty() && (data.back() == '\n' || data.back() == '\r')) data.pop_back();
    Result<ChainedRecord> rec = ParseChainedLine(data);
    if (!rec.ok()) return Err(path + ": not a checkpoint line: " + rec.message());
    if (!rec->is_checkpoint) return Err(path + ": the line is not a checkpoint");
    return rec->note;
  }
  return data;
}

int ExitFor(const Report& r) {
  if (r.ok()) return r.proven() ? kExitOk : kExitFailed;
  return r.failure->kind == Break::Kind::kIo ? kExitUsage : kExitFailed;
}

void PrintFailure(const Report& r) { std::cout << FailureText(r); }

void PrintReport(const Report& r) { std::cout << ReportText(r); }

// --from-checkpoint: a file holding one checkpoint line.
Result<StartPoint> ReadStartPoint(const std::string& path, std::span<const PublicKey> keys) {
  AUDIT_ASSIGN_OR_RETURN(std::string data, ReadSmallFile(path, 1 << 20));
  const size_t eol = data.find('\n');
  if (eol != std::string::npos && eol + 1 != data.size()) {
    return Err(
        "the file holds more than one line; give only the checkpoint line (the last "
        "line of the file before: tail -n 1)");
  }
  return OpenStartPoint(data, keys, path);
}

// --threads, or every core.
unsigned Threads(const Args& args) {
  if (args.threads) return static_cast<unsigned>(*args.threads);
  return std::max(1u, std::thread::hardware_concurrency());
}

struct TrustedCheckpoint {
  Checkpoint checkpoint;
  std::string note;
};

// Keys, trusted checkpoints (--checkpoint) and starting checkpoints (--from-checkpoint), each
// checked; on failure prints why and returns the exit code in *exit_code.
struct Inputs {
  std::vector<PublicKey> keys;
  std::vector<TrustedCheckpoint> trusted;
  std::vector<StartPoint> starts;
};

std::optional<Inputs> LoadInputs(const Args& args, std::string_view usage, int* exit_code) {
  Inputs in;
  Result<std::vector<PublicKey>> keys = LoadKeys(args);
  if (!keys.ok()) {
    *exit_code = UsageError(keys.message(), usage);
    return std::nullopt;
  }
  in.keys = std::move(keys).value();
  for (const std::string& path : args.checkpoints) {
    Result<std::string> note = ReadCheckpointNote(path);
    Result<Checkpoint> cp =
        note.ok() ? OpenCheckpoint(*note, in.keys) : Result<Checkpoint>(Err(note.message()));
    if (!cp.ok()) {
      std::cerr << "strongroom-audit: trusted checkpoint " << path << " rejected: " << cp.message()
                << "\n";
      *exit_code = kExitUsage;
      return std::nullopt;
    }
    in.trusted.push_back({*cp, *note});
  }
  for (const std::string& path : args.from_checkpoints) {
    Result<StartPoint> start = ReadStartPoint(path, in.keys);
    if (!start.ok()) {
      std::cerr << "strongroom-audit: starting checkpoint " << path
                << " rejected: " << start.message() << "\n";
      *exit_code = kExitUsage;
      return std::nullopt;
    }
    in.starts.push_back(std::move(start).value());
  }
  if (args.files.empty()) {
    *exit_code = UsageError("no log files given", usage);
    return std::nullopt;
  }
  return in;
}

struct LoadedLog {
  Inputs inputs;
  std::optional<Checkpoint> trusted;
  std::optional<std::string> trusted_note;
  Report report;
};

// One log (inclusion, consistency): at most one --checkpoint and --from-checkpoint, and files of
// one node.
std::optional<LoadedLog> LoadAndVerify(const Args& args, VerifyOptions options,
                                       std::string_view usage, int* exit_code) {
  std::optional<Inputs> in = LoadInputs(args, usage, exit_code);
  if (!in) return std::nullopt;
  if (in->trusted.size() > 1 || in->starts.size() > 1) {
    *exit_code = UsageError("give --checkpoint and --from-checkpoint at most once", usage);
    return std::nullopt;
  }
  const FileGroups groups = GroupFilesByOrigin(args.files);
  if (groups.several_origins()) {
    *exit_code = UsageError("the files are from " + std::to_string(groups.nodes.size()) +
                                " nodes; a proof is about one node's log: give its files only",
                            usage);
    return std::nullopt;
  }
  LoadedLog log;
  log.inputs = std::move(*in);
  if (!log.inputs.trusted.empty()) {
    log.trusted = log.inputs.trusted[0].checkpoint;
    log.trusted_note = log.inputs.trusted[0].note;
  }
  if (!log.inputs.starts.empty()) options.start = log.inputs.starts[0];
  options.threads = Threads(args);
  options.keys = log.inputs.keys;
  options.trusted = log.trusted;
  log.report = VerifyFiles(args.files, options);
  return log;
}

// Several nodes: 1 if any log is broken or unproven or a file belongs to no node, else 2 if a
// file could not be read, else 0.
int ExitForNodes(const MultiReport& m) {
  bool failed = false;
  bool io = false;
  for (const NodeReport& n : m.nodes) {
    const int c = ExitFor(n.report);
    failed |= c == kExitFailed;
    io |= c == kExitUsage;
  }
  for (const UnattributedFile& u : m.unattributed) (u.io ? io : failed) = true;
  return failed ? kExitFailed : io ? kExitUsage : kExitOk;
}

int RunVerify(const Args& args) {
  if (args.help) {
    std::cout << kVerifyUsage;
    return kExitOk;
  }
  int code = kExitOk;
  std::optional<Inputs> in = LoadInputs(args, kVerifyUsage, &code);
  if (!in) return code;
  VerifyOptions options;
  options.require_signed_tail = args.require_signed_tail;
  options.threads = Threads(args);
  options.keys = in->keys;
  const FileGroups groups = GroupFilesByOrigin(args.files);
  if (!groups.several_origins()) {
    // One node's log: exactly the files as given.
    if (in->trusted.size() > 1 || in->starts.size() > 1) {
      return UsageError(
          "the files are one node's log: give --checkpoint and --from-checkpoint "
          "at most once",
          kVerifyUsage);
    }
    if (!in->trusted.empty()) options.trusted = in->trusted[0].checkpoint;
    if (!in->starts.empty()) options.start = in->starts[0];
    const Report report = VerifyFiles(args.files, options);
    if (args.json) {
      std::cout << CanonicalJson(ReportJson(report)) << "\n";
    } else {
      PrintReport(report);
    }
    return ExitFor(report);
  }
  std::vector<Checkpoint> trusted;
  for (const TrustedCheckpoint& t : in->trusted) trusted.push_back(t.checkpoint);
  Result<MultiReport> multi = VerifyNodes(groups, options, in->starts, trusted);
  if (!multi.ok()) return UsageError(multi.message(), kVerifyUsage);
  if (args.json) {
    std::cout << CanonicalJson(MultiReportJson(*multi)) << "\n";
  } else {
    std::cout << MultiReportText(*multi);
  }
  return ExitForNodes(*multi);
}

Json ProofJson(const std::vector<Hash>& proof) {
  Json arr = Json::Array();
  for (const Hash& h : proof) arr.Append(Json::String(B64(h)));
  return arr;
}

// Reads a proof bundle's base64 hash list; raw bytes, lengths are the verifier's business.
Result<std::vector<std::string>> DecodeProof(const Json& bundle) {
  const Json* proof = bundle.Find("proof");
  if (proof == nullptr || proof->type() != Json::Type::kArray) return Err("bundle lacks \"proof\"");
  std::vector<std::string> out;
  for (const Json& item : proof->items()) {
    if (!item.is_string()) return Err("proof hashes must be base64 strings");
    std::optional<std::string> bytes = Base64Decode(item.str());
    if (!bytes) return Err("proof hash is not valid base64");
    out.push_back(std::move(*bytes));
  }
  return out;
}

Result<std::string> BundleString(const Json& bundle, std::string_view key) {
  const Json* v = bundle.Find(key);
  if (v == nullptr || !v->is_string()) return Err("bundle lacks \"" + std::string(key) + "\"");
  return v->str();
}

Result<uint64_t> BundleUint(const Json& bundle, std::string_view key) {
  const Json* v = bundle.Find(key);
  std::optional<uint64_t> n = v != nullptr ? v->AsUint() : std::nullopt;
  if (!n) return Err("bundle lacks a numeric \"" + std::string(key) + "\"");
  return *n;
}

Result<Json> ReadBundle(const std::string& path, std::string_view type) {
  AUDIT_ASSIGN_OR_RETURN(std::string data, ReadSmallFile(path, 64 << 20));
  AUDIT_ASSIGN_OR_RETURN(Json bundle, ParseJson(data));
  if (!bundle.is_object()) return Err("proof bundle is not a JSON object");
  const Json* t = bundle.Find("type");
  if (t == nullptr || !t->is_string() || t->str() != type) {
    return Err("not a " + std::string(type) + " bundle");
  }
  return bundle;
}

int CheckInclusionBundle(const Args& args) {
  Result<std::vector<PublicKey>> keys = LoadKeys(args);
  if (!keys.ok()) return UsageError(keys.message(), kInclusionUsage);
  Result<Json> bundle = ReadBundle(*args.proof, "inclusion-proof");
  Result<std::string> note = bundle.ok() ? BundleString(*bundle, "checkpoint")
                                         : Result<std::string>(Err(bundle.message()));
  Result<std::string> entry = bundle.ok() ? BundleString(*bundle, "entry") : note;
  Result<uint64_t> index = bundle.ok() ? BundleUint(*bundle, "leaf_index") : Result<uint64_t>(0);
  Result<uint64_t> seq = bundle.ok() ? BundleUint(*bundle, "seq") : Result<uint64_t>(0);
  Result<std::vector<std::string>> proof =
      bundle.ok() ? DecodeProof(*bundle) : Result<std::vector<std::string>>(Err(""));
  for (const Status& s : {bundle.status(), note.status(), entry.status(), index.status(),
                          seq.status(), proof.status()}) {
    if (!s.ok()) {
      std::cerr << "strongroom-audit: " << *args.proof << ": " << s.message() << "\n";
      return kExitUsage;
    }
  }
  Result<Checkpoint> cp = OpenCheckpoint(*note, *keys);
  if (!cp.ok()) {
    std::cout << "FAILED: checkpoint rejected: " << cp.message() << "\n";
    return kExitFailed;
  }
  Result<ChainedRecord> rec = ParseChainedLine(*entry);
  if (!rec.ok() || !rec->is_leaf() || rec->seq != *seq) {
    std::cout << "FAILED: entry rejected: "
              << (!rec.ok()         ? rec.message()
                  : !rec->is_leaf() ? "it is a checkpoint, MAC or marker line"
                                    : "its seq differs from the bundle's")
              << "\n";
    return kExitFailed;
  }
  const Hash leaf = HashLeaf(rec->canonical);
  Status st = VerifyInclusion(*index, cp->tree_size, AsBytes(leaf), *proof, AsBytes(cp->root));
  if (!st.ok()) {
    std::cout << "FAILED: " << st.message() << "\n";
    return kExitFailed;
  }
  std::cout << "OK: entry seq " << *seq << " (leaf " << *index << ", time " << rec->time
            << ") is included in the checkpoint of " << cp->Origin() << " at tree size "
            << cp->tree_size << " (" << cp->time << ")\n";
  return kExitOk;
}

// The leaf hashes a report kept: all of them, or those after its start point.
PartialLeaves LeavesOf(const Report& r) {
  PartialLeaves leaves;
  if (r.start) {
    leaves.base_size = r.start->state.tree.size();
    leaves.base_nodes = r.start->state.tree.nodes();
  }
  leaves.later = r.leaf_hashes;
  return leaves;
}

int RunInclusion(const Args& args) {
  if (args.help) {
    std::cout << kInclusionUsage;
    return kExitOk;
  }
  if (args.proof) {
    if (!args.files.empty() || args.seq || !args.checkpoints.empty() ||
        !args.from_checkpoints.empty()) {
      return UsageError("--proof takes no log files, --seq, --checkpoint or --from-checkpoint",
                        kInclusionUsage);
    }
    return CheckInclusionBundle(args);
  }
  if (!args.seq) return UsageError("--seq is required", kInclusionUsage);
  VerifyOptions options;
  options.keep_leaves = true;
  options.capture_seq = *args.seq;
  int code = kExitOk;
  std::optional<LoadedLog> log = LoadAndVerify(args, options, kInclusionUsage, &code);
  if (!log) return code;
  const Report& r = log->report;
  if (!r.ok()) {
    PrintFailure(r);
    return ExitFor(r);
  }
  if (*args.seq >= 1 && *args.seq < r.first_seq) {
    std::cerr << "strongroom-audit: seq " << *args.seq << " is before the starting checkpoint (seq "
              << r.first_seq - 1 << "): prove it with the files from before it\n";
    return kExitUsage;
  }
  const auto it = std::lower_bound(r.leaf_seqs.begin(), r.leaf_seqs.end(), *args.seq);
  if (it == r.leaf_seqs.end() || *it != *args.seq) {
    std::cerr << "strongroom-audit: seq " << *args.seq
              << (*args.seq >= 1 && *args.seq <= r.state.last_seq
                      ? " is a checkpoint, MAC or marker line, not an audit entry"
                      : " is not in the log")
              << "\n";
    return kExitUsage;
  }
  const PartialLeaves leaves = LeavesOf(r);
  const auto known = static_cast<size_t>(it - r.leaf_seqs.begin());
  const uint64_t index = leaves.base_size + known;
  const Hash& leaf_hash = r.leaf_hashes[known];
  Checkpoint cp;
  std::string note;
  if (log->trusted) {
    cp = *log->trusted;
    note = *log->trusted_note;
  } else {
    cp = r.last_checkpoint->checkpoint;
    note = r.last_checkpoint->note;
  }
  if (index >= cp.tree_size) {
    std::cout << "FAILED: entry seq " << *args.seq << " (leaf " << index
              << ") is not covered by the checkpoint (tree size " << cp.tree_size
              << "); it is proven once a later checkpoint is written\n";
    return kExitFailed;
  }
  Result<std::vector<Hash>> proof = MakeInclusionProof(leaves, index, cp.tree_size);
  Status st = proof.ok() ? VerifyInclusion(index, cp.tree_size, leaf_hash, *proof, cp.root)
                         : proof.status();
  if (!st.ok()) {
    std::cout << "FAILED: " << st.message() << "\n";
    return kExitFailed;
  }
  if (args.json) {
    Json bundle = Json::Object();
    bundle.Set("type", Json::String("inclusion-proof"));
    bundle.Set("seq", Json::Uint(*args.seq));
    bundle.Set("leaf_index", Json::Uint(index));
    bundle.Set("tree_size", Json::Uint(cp.tree_size));
    bundle.Set("entry", Json::String(r.captured_line.value_or("")));
    bundle.Set("leaf_hash", Json::String(B64(leaf_hash)));
    bundle.Set("root", Json::String(B64(cp.root)));
    bundle.Set("proof", ProofJson(*proof));
    bundle.Set("checkpoint", Json::String(note));
    std::cout << CanonicalJson(bundle) << "\n";
    return kExitOk;
  }
  std::cout << "OK: entry seq " << *args.seq << " is leaf " << index
            << " of the checkpoint at tree size " << cp.tree_size << " (" << cp.time << ")\n";
  std::cout << "  leaf hash: " << B64(leaf_hash) << "\n";
  std::cout << "  root:      " << B64(cp.root) << "\n";
  std::cout << "  proof (" << proof->size() << " hashes, leaf level first):\n";
  for (const Hash& h : *proof) std::cout << "    " << B64(h) << "\n";
  return kExitOk;
}

int CheckConsistencyBundle(const Args& args) {
  Result<std::vector<PublicKey>> keys = LoadKeys(args);
  if (!keys.ok()) return UsageError(keys.message(), kConsistencyUsage);
  Result<Json> bundle = ReadBundle(*args.proof, "consistency-proof");
  Result<std::string> note1 = bundle.ok() ? BundleString(*bundle, "checkpoint1")
                                          : Result<std::string>(Err(bundle.message()));
  Result<std::string> note2 = bundle.ok() ? BundleString(*bundle, "checkpoint2") : note1;
  Result<std::vector<std::string>> proof =
      bundle.ok() ? DecodeProof(*bundle) : Result<std::vector<std::string>>(Err(""));
  for (const Status& s : {bundle.status(), note1.status(), note2.status(), proof.status()}) {
    if (!s.ok()) {
      std::cerr << "strongroom-audit: " << *args.proof << ": " << s.message() << "\n";
      return kExitUsage;
    }
  }
  Result<Checkpoint> cp1 = OpenCheckpoint(*note1, *keys);
  Result<Checkpoint> cp2 = OpenCheckpoint(*note2, *keys);
  if (!cp1.ok() || !cp2.ok()) {
    std::cout << "FAILED: checkpoint rejected: " << (cp1.ok() ? cp2 : cp1).message() << "\n";
    return kExitFailed;
  }
  if (cp1->Origin() != cp2->Origin()) {
    std::cout << "FAILED: the checkpoints are from different logs (" << cp1->Origin() << ", "
              << cp2->Origin() << ")\n";
    return kExitFailed;
  }
  Status st = VerifyConsistency(cp1->tree_size, cp2->tree_size, *proof, AsBytes(cp1->root),
                                AsBytes(cp2->root));
  if (!st.ok()) {
    std::cout << "FAILED: " << st.message() << "\n";
    return kExitFailed;
  }
  std::cout << "OK: the checkpoint at tree size " << cp1->tree_size << " (" << cp1->time
            << ") is a prefix of the checkpoint at tree size " << cp2->tree_size << " ("
            << cp2->time << ")\n";
  return kExitOk;
}

int RunConsistency(const Args& args) {
  if (args.help) {
    std::cout << kConsistencyUsage;
    return kExitOk;
  }
  if (args.proof) {
    if (!args.files.empty() || args.from || args.to || !args.from_checkpoints.empty()) {
      return UsageError("--proof takes no log files, --from, --to or --from-checkpoint",
                        kConsistencyUsage);
    }
    return CheckConsistencyBundle(args);
  }
  if (!args.from) return UsageError("--from is required", kConsistencyUsage);
  VerifyOptions options;
  options.keep_leaves = true;
  int code = kExitOk;
  std::optional<LoadedLog> log = LoadAndVerify(args, options, kConsistencyUsage, &code);
  if (!log) return code;
  const Report& r = log->report;
  if (!r.ok()) {
    PrintFailure(r);
    return ExitFor(r);
  }
  auto find = [&](uint64_t size) -> const VerifiedCheckpoint* {
    for (const VerifiedCheckpoint& c : r.all_checkpoints) {
      if (c.checkpoint.tree_size == size) return &c;
    }
    return nullptr;
  };
  const VerifiedCheckpoint* first = find(*args.from);
  const VerifiedCheckpoint* second = args.to ? find(*args.to) : &*r.last_checkpoint;
  if (first == nullptr || second == nullptr) {
    std::string sizes;
    for (size_t i = 0; i < r.all_checkpoints.size() && i < 32; ++i) {
      sizes += (i ? ", " : "") + std::to_string(r.all_checkpoints[i].checkpoint.tree_size);
    }
    if (r.all_checkpoints.size() > 32) sizes += ", ...";
    std::cerr << "strongroom-audit: no checkpoint with tree size "
              << (first == nullptr ? *args.from : *args.to)
              << " in the log (checkpoint sizes: " << sizes << ")\n";
    return kExitUsage;
  }
  const Checkpoint& c1 = first->checkpoint;
  const Checkpoint& c2 = second->checkpoint;
  if (c1.tree_size == 0 || c1.tree_size > c2.tree_size) {
    return UsageError("need 1 <= --from <= --to", kConsistencyUsage);
  }
  Result<std::vector<Hash>> proof = MakeConsistencyProof(LeavesOf(r), c1.tree_size, c2.tree_size);
  Status st = proof.ok() ? VerifyConsistency(c1.tree_size, c2.tree_size, *proof, c1.root, c2.root)
                         : proof.status();
  if (!st.ok()) {
    std::cout << "FAILED: " << st.message() << "\n";
    return kExitFailed;
  }
  if (args.json) {
    Json bundle = Json::Object();
    bundle.Set("type", Json::String("consistency-proof"));
    bundle.Set("checkpoint1", Json::String(first->note));
    bundle.Set("checkpoint2", Json::String(second->note));
    bundle.Set("proof", ProofJson(*proof));
    std::cout << CanonicalJson(bundle) << "\n";
    return kExitOk;
  }
  std::cout << "OK: the checkpoint at tree size " << c1.tree_size << " (" << first->file << ":"
            << first->line << ") is a prefix of the checkpoint at tree size " << c2.tree_size
            << " (" << second->file << ":" << second->line << ")\n";
  std::cout << "  root " << c1.tree_size << ": " << B64(c1.root) << "\n";
  std::cout << "  root " << c2.tree_size << ": " << B64(c2.root) << "\n";
  std::cout << "  proof (" << proof->size() << " hashes):\n";
  for (const Hash& h : *proof) std::cout << "    " << B64(h) << "\n";
  return kExitOk;
}

int Main(int argc, char** argv) {
  if (argc < 2) return UsageError("missing command", kMainUsage);
  const std::string_view command = argv[1];
  if (command == "help" || command == "--help" || command == "-h") {
    std::cout << kMainUsage;
    return kExitOk;
  }
  Args args;
  std::optional<std::string> error;
  if (command == "verify") {
    error = ParseArgs(argc, argv,
                      {"--pubkey", "--checkpoint", "--from-checkpoint", "--require-signed-tail",
                       "--threads", "--json"},
                      &args);
    if (error) return UsageError(*error, kVerifyUsage);
    return RunVerify(args);
  }
  if (command == "inclusion") {
    error = ParseArgs(argc, argv,
                      {"--pubkey", "--seq", "--checkpoint", "--from-checkpoint", "--proof",
                       "--threads", "--json"},
                      &args);
    if (error) return UsageError(*error, kInclusionUsage);
    return RunInclusion(args);
  }
  if (command == "consistency") {
    error = ParseArgs(
        argc, argv,
        {"--pubkey", "--from", "--to", "--from-checkpoint", "--proof", "--threads", "--json"},
        &args);
    if (error) return UsageError(*error, kConsistencyUsage);
    return RunConsistency(args);
  }
  return UsageError("unknown command " + std::string(command), kMainUsage);
}

}  // namespace
}  // namespace strongroom::audit

int main(int argc, char** argv) { return strongroom::audit::Main(argc, argv); }
