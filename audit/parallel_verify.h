// Verification on every core. The signed checkpoints cut a log into segments that can be checked
// independently: a checkpoint line records the whole state a verifier needs to go on (its seq
// and hash, and the Merkle tree's frontier), so the lines after it can be verified from that
// state alone, and the results stitched together in order afterwards.
//
// The files are cut into chunks (plain files every options.chunk_bytes, 32 MiB by default, at
// line starts; a gzip file is one chunk, as it can only be read from its start). A worker thread
// takes a chunk, skips to its first checkpoint line with a frontier and verifies from that line's
// state (the "body"): through the end of the chunk and on, to the first such checkpoint line at
// or after the end, which is where the next chunk's body starts. So each line is verified by
// exactly one worker, and the line a body starts from is checked in full (signature, root,
// frontier) by the worker before it. The lines before a file's first checkpoint (the "head") are
// verified by the stitching thread, which takes the chunks in order, requires each body's
// starting state to be exactly the state the log had reached there (StartPoint equality: seq,
// hash, tree), and adopts its result. A body that broke, or anything unexpected, is verified
// again by the stitching thread in order, so every break is reported exactly as one pass reports
// it (same file, line, seq and reason).
//
// Memory: a 1 MiB read buffer per worker (more for lines up to 16 MiB), the results of at most
// 2 x threads + 2 chunks (O(log n) each, or the leaves for proofs), and for a gzip file its head,
// up to 8 MiB (beyond that the stitching thread decompresses the file again).
#pragma once

#include <span>
#include <string>

#include "audit/verifier.h"

namespace strongroom::audit {

// VerifyFiles for options.threads > 1: the same report, checked by options.threads workers.
Report VerifyFilesParallel(std::span<const std::string> paths, const VerifyOptions& options);

}  // namespace strongroom::audit
