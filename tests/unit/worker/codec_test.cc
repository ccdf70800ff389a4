// The worker's HTTP <-> broker translation (Vault API §1.1, §1.2, §1.4, §1.5).
#include "appliance/worker/codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"

namespace strongroom::worker {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

const core::JsonLimits kLimits;  // the defaults

HttpIn In(std::string method, std::string target, std::string body = "") {
  HttpIn in;
  in.method = std::move(method);
  in.target = std::move(target);
  in.body = std::move(body);
  return in;
}

TEST(Codec, MapsMethodsToOperations) {
  auto get = std::get<ipc::Request>(DecodeRequest(In("GET", "/v1/secret/data/a"), kLimits));
  EXPECT_EQ(get.operation(), ipc::OP_READ);
  EXPECT_EQ(get.path(), "secret/data/a");
  auto list = std::get<ipc::Request>(DecodeRequest(In("LIST", "/v1/secret/metadata"), kLimits));
  EXPECT_EQ(list.operation(), ipc::OP_LIST);
  EXPECT_EQ(list.path(), "secret/metadata/");
  auto qlist =
      std::get<ipc::Request>(DecodeRequest(In("GET", "/v1/secret/metadata/?list=true"), kLimits));
  EXPECT_EQ(qlist.operation(), ipc::OP_LIST);
  EXPECT_EQ(json::parse(qlist.data_json()), json::object());
  EXPECT_EQ(std::get<ipc::Request>(DecodeRequest(In("PUT", "/v1/x", "{}"), kLimits)).operation(),
            ipc::OP_UPDATE);
  EXPECT_EQ(std::get<ipc::Request>(DecodeRequest(In("POST", "/v1/x", ""), kLimits)).operation(),
            ipc::OP_UPDATE);
  EXPECT_EQ(std::get<ipc::Request>(DecodeRequest(In("DELETE", "/v1/x"), kLimits)).operation(),
            ipc::OP_DELETE);
  EXPECT_EQ(std::get<HttpOut>(DecodeRequest(In("TRACE", "/v1/x"), kLimits)).status, 405u);
  EXPECT_EQ(std::get<HttpOut>(DecodeRequest(In("GET", "/v2/x"), kLimits)).status, 404u);
  EXPECT_EQ(std::get<HttpOut>(DecodeRequest(In("GET", "/v1/x?list=maybe"), kLimits)).status, 400u);
}

TEST(Codec, QueryParametersBecomeData) {
  auto r = std::get<ipc::Request>(
      DecodeRequest(In("GET", "/v1/sys/health?standbyok=true&a=1&a=2&sp=x+y%21"), kLimits));
  json d = json::parse(r.data_json());
  EXPECT_EQ(d["standbyok"], "true");
  EXPECT_EQ(d["a"], json::array({"1", "2"}));
  EXPECT_EQ(d["sp"], "x y!");
  EXPECT_EQ(std::get<HttpOut>(DecodeRequest(In("GET", "/v1/x?a=%zz"), kLimits)).status, 400u);
}

TEST(Codec, BodyMustBeAJsonObjectWithinDepth) {
  EXPECT_EQ(std::get<HttpOut>(DecodeRequest(In("POST", "/v1/x", "{bad"), kLimits)).status, 400u);
  EXPECT_EQ(std::get<HttpOut>(DecodeRequest(In("POST", "/v1/x", "[1]"), kLimits)).status, 400u);
  std::string deep = "{\"a\":" + std::string(70, '[') + std::string(70, ']') + "}";
  HttpOut too_deep = std::get<HttpOut>(DecodeRequest(In("POST", "/v1/x", deep), kLimits));
  EXPECT_EQ(too_deep.status, 500u);  // Vault's status and text for its JSON limits
  EXPECT_EQ(json::parse(too_deep.body)["errors"][0], "JSON input exceeds allowed nesting depth");
  auto ok = std::get<ipc::Request>(
      DecodeRequest(In("POST", "/v1/x", R"( {"k": [1, {"n": null}]} )"), kLimits));
  EXPECT_EQ(json::parse(ok.data_json())["k"][1]["n"], nullptr);
  EXPECT_TRUE(ok.has_data());
}

// A body over a limit is answered before it is parsed: Vault's status (500) for its limits,
// OpenBao's (400) for the estimated memory and the number of strings; the same for PATCH.
TEST(Codec, BodyOverAJsonLimitIsRefusedBeforeParsing) {
  core::JsonLimits small;
  small.max_array_elements = 2;
  small.max_strings = 3;
  HttpOut array = std::get<HttpOut>(DecodeRequest(In("PUT", "/v1/x", R"({"a":[1,2,3]})"), small));
  EXPECT_EQ(array.status, 500u);
  EXPECT_EQ(json::parse(array.body)["errors"][0], "JSON array exceeds allowed element count");
  HttpIn patch = In("PATCH", "/v1/x", R"({"a":"b","c":"d"})");
  patch.content_type = "application/merge-patch+json";
  HttpOut strings = std::get<HttpOut>(DecodeRequest(patch, small));
  EXPECT_EQ(strings.status, 400u);
  EXPECT_EQ(json::parse(strings.body)["errors"][0],
            "refused JSON input due to high complexity: exceeded maximum number of strings");
  // Within them the body is what was sent; a malformed one still gets the parser's error.
  auto ok = std::get<ipc::Request>(DecodeRequest(In("PUT", "/v1/x", R"({"a":[1,2]})"), small));
  EXPECT_EQ(json::parse(ok.data_json()), json::parse(R"({"a":[1,2]})"));
  HttpOut bad = std::get<HttpOut>(DecodeRequest(In("PUT", "/v1/x", R"({"a":[1,2)"), small));
  EXPECT_EQ(bad.status, 400u);
  EXPECT_THAT(bad.body, HasSubstr("failed to parse JSON input"));
}

TEST(Codec, PatchNeedsMergePatchContentType) {
  auto bad = std::get<HttpOut>(DecodeRequest(In("PATCH", "/v1/x", "{}"), kLimits));
  EXPECT_EQ(bad.status, 415u);
  EXPECT_THAT(bad.body, HasSubstr("PATCH requires Content-Type of application/merge-patch+json"));
  HttpIn in = In("PATCH", "/v1/x", "{}");
  in.content_type = "application/merge-patch+json; charset=utf-8";
  EXPECT_EQ(std::get<ipc::Request>(DecodeRequest(in, kLimits)).operation(), ipc::OP_PATCH);
}

TEST(Codec, TokenFromHeaderOrBearer) {
  HttpIn in = In("GET", "/v1/x");
  in.authorization = "Bearer  hvs.abc ";
  EXPECT_EQ(std::get<ipc::Request>(DecodeRequest(in, kLimits)).token(), "hvs.abc");
  in.vault_token = "hvs.first";
  EXPECT_EQ(std::get<ipc::Request>(DecodeRequest(in, kLimits)).token(), "hvs.first");
  in.vault_token.clear();
  in.authorization = "Basic Zm9v";
  EXPECT_EQ(std::get<ipc::Request>(DecodeRequest(in, kLimits)).token(), "");
}

TEST(Codec, EncodesTheVaultEnvelope) {
  ipc::Response r;
  r.set_kind(ipc::Response::LOGICAL);
  r.set_request_id("rid");
  r.set_data_json(R"({"a":1})");
  r.set_mount_type("kv");
  json j = json::parse(EncodeResponse(r).body);
  for (const char* k : {"request_id", "lease_id", "renewable", "lease_duration", "data",
                        "wrap_info", "warnings", "auth", "mount_type"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_EQ(j["data"]["a"], 1);
  EXPECT_FALSE(j.contains("a"));
  r.set_inject_data(true);
  EXPECT_EQ(json::parse(EncodeResponse(r).body)["a"], 1);
}

// The envelope is written around the broker's JSON without parsing it (issue 22): byte for
// byte what a parse and re-serialisation gave.
TEST(Codec, EnvelopeBytesAreThoseOfTheBrokersJson) {
  ipc::Response r;
  r.set_kind(ipc::Response::LOGICAL);
  r.set_request_id("r\"id");
  r.set_lease_id("");
  r.set_lease_duration(2764800);
  r.set_data_json(R"({"data":{"v":"x\u0001\"y","n":-1.5E1},"metadata":{"version":3}})");
  r.set_mount_type("kv");
  EXPECT_EQ(EncodeResponse(r).body,
            R"({"request_id":"r\"id","lease_id":"","renewable":false,"lease_duration":2764800,)"
            R"("data":{"data":{"v":"x\u0001\"y","n":-1.5E1},"metadata":{"version":3}},)"
            R"("wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"})"
            "\n");
  r.set_renewable(true);
  r.set_auth_json(R"({"client_token":"hvs.x"})");
  r.set_wrap_info_json(R"({"token":"w"})");
  r.add_warnings("careful\n");
  r.set_http_status(404);
  const HttpOut out = EncodeResponse(r);
  EXPECT_EQ(out.status, 404u);
  EXPECT_EQ(out.body,
            R"({"request_id":"r\"id","lease_id":"","renewable":true,"lease_duration":2764800,)"
            R"("data":{"data":{"v":"x\u0001\"y","n":-1.5E1},"metadata":{"version":3}},)"
            R"("wrap_info":{"token":"w"},"warnings":["careful\n"],"auth":{"client_token":"hvs.x"},)"
            R"("mount_type":"kv"})"
            "\n");
  const json j = json::parse(out.body);
  EXPECT_EQ(j["data"]["data"]["v"], "x\x01\"y");
  EXPECT_EQ(j["warnings"][0], "careful\n");
}

TEST(Codec, MapsErrorsAndHidesInternalDetail) {
  ipc::Response r;
  r.set_kind(ipc::Response::ERROR);
  r.set_error_code(static_cast<int>(absl::StatusCode::kInternal));
  r.add_errors("rocksdb exploded at /var/lib/x");
  auto out = EncodeResponse(r);
  EXPECT_EQ(out.status, 500u);
  EXPECT_EQ(json::parse(out.body)["errors"][0], "internal error");
  r.set_error_code(static_cast<int>(absl::StatusCode::kNotFound));
  r.clear_errors();
  out = EncodeResponse(r);
  EXPECT_EQ(out.status, 404u);
  EXPECT_EQ(json::parse(out.body), json::parse(R"({"errors":[]})"));
  EXPECT_EQ(HttpStatusFor(static_cast<int>(absl::StatusCode::kPermissionDenied)), 403u);
  EXPECT_EQ(HttpStatusFor(static_cast<int>(absl::StatusCode::kUnavailable)), 503u);
  EXPECT_EQ(HttpStatusFor(static_cast<int>(absl::StatusCode::kUnimplemented)), 405u);
  ipc::Response empty;
  empty.set_kind(ipc::Response::EMPTY);
  EXPECT_EQ(EncodeResponse(empty).status, 204u);
}

// sys/storage/raft/snapshot: a binary body goes to the broker as base64 strings, each within
// the JSON string limit; the answer's strings come back as the binary body.
TEST(Codec, SnapshotBodiesTravelAsBase64Chunks) {
  std::string body(3 * 1024 * 1024 + 7, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 131);
  core::JsonLimits limits;
  limits.max_string_length = 1000;
  auto decoded = DecodeRequest(In("POST", "/v1/sys/storage/raft/snapshot", body), kLimits);
  ASSERT_TRUE(std::holds_alternative<ipc::Request>(decoded));
  const auto& req = std::get<ipc::Request>(decoded);
  json data = json::parse(req.data_json());
  ASSERT_TRUE(data["snapshot"].is_array());
  EXPECT_GT(data["snapshot"].size(), 1u);
  for (const auto& c : data["snapshot"]) EXPECT_LE(c.get<std::string>().size(), 768u * 1024);
  EXPECT_EQ(core::CheckJsonLimits(req.data_json(), kLimits), core::JsonLimit::kNone);

  // The broker's answer to a read, turned back into the same bytes.
  ipc::Response r;
  r.set_kind(ipc::Response::RAW);
  r.set_data_json(req.data_json());
  HttpOut out = EncodeSnapshotResponse(r);
  EXPECT_EQ(out.status, 200u);
  EXPECT_EQ(out.content_type, "application/octet-stream");
  EXPECT_EQ(out.body, body);

  // Over the limit, or over this listener's JSON limits: 413, never sent on.
  auto over = DecodeRequest(
      In("POST", "/v1/sys/storage/raft/snapshot-force", std::string(kMaxSnapshotBytes + 1, 'x')),
      kLimits);
  ASSERT_TRUE(std::holds_alternative<HttpOut>(over));
  EXPECT_EQ(std::get<HttpOut>(over).status, 413u);
  EXPECT_THAT(std::get<HttpOut>(over).body, HasSubstr("over the limit of 16777216 bytes"));
  // Which targets get the snapshot limit from their header on (server.cc): percent-encoded and
  // with a query too; other paths keep the listener's limit.
  EXPECT_TRUE(IsSnapshotTarget("/v1/sys/storage/raft/snapshot"));
  EXPECT_TRUE(IsSnapshotTarget("/v1/sys/storage/raft/snapshot-force?x=1"));
  EXPECT_TRUE(IsSnapshotTarget("/v1/sys/storage/raft/snapsho%74"));
  EXPECT_FALSE(IsSnapshotTarget("/v1/sys/storage/raft/snapshots"));
  EXPECT_FALSE(IsSnapshotTarget("/v1/secret/data/sys/storage/raft/snapshot"));
  EXPECT_FALSE(IsSnapshotTarget("/sys/storage/raft/snapshot"));
  limits.max_array_elements = 2;
  auto narrow = DecodeRequest(In("POST", "/v1/sys/storage/raft/snapshot", body), limits);
  ASSERT_TRUE(std::holds_alternative<HttpOut>(narrow));
  EXPECT_EQ(std::get<HttpOut>(narrow).status, 413u);

  // An error answer is encoded as any other.
  ipc::Response err;
  err.set_kind(ipc::Response::ERROR);
  err.set_error_code(static_cast<int>(absl::StatusCode::kPermissionDenied));
  err.add_errors("permission denied");
  EXPECT_EQ(EncodeSnapshotResponse(err).status, 403u);
}

// Vault API: /sys/metrics. Prometheus scrapes ask by Accept header; the broker's text answer is
// sent as it is, with its own Content-Type.
TEST(Codec, MetricsFormatByAcceptHeaderAndRawTextAnswers) {
  EXPECT_TRUE(AcceptsPrometheus("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"));
  EXPECT_TRUE(AcceptsPrometheus(" application/openmetrics-text"));
  EXPECT_TRUE(AcceptsPrometheus("application/json, prometheus/telemetry"));
  EXPECT_FALSE(AcceptsPrometheus("text/plain, application/openmetrics-text"));  // not first
  EXPECT_FALSE(AcceptsPrometheus("application/json"));
  EXPECT_FALSE(AcceptsPrometheus(""));

  HttpIn in = In("GET", "/v1/sys/metrics");
  in.accept = "application/openmetrics-text; version=0.0.1";
  auto r = std::get<ipc::Request>(DecodeRequest(in, kLimits));
  EXPECT_EQ(json::parse(r.data_json()), json({{"format", "prometheus"}}));
  // An explicit format wins; other paths are left alone.
  in.target = "/v1/sys/metrics?format=";
  r = std::get<ipc::Request>(DecodeRequest(in, kLimits));
  EXPECT_EQ(json::parse(r.data_json()), json({{"format", ""}}));
  in.target = "/v1/sys/health";
  r = std::get<ipc::Request>(DecodeRequest(in, kLimits));
  EXPECT_EQ(json::parse(r.data_json()), json::object());
  in.target = "/v1/sys/metrics";
  in.accept = "application/json";
  r = std::get<ipc::Request>(DecodeRequest(in, kLimits));
  EXPECT_EQ(json::parse(r.data_json()), json::object());

  ipc::Response text;
  text.set_kind(ipc::Response::RAW);
  text.set_content_type("text/plain; version=0.0.4; charset=utf-8");
  text.set_body("# TYPE x counter\nx 1\n");
  HttpOut out = EncodeResponse(text);
  EXPECT_EQ(out.status, 200u);
  EXPECT_EQ(out.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(out.body, "# TYPE x counter\nx 1\n");
  EXPECT_EQ(out.content_disposition, "");
  text.set_http_status(400);
  EXPECT_EQ(EncodeResponse(text).status, 400u);
  EXPECT_EQ(ipc::ResponseHttpStatus(text), 400u);
}

}  // namespace
}  // namespace strongroom::worker
