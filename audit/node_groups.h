// Several nodes' audit files in one verification: in a cluster every node writes its own chain
// under its own origin (strongroom-audit/<device>/<node>). GroupFilesByOrigin sorts a mixed list
// of files into one ordered list per origin, which is then verified like a single log.
//
// A file's origin is the origin line of the first checkpoint note in it (read, not yet trusted:
// a file put in the wrong group fails there, at that checkpoint's signature or origin check). A
// file without any checkpoint (a live file just after a rotation) belongs to the node whose file
// it continues: its first line's prev_hash is the hash of that file's last line. Within a group
// files are ordered by the seq of their first line. A pipe (`<(zcat ...)`) can be read only once,
// by the verifier: it has no origin here.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "audit/checkpoint.h"
#include "audit/result.h"
#include "audit/verifier.h"

namespace strongroom::audit {

struct NodeFiles {
  std::string origin;
  std::vector<std::string> files;  // oldest first
};

struct UnattributedFile {
  std::string file;
  std::string reason;
  bool io = false;  // the file could not be read
};

struct FileGroups {
  // One group, in the order given, when the files name at most one origin (the single-log case:
  // nothing is reordered). Otherwise one group per origin, sorted by origin.
  std::vector<NodeFiles> nodes;
  // Files that belong to no group (several origins only).
  std::vector<UnattributedFile> unattributed;
  bool several_origins() const { return nodes.size() > 1 || !unattributed.empty(); }
};

FileGroups GroupFilesByOrigin(std::span<const std::string> paths);

struct NodeReport {
  std::string origin;
  std::vector<std::string> files;
  Report report;
};

struct MultiReport {
  std::vector<NodeReport> nodes;
  std::vector<UnattributedFile> unattributed;
  // Every node's log intact and proven, and no file left over.
  bool ok() const;
};

// Verifies each group like a single log with `options`, plus the starting checkpoint and the
// trusted checkpoint (each optional, at most one per node) whose origin is the group's. Fails
// when a starting or trusted checkpoint names no node of the groups, or two name the same one.
Result<MultiReport> VerifyNodes(const FileGroups& groups, const VerifyOptions& options,
                                std::span<const StartPoint> starts,
                                std::span<const Checkpoint> trusted);

}  // namespace strongroom::audit
