#include "appliance/broker/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace strongroom::broker {
namespace {

using ::testing::HasSubstr;

constexpr char kGood[] = R"(
# A production-like configuration
api_addr = "https://10.0.0.1:8200"
cluster_addr = "https://10.0.0.1:8201"
workers = 4
listener "tcp" {
  address       = "0.0.0.0:8200"
  tls_cert_file = "/etc/strongroom/tls.crt"
  tls_key_file  = "/etc/strongroom/tls.key"
  max_request_size = 1048576
  http_idle_timeout = "2m"
}
storage "rocksdb" {
  path    = "/var/lib/strongroom/data"
  node_id = "node1"
}
seal "pkcs11" {
  lib         = "/usr/lib/softhsm/libsofthsm2.so"
  token_label = "strongroom"
  pin         = "env://STRONGROOM_HSM_PIN"
  key_label   = "kek"
}
)";

TEST(Config, ParsesVaultStyleServerConfig) {
  auto c = ParseConfig(kGood);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->api_addr, "https://10.0.0.1:8200");
  EXPECT_EQ(c->workers, 4);
  EXPECT_EQ(c->listener.address, "0.0.0.0:8200");
  EXPECT_FALSE(c->listener.tls_disable);
  EXPECT_EQ(c->listener.max_request_size, 1048576u);
  EXPECT_EQ(c->listener.http_idle_timeout_s, 120);
  EXPECT_EQ(c->storage.path, "/var/lib/strongroom/data");
  EXPECT_EQ(c->seal.pin, "env://STRONGROOM_HSM_PIN");
  EXPECT_EQ(c->seal.key_label, "kek");
}

TEST(Config, ClearErrorsWithPositions) {
  auto err = [](const std::string& text) {
    return std::string(ParseConfig(text).status().message());
  };
  const std::string tail =
      "storage \"rocksdb\" { path = \"/d\" }\nseal \"pkcs11\" { lib = \"/l\" token_label = \"t\" "
      "pin = \"1\" }\n";
  EXPECT_THAT(err("listener \"tcp\" {\n tls_disable = true\n bogus = 1\n}\n" + tail),
              HasSubstr("line 3, column 2: unknown key \"bogus\" in listener \"tcp\""));
  EXPECT_THAT(err("listener \"udp\" { tls_disable = true }\n" + tail),
              HasSubstr("listener \"tcp\""));
  EXPECT_THAT(
      err("listener \"tcp\" { tls_disable = true }\nstorage \"raftish\" { path = \"/d\" }\n"),
      HasSubstr("unsupported storage type \"raftish\""));
  EXPECT_THAT(err("listener \"tcp\" { tls_disable = \"maybe\" }\n" + tail),
              HasSubstr("must be true or false"));
  EXPECT_THAT(err("listener \"tcp\" {}\n" + tail),
              HasSubstr("tls_cert_file and tls_key_label (a key in the token) or tls_key_file "
                        "are required unless tls_disable = true"));
  EXPECT_THAT(
      err("listener \"tcp\" { tls_disable = true }\nstorage \"rocksdb\" { path = \"/d\" }\n"),
      HasSubstr("seal \"pkcs11\" block is required"));
  EXPECT_THAT(err("listener \"tcp\" { tls_disable = true }\n" + tail + "colour = \"red\"\n"),
              HasSubstr("unknown key \"colour\""));
  EXPECT_THAT(err("listener \"tcp\" { tls_disable = true }\nstorage \"rocksdb\" { path = \"/d\" }\n"
                  "seal \"pkcs11\" { lib = \"/l\" token_label = \"t\" }\n"),
              HasSubstr("\"pin\" is required"));
  EXPECT_THAT(err("listener \"tcp\" { tls_disable = true max_request_size = -5 }\n" + tail),
              HasSubstr("max_request_size"));
  EXPECT_THAT(err("ui = true\nlistener \"tcp\" { tls_disable = true }\n" + tail),
              HasSubstr("no web UI"));
}

// The listener's key in the token (tls_key_label) is the alternative to tls_key_file.
TEST(Config, TlsKeyLabelKeepsTheKeyInTheToken) {
  const std::string tail =
      "storage \"rocksdb\" { path = \"/d\" }\nseal \"pkcs11\" { lib = \"/l\" token_label = \"t\" "
      "pin = \"1\" }\n";
  auto c = ParseConfig(
      "listener \"tcp\" {\n tls_cert_file = \"/c.pem\"\n tls_key_label = \"strongroom-tls\"\n}\n" +
      tail);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listener.tls_key_label, "strongroom-tls");
  EXPECT_TRUE(c->listener.tls_key_file.empty());

  auto err = [&](const std::string& listener) {
    return std::string(ParseConfig(listener + tail).status().message());
  };
  EXPECT_THAT(err("listener \"tcp\" { tls_cert_file = \"/c\" tls_key_file = \"/k\" "
                  "tls_key_label = \"strongroom-tls\" }\n"),
              HasSubstr("set either tls_key_label (a key in the token) or tls_key_file, not both"));
  EXPECT_THAT(err("listener \"tcp\" { tls_key_label = \"strongroom-tls\" }\n"),
              HasSubstr("tls_cert_file and tls_key_label"));
  // Never the audit key or a KEK: the TLS key signs whatever digest a worker sends.
  for (const char* label : {"strongroom-audit", "strongroom-kek", "strongroom-transit-kek"}) {
    EXPECT_THAT(err(std::string("listener \"tcp\" { tls_cert_file = \"/c\" tls_key_label = \"") +
                    label + "\" }\n"),
                HasSubstr("must differ from the seal's key_label and audit_key_label"))
        << label;
  }
  // Ignored with tls_disable, like tls_key_file.
  EXPECT_TRUE(
      ParseConfig("listener \"tcp\" { tls_disable = true tls_key_label = \"strongroom-audit\" }\n" +
                  tail)
          .ok());
}

}  // namespace
}  // namespace strongroom::broker
