#include "audit/merkle.h"

#include <bit>

namespace strongroom::audit {

namespace {

constexpr char kLeafPrefix[] = {0x00};
constexpr char kNodePrefix[] = {0x01};

// Largest power of two strictly smaller than n (n >= 2).
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

Hash Subtree(std::span<const Hash> leaves) {
  if (leaves.empty()) return EmptyTreeRoot();
  if (leaves.size() == 1) return leaves[0];
  const uint64_t k = SplitPoint(leaves.size());
  return HashChildren(Subtree(leaves.first(k)), Subtree(leaves.subspan(k)));
}

// The nodes of a PartialLeaves tree, by leaf range [a, b).
class PartialTree {
 public:
  explicit PartialTree(const PartialLeaves& leaves) : l_(leaves) {}

  bool ok() const { return ok_; }

  Hash Node(uint64_t a, uint64_t b) {
    if (!ok_) return Hash{};
    if (a >= l_.base_size) return Subtree(l_.later.subspan(a - l_.base_size, b - a));
    // Left of base_size only the compact range's subtrees are known: [a, b) must be one of
    // them, or a run of them (then the split below is at their boundary), or reach past
    // base_size.
    uint64_t start = 0;
    size_t i = 0;
    for (int bit = 63; bit >= 0; --bit) {
      const uint64_t size = uint64_t{1} << bit;
      if ((l_.base_size & size) == 0) continue;
      if (start == a) {
        if (b == start + size) return l_.base_nodes[i];
        if (b < start + size) return Missing();
        break;
      }
      if (start > a) return Missing();
      start += size;
      ++i;
    }
    if (start != a) return Missing();
    const uint64_t k = SplitPoint(b - a);
    const Hash left = Node(a, a + k);
    return HashChildren(left, Node(a + k, b));
  }

  void InclusionPath(uint64_t a, uint64_t b, uint64_t m, std::vector<Hash>* out) {
    if (b - a <= 1) return;
    const uint64_t k = SplitPoint(b - a);
    if (m < k) {
      InclusionPath(a, a + k, m, out);
      out->push_back(Node(a + k, b));
    } else {
      InclusionPath(a + k, b, m - k, out);
      out->push_back(Node(a, a + k));
    }
  }

  void SubProof(uint64_t a, uint64_t b, uint64_t m, bool whole, std::vector<Hash>* out) {
    const uint64_t n = b - a;
    if (m == n) {
      if (!whole) out->push_back(Node(a, b));
      return;
    }
    const uint64_t k = SplitPoint(n);
    if (m <= k) {
      SubProof(a, a + k, m, whole, out);
      out->push_back(Node(a + k, b));
    } else {
      SubProof(a + k, b, m - k, false, out);
      out->push_back(Node(a, a + k));
    }
  }

 private:
  Hash Missing() {
    ok_ = false;
    return Hash{};
  }

  const PartialLeaves& l_;
  bool ok_ = true;
};

Status CheckPartial(const PartialLeaves& leaves, uint64_t size) {
  if (static_cast<size_t>(std::popcount(leaves.base_size)) != leaves.base_nodes.size()) {
    return Err("the compact range does not fit its tree size");
  }
  if (size < leaves.base_size) return Err("tree size is before the first known leaf");
  if (size - leaves.base_size > leaves.later.size()) {
    return Err("tree size exceeds the number of leaves");
  }
  return OkStatus();
}

std::optional<Hash> ToHash(std::string_view bytes) {
  if (bytes.size() != kHashSize) return std::nullopt;
  Hash h{};
  for (size_t i = 0; i < kHashSize; ++i) h[i] = static_cast<uint8_t>(bytes[i]);
  return h;
}

Result<std::vector<Hash>> ToHashes(std::span<const std::string> proof) {
  std::vector<Hash> out;
  out.reserve(proof.size());
  for (size_t i = 0; i < proof.size(); ++i) {
    std::optional<Hash> h = ToHash(proof[i]);
    if (!h) {
      return Err("proof hash " + std::to_string(i) + " has " + std::to_string(proof[i].size()) +
                 " bytes, want 32");
    }
    out.push_back(*h);
  }
  return out;
}

// Shifts fn and sn right together while fn's lowest bit is clear and fn is not zero
// (RFC 9162 2.1.3.2 step 4.b and 2.1.4.2 step 6.b).
void ShiftWhileEven(uint64_t* fn, uint64_t* sn) {
  while (*fn != 0 && (*fn & 1) == 0) {
    *fn >>= 1;
    *sn >>= 1;
  }
}

}  // namespace

Hash HashLeaf(std::string_view leaf_data) {
  return Sha256({std::string_view(kLeafPrefix, 1), leaf_data});
}

Hash HashChildren(const Hash& left, const Hash& right) {
  return Sha256({std::string_view(kNodePrefix, 1), AsBytes(left), AsBytes(right)});
}

Hash EmptyTreeRoot() { return Sha256(std::string_view()); }

Hash RootFromLeafHashes(std::span<const Hash> leaves) { return Subtree(leaves); }

Result<std::vector<Hash>> MakeInclusionProof(std::span<const Hash> leaves, uint64_t index,
                                             uint64_t size) {
  return MakeInclusionProof(PartialLeaves{0, {}, leaves}, index, size);
}

Result<std::vector<Hash>> MakeConsistencyProof(std::span<const Hash> leaves, uint64_t size1,
                                               uint64_t size2) {
  return MakeConsistencyProof(PartialLeaves{0, {}, leaves}, size1, size2);
}

Result<std::vector<Hash>> MakeInclusionProof(const PartialLeaves& leaves, uint64_t index,
                                             uint64_t size) {
  AUDIT_RETURN_IF_ERROR(CheckPartial(leaves, size));
  if (index >= size) return Err("leaf index is not below the tree size");
  if (index < leaves.base_size) return Err("leaf index is before the first known leaf");
  PartialTree tree(leaves);
  std::vector<Hash> out;
  tree.InclusionPath(0, size, index, &out);
  if (!tree.ok()) return Err("the proof needs leaves before the first known leaf");
  return out;
}

Result<std::vector<Hash>> MakeConsistencyProof(const PartialLeaves& leaves, uint64_t size1,
                                               uint64_t size2) {
  AUDIT_RETURN_IF_ERROR(CheckPartial(leaves, size2));
  if (size1 == 0) return Err("a consistency proof from the empty tree is meaningless");
  if (size1 > size2) return Err("first tree size is larger than the second");
  if (size1 < leaves.base_size) return Err("first tree size is before the first known leaf");
  PartialTree tree(leaves);
  std::vector<Hash> out;
  tree.SubProof(0, size2, size1, true, &out);
  if (!tree.ok()) return Err("the proof needs leaves before the first known leaf");
  return out;
}

Status VerifyInclusion(uint64_t index, uint64_t size, std::string_view leaf_hash,
                       std::span<const std::string> proof, std::string_view root) {
  std::optional<Hash> leaf = ToHash(leaf_hash);
  if (!leaf) return Err("leaf hash must be 32 bytes");
  std::optional<Hash> want = ToHash(root);
  if (!want) return Err("root hash must be 32 bytes");
  AUDIT_ASSIGN_OR_RETURN(std::vector<Hash> path, ToHashes(proof));
  return VerifyInclusion(index, size, *leaf, path, *want);
}

Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                       std::span<const Hash> proof, const Hash& root) {
  if (index >= size) {
    return Err("leaf index " + std::to_string(index) + " is not below tree size " +
               std::to_string(size));
  }
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof) {
    if (sn == 0) return Err("inclusion proof is too long");
    if ((fn & 1) == 1 || fn == sn) {
      r = HashChildren(p, r);
      ShiftWhileEven(&fn, &sn);
    } else {
      r = HashChildren(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Err("inclusion proof is too short");
  if (r != root) return Err("inclusion proof does not lead to the expected root");
  return OkStatus();
}

Status VerifyConsistency(uint64_t size1, uint64_t size2, std::span<const std::string> proof,
                         std::string_view root1, std::string_view root2) {
  if (size1 > size2) return Err("first tree size is larger than the second");
  if (size1 == 0) return Err("a consistency proof from the empty tree is meaningless");
  if (size1 == size2) {
    if (!proof.empty()) return Err("trees of equal size need an empty consistency proof");
    if (root1 != root2) return Err("trees of equal size have different roots");
    return OkStatus();
  }
  std::optional<Hash> r1 = ToHash(root1);
  std::optional<Hash> r2 = ToHash(root2);
  if (!r1 || !r2) return Err("root hashes must be 32 bytes");
  AUDIT_ASSIGN_OR_RETURN(std::vector<Hash> path, ToHashes(proof));
  return VerifyConsistency(size1, size2, path, *r1, *r2);
}

Status VerifyConsistency(uint64_t size1, uint64_t size2, std::span<const Hash> proof,
                         const Hash& root1, const Hash& root2) {
  if (size1 > size2) return Err("first tree size is larger than the second");
  if (size1 == 0) return Err("a consistency proof from the empty tree is meaningless");
  if (size1 == size2) {
    if (!proof.empty()) return Err("trees of equal size need an empty consistency proof");
    if (root1 != root2) return Err("trees of equal size have different roots");
    return OkStatus();
  }
  if (proof.empty()) return Err("consistency proof is empty");
  // RFC 9162 2.1.4.2. When size1 is a power of two the old root is itself a node of the new
  // tree and the proof omits it; put it back in front.
  std::vector<Hash> path;
  path.reserve(proof.size() + 1);
  if (std::has_single_bit(size1)) path.push_back(root1);
  path.insert(path.end(), proof.begin(), proof.end());

  uint64_t fn = size1 - 1;
  uint64_t sn = size2 - 1;
  while ((fn & 1) == 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0];
  Hash sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) return Err("consistency proof is too long");
    if ((fn & 1) == 1 || fn == sn) {
      fr = HashChildren(c, fr);
      sr = HashChildren(c, sr);
      ShiftWhileEven(&fn, &sn);
    } else {
      sr = HashChildren(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Err("consistency proof is too short");
  if (fr != root1) return Err("consistency proof does not lead to the first root");
  if (sr != root2) return Err("consistency proof does not lead to the second root");
  return OkStatus();
}

Result<CompactRange> CompactRange::FromNodes(uint64_t size, std::vector<Hash> nodes) {
  if (static_cast<size_t>(std::popcount(size)) != nodes.size()) {
    return Err("compact range for size " + std::to_string(size) + " needs " +
               std::to_string(std::popcount(size)) + " hashes, got " +
               std::to_string(nodes.size()));
  }
  CompactRange r;
  r.size_ = size;
  r.nodes_ = std::move(nodes);
  return r;
}

void CompactRange::Append(const Hash& leaf_hash) {
  nodes_.push_back(leaf_hash);
  // Each trailing one bit of the old size is a perfect subtree of the same height as the one
  // just completed: merge them pairwise.
  for (uint64_t s = size_; (s & 1) == 1; s >>= 1) {
    Hash right = nodes_.back();
    nodes_.pop_back();
    nodes_.back() = HashChildren(nodes_.back(), right);
  }
  ++size_;
}

Hash CompactRange::Root() const {
  if (nodes_.empty()) return EmptyTreeRoot();
  Hash r = nodes_.back();
  for (size_t i = nodes_.size() - 1; i-- > 0;) r = HashChildren(nodes_[i], r);
  return r;
}

}  // namespace strongroom::audit
