// Issue 23 item 7: no secret reaches an audit file or the daemon's log in clear. Known, unique
// values of every JSON type go through every engine and auth method the appliance has; then
// every audit file is searched for each of them (as sent, and in base64, base64url and hex), line
// by line and value by value, and so is the daemon's own log.
//
// What Vault's file audit device hashes, and so what must never be in clear here: every string
// (and, as Vault decodes request numbers as json.Number, every number) in request and response
// data, the client token, and tokens and accessors in auth blocks -- accessors except on a device
// with hmac_accessor=false, where auth.accessor, request.client_token_accessor and
// response.auth.accessor stay in clear (only there). Booleans, nulls and map keys stay, as in
// Vault. Vault API sections: audit devices (file: hmac_accessor), sys/audit-hash, KV v1 and v2,
// Transit (encrypt, decrypt, rewrap, hmac, verify, sign, datakey, random, hash), AppRole,
// Kubernetes auth, auth/token (create, lookup, renew, revoke, *-accessor), identity/entity,
// sys/policies/acl.
#include <gmock/gmock.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "tests/adversarial/adversarial.h"

namespace strongroom::testing {
namespace {

using json = nlohmann::json;

constexpr char kIssuer[] = "https://kubernetes.default.svc.cluster.local";

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    ADD_FAILURE() << "RAND_bytes failed";
  }
  return out;
}

std::string Hex(const std::string& in, bool upper = false) {
  static constexpr char kLower[] = "0123456789abcdef";
  static constexpr char kUpper[] = "0123456789ABCDEF";
  const char* digits = upper ? kUpper : kLower;
  std::string out;
  for (unsigned char c : in) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string Base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

std::optional<std::string> Unbase64(const std::string& in) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  size_t len = static_cast<size_t>(n);
  for (size_t i = in.size(); i > 0 && in[i - 1] == '='; --i) --len;
  out.resize(len);
  return out;
}

// `count` random decimal digits, the first not 0.
std::string Digits(size_t count) {
  std::string out;
  for (unsigned char c : RandomBytes(count)) out.push_back(static_cast<char>('0' + c % 10));
  if (!out.empty() && out[0] == '0') out[0] = '7';
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream all;
  all << in.rdbuf();
  return all.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// One known value and the texts it must never appear as.
struct Secret {
  std::string label;
  std::vector<std::string> forms;  // as sent or answered, and its encodings
  // What crossed the API (as a JSON string, or a number's text): its sys/audit-hash digest must
  // be in the log, which shows the value really went through an audited request.
  std::string wire;
  bool accessor = false;         // a token accessor: in clear where hmac_accessor=false allows
  std::optional<double> number;  // a JSON number: also compared by value
};

class AuditConfidentialityTest : public AdversarialTest {
 protected:
  void SetUp() override {
    AdversarialTest::SetUp();
    hashed_log_ = d_.dir() + "/audit-hashed.log";
    clear_log_ = d_.dir() + "/audit-clear.log";
    Expect(d_.Root("PUT", "/v1/sys/audit/hashed",
                   {{"type", "file"}, {"options", {{"file_path", hashed_log_}}}}),
           204);
    Expect(d_.Root("PUT", "/v1/sys/audit/clear",
                   {{"type", "file"},
                    {"options", {{"file_path", clear_log_}, {"hmac_accessor", "false"}}}}),
           204);
    Expect(d_.Root("POST", "/v1/sys/mounts/kv1", {{"type", "kv"}, {"options", {{"version", "1"}}}}),
           204);
    Expect(d_.Root("POST", "/v1/sys/mounts/transit", {{"type", "transit"}}), 204);
    Expect(d_.Root("POST", "/v1/sys/auth/approle", {{"type", "approle"}}), 204);
    Expect(d_.Root("POST", "/v1/sys/auth/kubernetes", {{"type", "kubernetes"}}), 204);
  }

  // The response's JSON body after checking its status (null for an empty body).
  json Expect(const HttpResponse& r, int status) {
    EXPECT_EQ(r.status, status) << r.body;
    if (r.body.empty()) return json();
    return json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  }

  HttpResponse Call(const std::string& method, const std::string& path, const std::string& body,
                    std::vector<std::pair<std::string, std::string>> headers) {
    return d_.Call(method, path, body, std::move(headers));
  }
  HttpResponse RootRaw(const std::string& method, const std::string& path,
                       const std::string& body) {
    return d_.Call(method, path, body, {{"X-Vault-Token", d_.root_token()}});
  }

  // A new unique text secret: "<label>-<24 hex>", with its encodings. `whole`: it crosses the
  // API as a JSON string of its own (not as part of a larger one).
  std::string Text(const std::string& label, bool whole = true) {
    const std::string value = label + "-" + Hex(RandomBytes(12));
    AddText(label, value, false, whole);
    return value;
  }
  // `value` went over the API as is.
  void AddText(const std::string& label, const std::string& value, bool accessor = false,
               bool whole = true) {
    Add({label,
         {value, Base64(value), Base64Url(value), Hex(value), Hex(value, true)},
         whole ? value : "",
         accessor,
         std::nullopt});
  }
  // A value the API carries base64-encoded (Transit plaintext and outputs, data keys, random
  // bytes): the text it was made from (if any), the base64 that crossed the API, and the decoded
  // bytes in other encodings.
  void AddBase64(const std::string& label, const std::string& b64) {
    auto raw = Unbase64(b64);
    EXPECT_TRUE(raw.has_value()) << label << ": not base64: " << b64;
    Secret s{label, {b64}, b64, false, std::nullopt};
    if (raw) {
      s.forms.push_back(Base64Url(*raw));
      s.forms.push_back(Hex(*raw));
      s.forms.push_back(Hex(*raw, true));
    }
    Add(std::move(s));
  }
  // A Transit plaintext: a unique text whose base64 is what the client sends.
  std::string Plaintext(const std::string& label) {
    const std::string value = label + "-" + Hex(RandomBytes(12));
    AddBase64(label, Base64(value));
    secrets_.back().forms.push_back(value);
    return Base64(value);
  }
  // A number written as `literal` in a JSON body.
  std::string Number(const std::string& label, const std::string& literal) {
    Add({label, {literal}, literal, false, std::stod(literal)});
    return literal;
  }
  void Add(Secret s) {
    std::erase_if(s.forms, [](const std::string& f) { return f.size() < 12; });
    secrets_.push_back(std::move(s));
  }

  // Every value of `v` (keys too) that holds a secret: "<label> at <json pointer>".
  void Walk(const json& v, const std::string& ptr, bool clear_accessors,
            std::vector<std::string>* found, std::vector<std::string>* accessors_seen) const {
    const auto check_text = [&](const std::string& text, const std::string& where) {
      for (const auto& s : secrets_) {
        for (const auto& f : s.forms) {
          if (text.find(f) == std::string::npos) continue;
          const bool allowed =
              s.accessor && clear_accessors && text == f &&
              (where == "/auth/accessor" || where == "/request/client_token_accessor" ||
               where == "/response/auth/accessor" || where == "/response/wrap_info/accessor");
          if (allowed) {
            accessors_seen->push_back(s.label);
          } else {
            found->push_back(s.label + " at " + where);
          }
          break;
        }
      }
    };
    if (v.is_object()) {
      for (const auto& [k, item] : v.items()) {
        check_text(k, ptr + "/" + k + " (key)");
        Walk(item, ptr + "/" + k, clear_accessors, found, accessors_seen);
      }
    } else if (v.is_array()) {
      for (size_t i = 0; i < v.size(); ++i) {
        Walk(v[i], ptr + "/" + std::to_string(i), clear_accessors, found, accessors_seen);
      }
    } else if (v.is_string()) {
      check_text(v.get<std::string>(), ptr);
    } else if (v.is_number()) {
      const double x = v.get<double>();
      for (const auto& s : secrets_) {
        if (!s.number) continue;
        const bool same = v.is_number_float()
                              ? std::fabs(x - *s.number) <= std::fabs(*s.number) * 1e-12
                              : v.dump() == s.wire;
        if (same) found->push_back(s.label + " (number) at " + ptr);
      }
    }
  }

  // The secrets found in clear in an audit file, one line each: "<file>:<line>: <what>".
  std::vector<std::string> LeaksInAuditFile(const std::string& path, bool clear_accessors,
                                            std::vector<std::string>* accessors_seen) const {
    std::vector<std::string> leaks;
    const std::vector<std::string> lines = Lines(ReadAll(path));
    EXPECT_GT(lines.size(), 100u) << path;
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::string where = path.substr(path.rfind('/') + 1) + ":" + std::to_string(i + 1);
      json j = json::parse(lines[i], nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) {
        leaks.push_back(where + ": not JSON");
        continue;
      }
      std::vector<std::string> found;
      Walk(j, "", clear_accessors, &found, accessors_seen);
      // And the raw text, whatever the walk could not see (a value split by escaping).
      for (const auto& s : secrets_) {
        if (s.accessor && clear_accessors) continue;  // the walk decides where they may be
        for (const auto& f : s.forms) {
          if (lines[i].find(f) != std::string::npos) {
            found.push_back(s.label + " in the line's text");
            break;
          }
        }
      }
      std::sort(found.begin(), found.end());
      found.erase(std::unique(found.begin(), found.end()), found.end());
      std::string context;
      if (j.is_object() && j.contains("request") && j["request"].is_object()) {
        context = " (" + j.value("type", std::string()) + " " +
                  j["request"].value("path", std::string()) + ")";
      }
      for (const auto& f : found) leaks.push_back(where + context + ": " + f);
    }
    return leaks;
  }

  std::string hashed_log_, clear_log_;
  std::vector<Secret> secrets_;
};

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += "  " + s + "\n";
  return out;
}

TEST_F(AuditConfidentialityTest, NoSecretInClearInAnyAuditFileOrTheDaemonLog) {
  const std::string root = d_.root_token();
  AddText("root-token", root);

  // --- Policies (a secret in a comment), read back in both API forms.
  const std::string policy_note = Text("policy-comment", /*whole=*/false);
  Expect(d_.Root("PUT", "/v1/sys/policies/acl/reader",
                 {{"policy", "# contact: " + policy_note +
                                 "\npath \"secret/data/*\" { capabilities = [\"read\"] }\n"}}),
         204);
  EXPECT_THAT(Expect(d_.Root("GET", "/v1/sys/policies/acl/reader"), 200)["data"]["policy"].dump(),
              ::testing::HasSubstr(policy_note));
  Expect(d_.Root("GET", "/v1/sys/policy/reader"), 200);

  // --- KV v2: every JSON type, nested objects and arrays, sent as literal JSON text.
  const std::string kv_password = Text("kv2-password");
  const std::string kv_deep = Text("kv2-nested");
  const std::string kv_list = Text("kv2-array-item");
  const std::string kv_list_obj = Text("kv2-array-object");
  const std::string kv_list_list = Text("kv2-array-array");
  const std::string kv_int = Number("kv2-int64", "7" + Digits(15));
  const std::string kv_negative = Number("kv2-negative", "-8" + Digits(15));
  const std::string kv_uint = Number("kv2-uint64", "11" + Digits(18));  // above 2^63
  const std::string kv_nested_int = Number("kv2-nested-int", "6" + Digits(14));
  const std::string kv_list_int = Number("kv2-array-int", "5" + Digits(14));
  const std::string kv_huge = Number("kv2-beyond-uint64", "9" + Digits(28));
  const std::string kv_float = Number("kv2-float", "4" + Digits(5) + "." + Digits(8) + "3");
  const std::string kv_exp = Number("kv2-exponent", "3." + Digits(12) + "e23");
  const std::string kv_body =
      R"({"options":{"cas":0},"data":{"password":")" + kv_password + R"(","pin":)" + kv_int +
      R"(,"negative":)" + kv_negative + R"(,"big":)" + kv_uint + R"(,"huge":)" + kv_huge +
      R"(,"ratio":)" + kv_float + R"(,"avogadro":)" + kv_exp +
      R"(,"flag":true,"nothing":null,"nested":{"deep":{"api_key":")" + kv_deep + R"(","code":)" +
      kv_nested_int + R"(}},"list":[")" + kv_list + R"(",)" + kv_list_int + R"(,{"item":")" +
      kv_list_obj + R"("},[")" + kv_list_list + R"("]]}})";
  Expect(RootRaw("POST", "/v1/secret/data/app", kv_body), 200);
  json kv = Expect(d_.Root("GET", "/v1/secret/data/app"), 200);
  EXPECT_EQ(kv["data"]["data"]["password"], kv_password);
  EXPECT_EQ(kv["data"]["data"]["pin"].dump(), kv_int);
  const std::string patched = Text("kv2-patch");
  Expect(Call("PATCH", "/v1/secret/data/app", R"({"data":{"patched":")" + patched + R"("}})",
              {{"X-Vault-Token", root}, {"Content-Type", "application/merge-patch+json"}}),
         200);
  const std::string owner = Text("kv2-custom-metadata");
  Expect(d_.Root("POST", "/v1/secret/metadata/app", {{"custom_metadata", {{"owner", owner}}}}),
         204);
  Expect(d_.Root("GET", "/v1/secret/metadata/app"), 200);
  Expect(d_.Root("GET", "/v1/secret/subkeys/app"), 200);
  const std::string query = Text("kv2-query-parameter");
  (void)d_.Root("GET", "/v1/secret/data/app?probe=" + query);  // answered or refused: audited

  // --- KV v1.
  const std::string v1_password = Text("kv1-password");
  const std::string v1_nested = Text("kv1-nested");
  const std::string v1_int = Number("kv1-int", "2" + Digits(15));
  Expect(RootRaw("POST", "/v1/kv1/app",
                 R"({"password":")" + v1_password + R"(","pin":)" + v1_int +
                     R"(,"nested":{"list":[")" + v1_nested + R"("]}})"),
         204);
  EXPECT_EQ(Expect(d_.Root("GET", "/v1/kv1/app"), 200)["data"]["password"], v1_password);

  // --- Transit: plaintext in, ciphertext, HMAC, signature, data keys, random bytes and digests
  // out.
  Expect(d_.Root("POST", "/v1/transit/keys/aes"), 200);
  Expect(d_.Root("POST", "/v1/transit/keys/ec", {{"type", "ecdsa-p256"}}), 200);
  const std::string pt = Plaintext("transit-plaintext");
  json r = Expect(d_.Root("POST", "/v1/transit/encrypt/aes", {{"plaintext", pt}}), 200);
  const std::string ct = r["data"]["ciphertext"];
  AddText("transit-ciphertext", ct);
  r = Expect(d_.Root("POST", "/v1/transit/decrypt/aes", {{"ciphertext", ct}}), 200);
  EXPECT_EQ(r["data"]["plaintext"], pt);
  r = Expect(d_.Root("POST", "/v1/transit/encrypt/aes",
                     {{"batch_input",
                       {{{"plaintext", Plaintext("transit-batch-1")}},
                        {{"plaintext", Plaintext("transit-batch-2")}}}}}),
             200);
  for (const auto& item : r["data"]["batch_results"]) {
    AddText("transit-batch-ciphertext", item["ciphertext"]);
  }
  r = Expect(d_.Root("POST", "/v1/transit/decrypt/aes", {{"batch_input", {{{"ciphertext", ct}}}}}),
             200);
  EXPECT_EQ(r["data"]["batch_results"][0]["plaintext"], pt);
  r = Expect(d_.Root("POST", "/v1/transit/rewrap/aes", {{"ciphertext", ct}}), 200);
  AddText("transit-rewrapped", r["data"]["ciphertext"]);
  const std::string hmac_input = Plaintext("transit-hmac-input");
  r = Expect(d_.Root("POST", "/v1/transit/hmac/aes", {{"input", hmac_input}}), 200);
  const std::string mac = r["data"]["hmac"];
  AddText("transit-hmac", mac);
  r = Expect(d_.Root("POST", "/v1/transit/verify/aes", {{"input", hmac_input}, {"hmac", mac}}),
             200);
  EXPECT_EQ(r["data"]["valid"], true);
  const std::string sign_input = Plaintext("transit-sign-input");
  r = Expect(d_.Root("POST", "/v1/transit/sign/ec", {{"input", sign_input}}), 200);
  const std::string signature = r["data"]["signature"];
  AddText("transit-signature", signature);
  r = Expect(
      d_.Root("POST", "/v1/transit/verify/ec", {{"input", sign_input}, {"signature", signature}}),
      200);
  EXPECT_EQ(r["data"]["valid"], true);
  r = Expect(d_.Root("POST", "/v1/transit/datakey/plaintext/aes"), 200);
  const std::string data_key = r["data"]["plaintext"];
  AddBase64("transit-datakey-plaintext", data_key);
  const std::string dk_ct = r["data"]["ciphertext"];
  AddText("transit-datakey-ciphertext", dk_ct);
  r = Expect(d_.Root("POST", "/v1/transit/decrypt/aes", {{"ciphertext", dk_ct}}), 200);
  EXPECT_EQ(r["data"]["plaintext"], data_key);
  r = Expect(d_.Root("POST", "/v1/transit/datakey/wrapped/aes"), 200);
  AddText("transit-datakey-wrapped", r["data"]["ciphertext"]);
  r = Expect(d_.Root("POST", "/v1/transit/random/32"), 200);
  AddBase64("transit-random", r["data"]["random_bytes"]);
  r = Expect(d_.Root("POST", "/v1/transit/hash", {{"input", Plaintext("transit-hash-input")}}),
             200);
  AddText("transit-hash-sum", r["data"]["sum"]);

  // --- AppRole: a chosen role_id, a generated secret_id, its accessor, logins good and bad.
  const std::string role_id = Text("approle-role-id");
  Expect(d_.Root("POST", "/v1/auth/approle/role/app",
                 {{"role_id", role_id}, {"token_policies", "reader"}}),
         204);
  EXPECT_EQ(Expect(d_.Root("GET", "/v1/auth/approle/role/app/role-id"), 200)["data"]["role_id"],
            role_id);
  r = Expect(d_.Root("POST", "/v1/auth/approle/role/app/secret-id"), 200);
  const std::string secret_id = r["data"]["secret_id"];
  const std::string secret_id_accessor = r["data"]["secret_id_accessor"];
  AddText("approle-secret-id", secret_id);
  AddText("approle-secret-id-accessor", secret_id_accessor);
  Expect(d_.Root("POST", "/v1/auth/approle/role/app/secret-id/lookup", {{"secret_id", secret_id}}),
         200);
  Expect(d_.Root("POST", "/v1/auth/approle/role/app/secret-id-accessor/lookup",
                 {{"secret_id_accessor", secret_id_accessor}}),
         200);
  r = Expect(d_.Call("POST", "/v1/auth/approle/login",
                     json({{"role_id", role_id}, {"secret_id", secret_id}}).dump()),
             200);
  const std::string approle_token = r["auth"]["client_token"];
  AddText("approle-client-token", approle_token);
  AddText("approle-token-accessor", r["auth"]["accessor"], /*accessor=*/true);
  Expect(As(approle_token, "GET", "/v1/auth/token/lookup-self"), 200);
  Expect(
      d_.Call("POST", "/v1/auth/approle/login",
              json({{"role_id", role_id}, {"secret_id", Text("approle-wrong-secret-id")}}).dump()),
      400);
  Expect(d_.Call("POST", "/v1/auth/approle/login",
                 json({{"role_id", Text("approle-unknown-role-id")},
                       {"secret_id", Text("approle-unknown-secret-id")}})
                     .dump()),
         400);

  // --- Kubernetes: a TokenReview configuration with a reviewer JWT, then local-only validation
  // (pem_keys) and logins with a good and a foreign JWT.
  const std::string reviewer = Text("kubernetes-reviewer-jwt");
  Expect(d_.Root("POST", "/v1/auth/kubernetes/config",
                 {{"kubernetes_host", "https://127.0.0.1:1"}, {"token_reviewer_jwt", reviewer}}),
         204);
  EXPECT_EQ(Expect(d_.Root("GET", "/v1/auth/kubernetes/config"), 200)["data"].dump().find(reviewer),
            std::string::npos);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)), EVP_PKEY_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> stranger(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)), EVP_PKEY_free);
  ASSERT_NE(key, nullptr);
  ASSERT_NE(stranger, nullptr);
  Expect(d_.Root("POST", "/v1/auth/kubernetes/config",
                 {{"pem_keys", {PublicKeyPem(key.get())}}, {"issuer", kIssuer}}),
         204);
  Expect(d_.Root("POST", "/v1/auth/kubernetes/role/web",
                 {{"bound_service_account_names", "web"},
                  {"bound_service_account_namespaces", "apps"},
                  {"token_policies", "reader"},
                  {"audience", "vault"}}),
         204);
  const std::string jwt = ServiceAccountJwt(key.get(), kIssuer, "vault");
  AddText("kubernetes-jwt", jwt);
  AddText("kubernetes-jwt-signature", jwt.substr(jwt.rfind('.') + 1), false, /*whole=*/false);
  r = Expect(
      d_.Call("POST", "/v1/auth/kubernetes/login", json({{"role", "web"}, {"jwt", jwt}}).dump()),
      200);
  AddText("kubernetes-client-token", r["auth"]["client_token"]);
  AddText("kubernetes-token-accessor", r["auth"]["accessor"], /*accessor=*/true);
  const std::string foreign = ServiceAccountJwt(stranger.get(), kIssuer, "vault");
  AddText("kubernetes-foreign-jwt", foreign);
  Expect(d_.Call("POST", "/v1/auth/kubernetes/login",
                 json({{"role", "web"}, {"jwt", foreign}}).dump()),
         403);
  const std::string malformed =
      Text("kubernetes-malformed-jwt", /*whole=*/false) + "." + Hex(RandomBytes(12));
  AddText("kubernetes-malformed-jwt-whole", malformed);
  Expect(d_.Call("POST", "/v1/auth/kubernetes/login",
                 json({{"role", "web"}, {"jwt", malformed}}).dump()),
         400);

  // --- Tokens: created (one with a chosen id), then used in headers and named in bodies.
  const auto create = [&](const std::string& label, json body) {
    json c = Expect(d_.Root("POST", "/v1/auth/token/create", body), 200);
    const std::string token = c["auth"]["client_token"];
    const std::string accessor = c["auth"]["accessor"];
    AddText(label + "-token", token);
    AddText(label + "-accessor", accessor, /*accessor=*/true);
    return std::make_pair(token, accessor);
  };
  const auto [t1, a1] = create("t1", {{"policies", {"reader"}}});
  const std::string chosen = Text("token-chosen-id");
  const auto [t_chosen, a_chosen] = create("chosen", {{"id", chosen}, {"policies", {"reader"}}});
  EXPECT_EQ(t_chosen, chosen);
  Expect(As(t1, "GET", "/v1/auth/token/lookup-self"), 200);
  Expect(Call("GET", "/v1/secret/data/app", "", {{"Authorization", "Bearer " + t1}}), 200);
  Expect(Call("GET", "/v1/auth/token/lookup-self", "", {{"Authorization", "Bearer " + t_chosen}}),
         200);
  Expect(d_.Root("POST", "/v1/auth/token/lookup", {{"token", t1}}), 200);
  Expect(d_.Root("POST", "/v1/auth/token/renew", {{"token", t1}}), 200);
  Expect(d_.Root("POST", "/v1/auth/token/lookup-accessor", {{"accessor", a1}}), 200);
  Expect(d_.Root("POST", "/v1/auth/token/renew-accessor", {{"accessor", a1}}), 200);
  const auto [t2, a2] = create("t2", json::object());
  Expect(d_.Root("POST", "/v1/auth/token/revoke", {{"token", t2}}), 204);
  const auto [t3, a3] = create("t3", json::object());
  Expect(d_.Root("POST", "/v1/auth/token/revoke-accessor", {{"accessor", a3}}), 204);
  const auto [t4, a4] = create("t4", json::object());
  Expect(d_.Root("POST", "/v1/auth/token/revoke-orphan", {{"token", t4}}), 204);
  // Refused: a token that is no token, in either header; a token asking about another.
  Expect(As(Text("invalid-vault-token"), "GET", "/v1/secret/data/app"), 403);
  Expect(Call("GET", "/v1/secret/data/app", "",
              {{"Authorization", "Bearer " + Text("invalid-bearer-token")}}),
         403);
  const auto [t5, a5] = create("t5", json::object());
  Expect(As(t1, "POST", "/v1/auth/token/lookup", {{"token", t5}}), 403);
  // The path forms Vault removed (a token or accessor in the path) are not served; an old client
  // that still sends them must not put its token in the log either.
  for (const std::string& p :
       {"auth/token/lookup/" + t5, "auth/token/renew/" + t5, "auth/token/revoke/" + t5,
        "auth/token/revoke-orphan/" + t5, "auth/token/lookup-accessor/" + a5,
        "auth/token/renew-accessor/" + a5, "auth/token/revoke-accessor/" + a5,
        "auth/token/LOOKUP/" + t5, "AUTH/TOKEN/Revoke-Accessor/" + a5}) {
    for (const char* method : {"GET", "POST"}) {
      const HttpResponse refused = d_.Root(method, "/v1/" + p);
      EXPECT_GE(refused.status, 400) << method << " " << p << ": " << refused.body;
      EXPECT_LT(refused.status, 500) << method << " " << p << ": " << refused.body;
    }
  }
  Expect(As(t1, "POST", "/v1/auth/token/lookup/" + t5), 403);
  Expect(d_.Root("POST", "/v1/auth/token/lookup", {{"token", t5}}), 200);  // t5 still lives

  // --- Identity: entity metadata.
  const std::string entity_meta = Text("entity-metadata");
  r = Expect(d_.Root("POST", "/v1/identity/entity",
                     {{"name", "conf-entity"}, {"metadata", {{"owner", entity_meta}}}}),
             200);
  Expect(d_.Root("GET", "/v1/identity/entity/id/" + r["data"]["id"].get<std::string>()), 200);

  // --- Response wrapping and the cubbyhole: the wrapped secret, the wrapping token and its
  // accessor, data wrapped by sys/wrapping/wrap and a cubbyhole value are all digests in the log.
  HttpResponse wrapped = Call("GET", "/v1/secret/data/app", "",
                              {{"X-Vault-Token", root}, {"X-Vault-Wrap-TTL", "60s"}});
  EXPECT_EQ(wrapped.status, 200) << wrapped.body;
  EXPECT_EQ(wrapped.body.find(kv_password), std::string::npos);
  r = json::parse(wrapped.body, nullptr, false);
  const std::string wrapping_token = r["wrap_info"]["token"];
  AddText("wrapping-token", wrapping_token);
  AddText("wrapping-accessor", r["wrap_info"]["accessor"], /*accessor=*/true);
  r = Expect(d_.Root("POST", "/v1/sys/wrapping/unwrap", {{"token", wrapping_token}}), 200);
  EXPECT_EQ(r["data"]["data"]["password"], kv_password);
  const std::string wrap_input = Text("wrapping-wrap-input");
  wrapped = Call("POST", "/v1/sys/wrapping/wrap", json({{"secret", wrap_input}}).dump(),
                 {{"X-Vault-Token", root}, {"X-Vault-Wrap-TTL", "60s"}});
  EXPECT_EQ(wrapped.status, 200) << wrapped.body;
  r = json::parse(wrapped.body, nullptr, false);
  AddText("wrapping-token-2", r["wrap_info"]["token"]);
  AddText("wrapping-accessor-2", r["wrap_info"]["accessor"], /*accessor=*/true);
  const std::string cubby = Text("cubbyhole-input");
  Expect(d_.Root("POST", "/v1/cubbyhole/note", {{"note", cubby}}), 204);
  r = Expect(d_.Root("GET", "/v1/cubbyhole/note"), 200);
  EXPECT_EQ(r["data"]["note"], cubby);

  // --- Every value that crossed the API is in the hashed log as its digest (so each really
  // went through an audited request), taken before sys/audit-hash itself logs the digests.
  const std::string before_hash_calls = ReadAll(hashed_log_);
  std::map<std::string, std::string> digests;  // by label
  std::vector<std::string> missing;
  for (const auto& s : secrets_) {
    if (s.wire.empty()) continue;  // part of a larger value
    // A number with an exponent, or an integer beyond uint64, is parsed as a double and hashed
    // in its shortest form ("3.1e+23"), which is not the text as sent; Vault hashes the text as
    // sent (json.Number). Either way it is never in clear, which the search below checks.
    if (s.number && (s.wire.find_first_of("eE") != std::string::npos || s.wire.size() > 20)) {
      continue;
    }
    json h = Expect(d_.Root("PUT", "/v1/sys/audit-hash/hashed", {{"input", s.wire}}), 200);
    const std::string digest = h["data"]["hash"].get<std::string>();
    if (before_hash_calls.find(digest) == std::string::npos) missing.push_back(s.label);
    digests[s.label] = digest;
  }
  EXPECT_TRUE(missing.empty()) << "never went through an audited request:\n" << Join(missing);
  // A credential in a path is recorded as its digest, so an auditor can still find the request;
  // so is the error text that repeats the path (no route for the upper-case form).
  const auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = before_hash_calls.find(needle); at != std::string::npos;
         at = before_hash_calls.find(needle, at + 1)) {
      ++n;
    }
    return n;
  };
  // GET and POST as root (request and response records each), and t1's refused request.
  EXPECT_EQ(count(R"("path":"auth/token/lookup/)" + digests["t5-token"] + R"(")"), 5u);
  EXPECT_EQ(count(R"("path":"auth/token/revoke-accessor/)" + digests["t5-accessor"] + R"(")"), 4u);
  EXPECT_EQ(count(R"(route \"AUTH/TOKEN/Revoke-Accessor/)" + digests["t5-accessor"]), 2u);

  ASSERT_EQ(d_.Stop(), 0);

  // --- The search.
  std::vector<std::string> accessors_in_clear;
  std::vector<std::string> leaks = LeaksInAuditFile(hashed_log_, false, &accessors_in_clear);
  EXPECT_TRUE(accessors_in_clear.empty());
  const std::vector<std::string> clear_leaks =
      LeaksInAuditFile(clear_log_, true, &accessors_in_clear);
  leaks.insert(leaks.end(), clear_leaks.begin(), clear_leaks.end());
  EXPECT_TRUE(leaks.empty()) << leaks.size() << " secrets in clear in the audit files:\n"
                             << Join(leaks);
  // hmac_accessor=false does show every token accessor, and only where Vault shows it.
  for (const auto& s : secrets_) {
    if (!s.accessor) continue;
    EXPECT_NE(std::find(accessors_in_clear.begin(), accessors_in_clear.end(), s.label),
              accessors_in_clear.end())
        << s.label << " never in clear on the hmac_accessor=false device";
  }

  std::vector<std::string> in_daemon_log;
  for (const auto& line : Lines(d_.Log())) {
    for (const auto& s : secrets_) {
      for (const auto& f : s.forms) {
        if (line.find(f) != std::string::npos) {
          in_daemon_log.push_back(s.label + ": " + line);
          break;
        }
      }
    }
  }
  EXPECT_TRUE(in_daemon_log.empty()) << "secrets in the daemon's log:\n" << Join(in_daemon_log);

  // As in Vault, booleans and nulls stay (and so does the shape of the data).
  bool saw_write = false;
  for (const auto& line : Lines(before_hash_calls)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("type", "") != "request" ||
        j["request"].value("path", "") != "secret/data/app" ||
        j["request"].value("operation", "") != "create") {
      continue;
    }
    const json& data = j["request"]["data"]["data"];
    EXPECT_EQ(data["flag"], true) << line;
    EXPECT_TRUE(data["nothing"].is_null()) << line;
    EXPECT_TRUE(data["list"][3].is_array()) << line;
    saw_write = true;
  }
  EXPECT_TRUE(saw_write) << "no request record of the KV v2 write";
}

}  // namespace
}  // namespace strongroom::testing
