// The verifier's report as auditors read it: the text strongroom-audit prints and its --json
// object (docs/audit-verification.md, section 2).
#pragma once

#include <string>

#include "audit/json.h"
#include "audit/node_groups.h"
#include "audit/verifier.h"

namespace strongroom::audit {

std::string B64(const Hash& h);

Json CheckpointJson(const VerifiedCheckpoint& v);
Json ReportJson(const Report& r);

// "file:line: seq N: reason" and a summary line.
std::string FailureText(const Report& r);
// "OK: audit log intact" (or UNPROVEN, or the failure) and the details.
std::string ReportText(const Report& r);

// Several nodes: each node's report under a "node <origin>" heading, files no node claims, and
// a total.
std::string MultiReportText(const MultiReport& m);
Json MultiReportJson(const MultiReport& m);

}  // namespace strongroom::audit
