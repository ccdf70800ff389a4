// libFuzzer target for the offline audit verifier (audit/verifier.h): arbitrary bytes as one
// audit log file, verified with a fixed Ed25519 key (the seeds in corpus/audit_verify are logs
// signed with it, so mutations reach checkpoint and Merkle checks). Besides crashes, leaks and UB
// (ASan/UBSan), it checks what callers rely on:
//   * a failure names a line inside the input (or one past its end) and a reason;
//   * a pass means the report adds up: lines = entries + checkpoints, a signed checkpoint was
//     seen, and the Merkle root recomputed from the kept leaves equals the incremental one, with
//     an inclusion proof for the newest signed entry holding against the last checkpoint;
//   * canonical JSON is a fixed point for every line that parses;
//   * the fast path (fast_line.h) never decides: every line it takes the full parser takes with
//     the same fields, and the report is the same with the full parser alone;
//   * the signed-note and checkpoint parsers never accept what they cannot re-format.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "audit/chain.h"
#include "audit/checkpoint.h"
#include "audit/fast_line.h"
#include "audit/json.h"
#include "audit/keys.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/verifier.h"

namespace {

using namespace strongroom::audit;  // NOLINT: fuzz target

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "audit_verify_fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

// The key the seed corpus is signed with: Ed25519 from a seed of 32 bytes 0x5a.
const std::vector<PublicKey>& Keys() {
  static const std::vector<PublicKey>* keys = [] {
    auto* k = new std::vector<PublicKey>();
    Result<PrivateKey> priv = PrivateKey::Ed25519FromSeed(std::string(32, '\x5a'));
    Check(priv.ok(), "fuzz key");
    Result<PublicKey> pub = priv->Public();
    Check(pub.ok(), "fuzz public key");
    k->push_back(std::move(pub).value());
    return k;
  }();
  return *keys;
}

void CheckJsonFixedPoint(std::string_view line) {
  Result<Json> parsed = ParseJson(line);
  if (!parsed.ok()) return;
  const std::string once = CanonicalJson(*parsed);
  Result<Json> again = ParseJson(once);
  Check(again.ok(), "canonical JSON parses");
  Check(CanonicalJson(*again) == once, "canonical JSON is a fixed point");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  uint64_t newlines = 0;
  for (char c : text) newlines += c == '\n';
  const uint64_t max_line = newlines + 1;

  VerifyOptions options;
  options.keys = Keys();
  options.keep_leaves = true;
  Verifier verifier(options);
  verifier.BeginFile("fuzz.log");
  verifier.AddFileContents(text);
  const Report report = verifier.Finish();

  if (!report.ok()) {
    const Break& b = *report.failure;
    Check(b.file == "fuzz.log", "break names the file");
    Check(b.line >= 1 && b.line <= max_line, "break line inside the input or one past it");
    Check(b.seq == report.state.last_seq + 1, "break seq is the next expected seq");
    Check(!b.reason.empty(), "break has a reason");
    Check(b.kind == Break::Kind::kTamper, "in-memory input has no I/O errors");
  } else {
    Check(report.lines >= 1, "a passing log has lines");
    Check(report.checkpoints >= 1, "a passing log has a signed checkpoint");
    Check(
        report.lines == report.entries + report.checkpoints + report.macs + report.unproven.size(),
        "lines add up");
    Check(report.state.last_seq == report.lines, "seq counts lines");
    Check(report.leaf_hashes.size() == report.entries, "one leaf per entry");
    Check(RootFromLeafHashes(report.leaf_hashes) == report.state.tree.Root(),
          "incremental root equals the full recomputation");
    const Checkpoint& cp = report.last_checkpoint->checkpoint;
    if (cp.tree_size > 0) {
      const uint64_t index = cp.tree_size - 1;
      Result<std::vector<Hash>> proof = MakeInclusionProof(report.leaf_hashes, index, cp.tree_size);
      Check(proof.ok(), "inclusion proof for a signed entry");
      Check(VerifyInclusion(index, cp.tree_size, report.leaf_hashes[index], *proof, cp.root).ok(),
            "inclusion proof verifies against the checkpoint");
    }
  }

  // The same log with the full parser only: the same report.
  VerifyOptions full = options;
  full.full_parser_only = true;
  Verifier slow(full);
  slow.BeginFile("fuzz.log");
  slow.AddFileContents(text);
  const Report again = slow.Finish();
  Check(report.ok() == again.ok(), "fast path: same verdict");
  Check(report.ok() || (report.failure->line == again.failure->line &&
                        report.failure->reason == again.failure->reason),
        "fast path: same break");
  Check(report.state == again.state && report.lines == again.lines &&
            report.leaf_hashes == again.leaf_hashes,
        "fast path: same state");

  // Every line the fast path takes, the full parser takes with the same fields.
  FastLineChecker fast;
  for (size_t pos = 0; pos < text.size();) {
    const size_t eol = text.find('\n', pos);
    const std::string_view line =
        text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    FastLine f;
    if (fast.Check(line, &f)) {
      Result<ChainedRecord> rec = ParseChainedLine(line);
      Check(rec.ok(), "fast path takes only what the parser takes");
      Check(rec->seq == f.seq && rec->hash == f.hash && rec->prev_hash == f.prev_hash &&
                rec->time == f.time && rec->is_mac == f.is_mac && !rec->is_checkpoint &&
                !rec->is_unproven,
            "fast path fields equal the parser's");
      Check(!rec->is_leaf() || HashLeaf(rec->canonical) == f.leaf, "fast path leaf hash");
    }
    if (eol == std::string_view::npos) break;
    pos = eol + 1;
  }

  // Every line through the JSON parser (bounded, to keep runs fast).
  size_t start = 0;
  for (int i = 0; i < 8 && start <= text.size(); ++i) {
    const size_t eol = text.find('\n', start);
    CheckJsonFixedPoint(text.substr(start, eol == std::string_view::npos ? eol : eol - start));
    if (eol == std::string_view::npos) break;
    start = eol + 1;
  }

  // The whole input as a signed note and as checkpoint text.
  Result<SignedNote> note = ParseSignedNote(text);
  if (note.ok()) {
    Check(!note->signatures.empty(), "a parsed note has signatures");
    std::string rebuilt = note->text + "\n";
    for (const NoteSignature& s : note->signatures) {
      rebuilt += FormatNoteSignatureLine(s.key_name, s.key_id, s.signature);
    }
    Check(rebuilt == text, "a parsed note re-formats to the same bytes");
  }
  Result<Checkpoint> cp = ParseCheckpointText(text);
  if (cp.ok()) {
    Result<std::string> formatted = FormatCheckpointText(*cp);
    Check(formatted.ok() && *formatted == text, "a parsed checkpoint re-formats to the same bytes");
  }
  return 0;
}
