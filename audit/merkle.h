// RFC 6962 / RFC 9162 section 2.1 Merkle tree hashing, proofs and proof verification.
//
//   leaf hash  = SHA-256(0x00 || leaf data)
//   node hash  = SHA-256(0x01 || left || right)
//   empty tree = SHA-256("")
//
// Proof generation works on the full list of leaf hashes (what the offline tools have); the
// writer keeps only a CompactRange, O(log n) hashes, to compute roots incrementally.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "audit/encoding.h"
#include "audit/result.h"

namespace strongroom::audit {

Hash HashLeaf(std::string_view leaf_data);
Hash HashChildren(const Hash& left, const Hash& right);
Hash EmptyTreeRoot();

// MTH(D[n]) over leaf hashes.
Hash RootFromLeafHashes(std::span<const Hash> leaves);

// PATH(index, D[size]) of RFC 9162 2.1.3.1, leaf level first. Requires index < size and
// size <= leaves.size().
Result<std::vector<Hash>> MakeInclusionProof(std::span<const Hash> leaves, uint64_t index,
                                             uint64_t size);
// PROOF(size1, D[size2]) of RFC 9162 2.1.4.1. Requires 0 < size1 <= size2 <= leaves.size().
Result<std::vector<Hash>> MakeConsistencyProof(std::span<const Hash> leaves, uint64_t size1,
                                               uint64_t size2);

// Leaves known in part: the first `base_size` only through the compact range of the tree they
// form (a checkpoint's "frontier"), the later ones by their hashes. That is enough for every
// proof about trees of at least base_size leaves and leaves from base_size on: each node such a
// proof uses left of base_size is one of the range's subtree roots or built from them.
struct PartialLeaves {
  uint64_t base_size = 0;
  std::span<const Hash> base_nodes;  // CompactRange::nodes() of the first base_size leaves
  std::span<const Hash> later;       // later[i] is the hash of leaf base_size + i
};
// As above; fails for a leaf or tree size before base_size.
Result<std::vector<Hash>> MakeInclusionProof(const PartialLeaves& leaves, uint64_t index,
                                             uint64_t size);
Result<std::vector<Hash>> MakeConsistencyProof(const PartialLeaves& leaves, uint64_t size1,
                                               uint64_t size2);

// Proof verification (RFC 9162 2.1.3.2 and 2.1.4.2). Hashes are taken as raw byte strings so
// that malformed input (wrong lengths) is rejected here, not by the caller.
Status VerifyInclusion(uint64_t index, uint64_t size, std::string_view leaf_hash,
                       std::span<const std::string> proof, std::string_view root);
// Consistency between equal sizes holds iff the roots are equal and the proof is empty; a proof
// from the empty tree (size1 == 0) is meaningless and rejected.
Status VerifyConsistency(uint64_t size1, uint64_t size2, std::span<const std::string> proof,
                         std::string_view root1, std::string_view root2);

// Convenience overloads for proofs held as Hash values.
Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                       std::span<const Hash> proof, const Hash& root);
Status VerifyConsistency(uint64_t size1, uint64_t size2, std::span<const Hash> proof,
                         const Hash& root1, const Hash& root2);

// The "frontier" of a tree of `size` leaves: the roots of the perfect subtrees its leaves split
// into, largest (leftmost) first — one per set bit of `size`. Appending is amortised O(1) hashes,
// the root costs O(log n).
class CompactRange {
 public:
  CompactRange() = default;
  // Rebuilds a range from saved state; `nodes` must hold popcount(size) hashes.
  static Result<CompactRange> FromNodes(uint64_t size, std::vector<Hash> nodes);

  void Append(const Hash& leaf_hash);
  uint64_t size() const { return size_; }
  const std::vector<Hash>& nodes() const { return nodes_; }
  Hash Root() const;

  friend bool operator==(const CompactRange&, const CompactRange&) = default;

 private:
  uint64_t size_ = 0;
  std::vector<Hash> nodes_;
};

}  // namespace strongroom::audit
