// `strongroom policy fmt`: a canonical layout for HCL ACL policies. The policy is first checked
// as the server would check it (policy::ParsePolicy), then printed from its syntax tree:
//   - top-level attributes, then blocks in source order, one blank line between blocks;
//   - two spaces of indentation per level; within a run of one-line attributes the '=' signs
//     are aligned (as HCL's printer does);
//   - strings quoted with JSON-style escapes (heredocs become quoted strings), numbers as
//     written, lists of scalars on one line (["a", "b"]), object keys quoted.
// The tree keeps no comments, so a file with comments is refused rather than stripped; JSON
// policies are refused too (their layout is JSON's). Nesting is bounded by the HCL parser's own
// depth limit (64).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace strongroom::vault {

absl::StatusOr<std::string> FormatPolicy(std::string_view text);

// Whether HCL text holds a comment (#, // or /* outside strings and heredocs).
bool HasHclComment(std::string_view text);

// Replaces `path` with `content`: a temporary file beside it (the old file's mode), fsync,
// rename.
absl::Status ReplaceFile(const std::string& path, std::string_view content);

}  // namespace strongroom::vault
