// Large Raft buffers backed by a file instead of anonymous memory (issue 16 item 7).
//
// A snapshot is the whole store. libraft holds it as one buffer three times over its life: when
// a leader loads its snapshot file to send it (uvSnapshotGet), when a follower receives an
// InstallSnapshot (uvRecv), and, here, the pieces the state machine serialises. Each of those,
// when at least the threshold large, is memory mapped (MAP_SHARED) from an unlinked file in the
// Raft directory (O_TMPFILE, its blocks reserved with fallocate so that a full disk is an
// allocation failure, never a SIGBUS later): its pages are page cache the kernel writes out and
// drops under pressure, so a store larger than the free RAM can still be sent and installed.
// An allocation that cannot be spilled (no directory, no space) falls back to malloc.
//
// InstallRaftHeap() routes libraft's allocations (raft_heap_set) through SpillAlloc for the
// large ones; everything else goes to malloc as before.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace strongroom::raft {

// The directory spilled buffers are made in (the Raft directory), and the size from which an
// allocation is spilled (default 16 MiB; STRONGROOM_RAFT_SPILL_BYTES overrides it, for tests
// and benchmarks; 0 turns spilling off). Process-wide; the last call wins.
void SetSpillDirectory(const std::string& dir);
size_t SpillThreshold();

// `n` bytes backed by a file in the spill directory, zeroed; nullptr when that is not possible
// (the caller then uses malloc). Freed with SpillFree.
void* SpillAlloc(size_t n);
// Frees a SpillAlloc block and returns true; false (nothing done) for any other pointer.
bool SpillFree(void* p);
// The size of a SpillAlloc block; 0 for any other pointer.
size_t SpillSize(const void* p);

struct SpillStats {
  uint64_t blocks_now = 0;
  uint64_t bytes_now = 0;
  uint64_t blocks_total = 0;  // ever made
  uint64_t bytes_total = 0;
};
SpillStats GetSpillStats();

// Makes libraft allocate through the spill heap (once per process; idempotent).
void InstallRaftHeap();

}  // namespace strongroom::raft
