// RFC 6962 / 9162 Merkle proofs (audit/merkle.h), checked against every inclusion and
// consistency vector of transparency-dev/merkle (../shared/testdata/merkle, see its README): the
// verifier must accept exactly the vectors with "wantErr": false.
#include "audit/merkle.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "audit/encoding.h"
#include "audit/json.h"

#ifndef SR_MERKLE_TESTDATA
#error "SR_MERKLE_TESTDATA must name the shared testdata/merkle directory"
#endif

namespace strongroom::audit {
namespace {

namespace fs = std::filesystem;

// The leaves of the RFC 6962 reference tree the vectors are built over.
std::vector<std::string> ReferenceLeaves() {
  return {"",
          std::string(1, '\x00'),
          "\x10",
          "\x20\x21",
          "\x30\x31",
          "\x40\x41\x42\x43",
          "\x50\x51\x52\x53\x54\x55\x56\x57",
          "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"};
}

std::vector<Hash> ReferenceLeafHashes() {
  std::vector<Hash> out;
  for (const std::string& leaf : ReferenceLeaves()) out.push_back(HashLeaf(leaf));
  return out;
}

struct Vector {
  std::string name;
  Json json;
};

// Every *.json under `dir`, sorted. Fails the test (not skips it) when the directory is missing.
std::vector<Vector> LoadVectors(const std::string& kind) {
  const fs::path dir = fs::path(SR_MERKLE_TESTDATA) / kind;
  std::vector<Vector> out;
  if (!fs::is_directory(dir)) {
    ADD_FAILURE() << "Merkle test vectors not found at " << dir
                  << ": the shared testdata directory must be checked out next to the repo "
                     "(../shared/testdata/merkle)";
    return out;
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& p : files) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    Result<Json> j = ParseJson(ss.str());
    if (!j.ok() || !j->is_object()) {
      ADD_FAILURE() << p << ": " << (j.ok() ? "not an object" : j.message());
      continue;
    }
    out.push_back({fs::relative(p, dir).string(), std::move(j).value()});
  }
  return out;
}

// Decodes a base64 field; undecodable input is passed on as-is so the verifier rejects it.
std::string B64Field(const Json& v, std::string_view key) {
  const Json* f = v.Find(key);
  if (f == nullptr || !f->is_string()) return "<missing>";
  std::optional<std::string> bytes = Base64Decode(f->str());
  return bytes ? *bytes : "<undecodable>" + f->str();
}

std::vector<std::string> ProofField(const Json& v) {
  std::vector<std::string> out;
  const Json* p = v.Find("proof");
  if (p == nullptr || p->type() != Json::Type::kArray) return out;  // null: empty proof
  for (const Json& item : p->items()) {
    std::optional<std::string> bytes = Base64Decode(item.str());
    out.push_back(bytes ? *bytes : "<undecodable>");
  }
  return out;
}

uint64_t UintField(const Json& v, std::string_view key) {
  const Json* f = v.Find(key);
  EXPECT_TRUE(f != nullptr && f->AsUint().has_value()) << key;
  return f != nullptr ? f->AsUint().value_or(0) : 0;
}

bool WantErr(const Json& v) {
  const Json* f = v.Find("wantErr");
  EXPECT_TRUE(f != nullptr && f->type() == Json::Type::kBool);
  return f != nullptr && f->bool_value();
}

TEST(MerkleVectors, Inclusion) {
  const std::vector<Vector> vectors = LoadVectors("inclusion");
  ASSERT_FALSE(vectors.empty());
  int accepted = 0;
  for (const Vector& v : vectors) {
    const std::vector<std::string> proof = ProofField(v.json);
    const Status st =
        VerifyInclusion(UintField(v.json, "leafIdx"), UintField(v.json, "treeSize"),
                        B64Field(v.json, "leafHash"), proof, B64Field(v.json, "root"));
    const bool want_err = WantErr(v.json);
    EXPECT_EQ(st.ok(), !want_err) << "inclusion/" << v.name << ": " << st.message();
    accepted += st.ok();
  }
  EXPECT_EQ(accepted, 6);
  std::cout << "[          ] " << vectors.size() << " inclusion vectors, " << accepted
            << " accepted\n";
}

TEST(MerkleVectors, Consistency) {
  const std::vector<Vector> vectors = LoadVectors("consistency");
  ASSERT_FALSE(vectors.empty());
  int accepted = 0;
  for (const Vector& v : vectors) {
    const std::vector<std::string> proof = ProofField(v.json);
    const Status st =
        VerifyConsistency(UintField(v.json, "size1"), UintField(v.json, "size2"), proof,
                          B64Field(v.json, "root1"), B64Field(v.json, "root2"));
    const bool want_err = WantErr(v.json);
    EXPECT_EQ(st.ok(), !want_err) << "consistency/" << v.name << ": " << st.message();
    accepted += st.ok();
  }
  EXPECT_EQ(accepted, 6);
  std::cout << "[          ] " << vectors.size() << " consistency vectors, " << accepted
            << " accepted\n";
}

// Our proof generator reproduces the accepted vectors over the reference leaves.
TEST(MerkleVectors, GeneratedProofsMatchHappyPaths) {
  const std::vector<Hash> leaves = ReferenceLeafHashes();
  int checked = 0;
  for (const Vector& v : LoadVectors("inclusion")) {
    if (WantErr(v.json) || v.name.rfind("single-entry", 0) == 0) continue;
    const uint64_t index = UintField(v.json, "leafIdx");
    const uint64_t size = UintField(v.json, "treeSize");
    ASSERT_LE(size, leaves.size());
    EXPECT_EQ(B64Field(v.json, "leafHash"), std::string(AsBytes(leaves[index])));
    EXPECT_EQ(B64Field(v.json, "root"),
              std::string(AsBytes(RootFromLeafHashes(std::span(leaves).first(size)))));
    Result<std::vector<Hash>> proof = MakeInclusionProof(leaves, index, size);
    ASSERT_TRUE(proof.ok());
    std::vector<std::string> got;
    for (const Hash& h : *proof) got.emplace_back(AsBytes(h));
    EXPECT_EQ(got, ProofField(v.json)) << v.name;
    ++checked;
  }
  for (const Vector& v : LoadVectors("consistency")) {
    if (WantErr(v.json) || v.name.rfind("additional", 0) == 0) continue;
    const uint64_t size1 = UintField(v.json, "size1");
    const uint64_t size2 = UintField(v.json, "size2");
    EXPECT_EQ(B64Field(v.json, "root1"),
              std::string(AsBytes(RootFromLeafHashes(std::span(leaves).first(size1)))));
    EXPECT_EQ(B64Field(v.json, "root2"),
              std::string(AsBytes(RootFromLeafHashes(std::span(leaves).first(size2)))));
    Result<std::vector<Hash>> proof = MakeConsistencyProof(leaves, size1, size2);
    ASSERT_TRUE(proof.ok());
    std::vector<std::string> got;
    for (const Hash& h : *proof) got.emplace_back(AsBytes(h));
    EXPECT_EQ(got, ProofField(v.json)) << v.name;
    ++checked;
  }
  EXPECT_EQ(checked, 10);
}

TEST(Merkle, KnownRoots) {
  EXPECT_EQ(HexEncode(EmptyTreeRoot()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // RFC 6962 reference tree of 8 leaves.
  EXPECT_EQ(HexEncode(RootFromLeafHashes(ReferenceLeafHashes())),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
}

std::vector<Hash> RandomLeaves(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Hash> out;
  for (size_t i = 0; i < n; ++i) out.push_back(HashLeaf(std::to_string(rng())));
  return out;
}

TEST(Merkle, CompactRangeMatchesFullTree) {
  const std::vector<Hash> leaves = RandomLeaves(300, 1);
  CompactRange range;
  EXPECT_EQ(range.Root(), EmptyTreeRoot());
  for (size_t n = 1; n <= leaves.size(); ++n) {
    range.Append(leaves[n - 1]);
    ASSERT_EQ(range.size(), n);
    ASSERT_EQ(range.nodes().size(), static_cast<size_t>(std::popcount(n)));
    ASSERT_EQ(range.Root(), RootFromLeafHashes(std::span(leaves).first(n))) << n;
  }
  Result<CompactRange> copy = CompactRange::FromNodes(range.size(), range.nodes());
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(*copy, range);
  EXPECT_FALSE(CompactRange::FromNodes(range.size() + 1, range.nodes()).ok());
}

TEST(Merkle, AllProofsRoundTrip) {
  const std::vector<Hash> leaves = RandomLeaves(70, 2);
  for (uint64_t n = 1; n <= leaves.size(); ++n) {
    const Hash root = RootFromLeafHashes(std::span(leaves).first(n));
    for (uint64_t i = 0; i < n; ++i) {
      Result<std::vector<Hash>> proof = MakeInclusionProof(leaves, i, n);
      ASSERT_TRUE(proof.ok());
      ASSERT_TRUE(VerifyInclusion(i, n, leaves[i], *proof, root).ok()) << i << "/" << n;
      // The same proof for a different leaf or index fails.
      EXPECT_FALSE(VerifyInclusion(i, n, leaves[(i + 1) % leaves.size()], *proof, root).ok());
      if (n > 1) {
        EXPECT_FALSE(VerifyInclusion((i + 1) % n, n, leaves[i], *proof, root).ok());
      }
    }
    for (uint64_t m = 1; m <= n; ++m) {
      const Hash root1 = RootFromLeafHashes(std::span(leaves).first(m));
      Result<std::vector<Hash>> proof = MakeConsistencyProof(leaves, m, n);
      ASSERT_TRUE(proof.ok());
      ASSERT_TRUE(VerifyConsistency(m, n, *proof, root1, root).ok()) << m << "->" << n;
      if (m < n) {
        Hash wrong = root1;
        wrong[0] ^= 1;
        EXPECT_FALSE(VerifyConsistency(m, n, *proof, wrong, root).ok());
        EXPECT_FALSE(VerifyConsistency(m, n, *proof, root1, wrong).ok());
      }
    }
  }
  EXPECT_FALSE(MakeInclusionProof(leaves, 5, 5).ok());
  EXPECT_FALSE(MakeInclusionProof(leaves, 0, leaves.size() + 1).ok());
  EXPECT_FALSE(MakeConsistencyProof(leaves, 0, 5).ok());
  EXPECT_FALSE(MakeConsistencyProof(leaves, 6, 5).ok());
}

// A changed leaf anywhere makes every later root inconsistent with the earlier ones.
TEST(Merkle, ForkIsInconsistent) {
  std::vector<Hash> a = RandomLeaves(20, 3);
  std::vector<Hash> b = a;
  b[7] = HashLeaf("forged");
  const Hash root_a = RootFromLeafHashes(std::span(a).first(10));
  const Hash root_b = RootFromLeafHashes(std::span(b).first(20));
  Result<std::vector<Hash>> proof = MakeConsistencyProof(b, 10, 20);
  ASSERT_TRUE(proof.ok());
  EXPECT_FALSE(VerifyConsistency(10, 20, *proof, root_a, root_b).ok());
}

}  // namespace
}  // namespace strongroom::audit
