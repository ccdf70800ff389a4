// The verifier's fast path for one line: checks that the line is canonical JSON and computes
// its chain hash and leaf hash in one pass over the bytes, without building a JSON tree and
// without allocating.
//
// It is an accelerator, never a judge: it accepts only lines that ParseChainedLine (chain.h)
// accepts, with the same seq, hashes, type and time, and for everything else — a line it cannot
// be sure about (keys with escapes, nesting deeper than 64, checkpoint and unproven lines) as
// much as a broken one — it says "not sure", and the caller runs ParseChainedLine, which decides
// and names the reason. tests/unit/audit/fast_line_test.cc holds it to that.
#pragma once

#include <cstdint>
#include <string_view>

#include "audit/encoding.h"

namespace strongroom::audit {

struct FastLine {
  uint64_t seq = 0;
  Hash prev_hash{};
  Hash hash{};  // checked: SHA-256(prev_hash || C)
  bool is_mac = false;
  std::string_view time;  // points into the line
  Hash leaf{};            // records only: SHA-256(0x00 || C)
};

class FastLineChecker {
 public:
  // True: `line` is a record or MAC line ParseChainedLine accepts; *out holds its fields and, for
  // a record, its leaf hash. False: not sure (use ParseChainedLine).
  bool Check(std::string_view line, FastLine* out);

 private:
  Sha256Hasher chain_;
  Sha256Hasher leaf_;
};

}  // namespace strongroom::audit
