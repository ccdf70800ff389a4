#include "appliance/ipc/protocol.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "appliance/broker/ipc_server.h"

namespace strongroom::ipc {
namespace {

class Pair : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fd_), 0); }
  void TearDown() override {
    close(fd_[0]);
    close(fd_[1]);
  }
  int fd_[2];
};

TEST_F(Pair, FramesRoundTrip) {
  Frame f;
  f.mutable_request()->set_path("secret/data/x");
  f.mutable_request()->set_operation(OP_READ);
  ASSERT_TRUE(WriteFrame(fd_[0], f).ok());
  auto got = ReadFrame(fd_[1], kMaxRequestFrame);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->request().path(), "secret/data/x");
}

TEST_F(Pair, OversizedGarbageAndEmptyFramesAreRejected) {
  const uint8_t huge[4] = {0x7f, 0xff, 0xff, 0xff};
  ASSERT_EQ(write(fd_[0], huge, 4), 4);
  EXPECT_EQ(ReadFrame(fd_[1], kMaxRequestFrame).status().code(),
            absl::StatusCode::kResourceExhausted);
  const uint8_t garbage[] = {0, 0, 0, 3, 0xff, 0xff, 0xff};
  ASSERT_EQ(write(fd_[0], garbage, sizeof garbage), static_cast<ssize_t>(sizeof garbage));
  EXPECT_FALSE(ReadFrame(fd_[1], kMaxRequestFrame).ok());
  const uint8_t empty[] = {0, 0, 0, 0};
  ASSERT_EQ(write(fd_[0], empty, 4), 4);
  EXPECT_EQ(ReadFrame(fd_[1], kMaxRequestFrame).status().code(),
            absl::StatusCode::kInvalidArgument);
  Frame hello;
  hello.mutable_hello()->set_worker_index(1);
  hello.mutable_hello()->set_protocol_version(1);
  // A Hello padded beyond its 64-byte cap (unknown field) is refused by the table.
  std::string padded =
      hello.SerializeAsString() + std::string("\xfa\x07\x64", 3) + std::string(100, 'x');
  uint8_t h[4] = {0, 0, 0, static_cast<uint8_t>(padded.size())};
  ASSERT_EQ(write(fd_[0], h, 4), 4);
  ASSERT_EQ(write(fd_[0], padded.data(), padded.size()), static_cast<ssize_t>(padded.size()));
  EXPECT_FALSE(ReadFrame(fd_[1], kMaxRequestFrame).ok());
  close(fd_[0]);
  fd_[0] = -1;
  EXPECT_EQ(ReadFrame(fd_[1], kMaxRequestFrame).status().code(), absl::StatusCode::kNotFound);
}

// FrameReader (the broker's reader threads): frames that arrive together are taken with one
// read, each is checked as ReadFrame checks it, and its buffer stays bounded.
Frame RequestFrame(const std::string& path, size_t data_bytes = 0) {
  Frame f;
  f.mutable_request()->set_path(path);
  f.mutable_request()->set_operation(OP_READ);
  f.mutable_request()->set_data_json(std::string(data_bytes, 'd'));
  return f;
}

TEST_F(Pair, FrameReaderTakesFramesSentTogetherWithOneRead) {
  std::string stream;
  for (int i = 0; i < 3; ++i) stream += EncodeFrame(RequestFrame("p" + std::to_string(i)));
  ASSERT_EQ(write(fd_[0], stream.data(), stream.size()), static_cast<ssize_t>(stream.size()));
  FrameReader reader(fd_[1], kMaxRequestFrame);
  EXPECT_FALSE(reader.HasBufferedFrame());
  auto first = reader.Next();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->request().path(), "p0");
  // The other two came with the same read: nothing is left in the socket.
  EXPECT_TRUE(reader.HasBufferedFrame());
  char probe;
  EXPECT_EQ(recv(fd_[1], &probe, 1, MSG_DONTWAIT), -1);
  for (const char* want : {"p1", "p2"}) {
    auto next = reader.Next();
    ASSERT_TRUE(next.ok()) << next.status();
    EXPECT_EQ(next->request().path(), want);
  }
  EXPECT_FALSE(reader.HasBufferedFrame());
  close(fd_[0]);
  fd_[0] = -1;
  EXPECT_EQ(reader.Next().status().code(), absl::StatusCode::kNotFound);
}

TEST_F(Pair, FrameReaderJoinsAFrameSentByteByByte) {
  const std::string stream = EncodeFrame(RequestFrame("split", 300));
  std::thread writer([&] {
    for (char c : stream) ASSERT_EQ(write(fd_[0], &c, 1), 1);
  });
  FrameReader reader(fd_[1], kMaxRequestFrame);
  auto got = reader.Next();
  writer.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->request().path(), "split");
  EXPECT_EQ(got->request().data_json().size(), 300u);
}

TEST_F(Pair, FrameReaderBoundsItsBuffer) {
  // A large frame is read whole; the buffer goes back to its chunk once it is taken.
  const std::string big = EncodeFrame(RequestFrame("big", 3 * FrameReader::kReadChunk));
  const std::string small = EncodeFrame(RequestFrame("small"));
  std::thread writer([&] {
    const std::string both = big + small;
    size_t sent = 0;
    while (sent < both.size()) {
      const ssize_t n = write(fd_[0], both.data() + sent, both.size() - sent);
      ASSERT_GT(n, 0);
      sent += static_cast<size_t>(n);
    }
  });
  FrameReader reader(fd_[1], kMaxRequestFrame);
  auto got = reader.Next();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->request().data_json().size(), 3 * FrameReader::kReadChunk);
  auto next = reader.Next();
  writer.join();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->request().path(), "small");
  EXPECT_LE(reader.capacity(), FrameReader::kReadChunk);

  // A length over the cap is refused before anything is set aside for it.
  const uint8_t huge[4] = {0x7f, 0xff, 0xff, 0xff};
  ASSERT_EQ(write(fd_[0], huge, 4), 4);
  EXPECT_EQ(reader.Next().status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_LE(reader.capacity(), FrameReader::kReadChunk);
}

TEST_F(Pair, FrameReaderChecksEachFrameAsReadFrameDoes) {
  {
    const uint8_t garbage[] = {0, 0, 0, 3, 0xff, 0xff, 0xff};
    ASSERT_EQ(write(fd_[0], garbage, sizeof garbage), static_cast<ssize_t>(sizeof garbage));
    FrameReader reader(fd_[1], kMaxRequestFrame);
    EXPECT_EQ(reader.Next().status().code(), absl::StatusCode::kInvalidArgument);
  }
  {
    const uint8_t empty[] = {0, 0, 0, 0};
    ASSERT_EQ(write(fd_[0], empty, 4), 4);
    FrameReader reader(fd_[1], kMaxRequestFrame);
    EXPECT_EQ(reader.Next().status().code(), absl::StatusCode::kInvalidArgument);
  }
  {
    // Over the message's own cap (a Hello is at most 64 bytes).
    Frame hello;
    hello.mutable_hello()->set_protocol_version(1);
    std::string padded =
        hello.SerializeAsString() + std::string("\xfa\x07\x64", 3) + std::string(100, 'x');
    const uint8_t h[4] = {0, 0, 0, static_cast<uint8_t>(padded.size())};
    ASSERT_EQ(write(fd_[0], h, 4), 4);
    ASSERT_EQ(write(fd_[0], padded.data(), padded.size()), static_cast<ssize_t>(padded.size()));
    FrameReader reader(fd_[1], kMaxRequestFrame);
    EXPECT_EQ(reader.Next().status().code(), absl::StatusCode::kResourceExhausted);
  }
  {
    // The peer goes inside a frame.
    const std::string frame = EncodeFrame(RequestFrame("cut"));
    ASSERT_EQ(write(fd_[0], frame.data(), frame.size() - 2),
              static_cast<ssize_t>(frame.size() - 2));
    close(fd_[0]);
    fd_[0] = -1;
    FrameReader reader(fd_[1], kMaxRequestFrame);
    EXPECT_EQ(reader.Next().status().code(), absl::StatusCode::kDataLoss);
  }
}

TEST(DecodeFrame, SplitsAStreamAndNamesEachWayItEnds) {
  Frame hello;
  hello.mutable_hello()->set_protocol_version(kProtocolVersion);
  Frame request;
  request.mutable_request()->set_path("sys/health");
  const std::string a = EncodeFrame(hello), b = EncodeFrame(request);
  const std::string stream = a + b;
  size_t consumed = 0;
  auto first = DecodeFrame(stream, kMaxRequestFrame, &consumed);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->has_hello());
  EXPECT_EQ(consumed, a.size());
  auto second = DecodeFrame(std::string_view(stream).substr(consumed), kMaxRequestFrame, &consumed);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->request().path(), "sys/health");
  EXPECT_EQ(consumed, b.size());

  EXPECT_EQ(DecodeFrame("", kMaxRequestFrame, &consumed).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(DecodeFrame(b.substr(0, 3), kMaxRequestFrame, &consumed).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeFrame(b.substr(0, b.size() - 1), kMaxRequestFrame, &consumed).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeFrame(b, b.size() - 5, &consumed).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(DecodeFrame(std::string("\0\0\0\0", 4), kMaxRequestFrame, &consumed).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CheckFromWorker, AppliesTheMessageTable) {
  Frame hello;
  hello.mutable_hello()->set_protocol_version(kProtocolVersion);
  Frame request;
  request.mutable_request()->set_path("sys/health");
  Frame response;
  response.mutable_response()->set_id(1);
  Frame settings;
  settings.mutable_settings()->set_max_request_bytes(1);
  EXPECT_TRUE(CheckFromWorker(hello, PeerState::kNew).ok());
  EXPECT_TRUE(CheckFromWorker(request, PeerState::kReady).ok());
  EXPECT_EQ(CheckFromWorker(hello, PeerState::kReady).message(), "message out of order");
  EXPECT_EQ(CheckFromWorker(request, PeerState::kNew).message(), "message out of order");
  for (PeerState state : {PeerState::kNew, PeerState::kReady}) {
    EXPECT_EQ(CheckFromWorker(response, state).message(), "message not allowed from a worker");
    EXPECT_EQ(CheckFromWorker(settings, state).message(), "message not allowed from a worker");
    EXPECT_EQ(CheckFromWorker(Frame(), state).code(), absl::StatusCode::kFailedPrecondition);
  }
  hello.mutable_hello()->set_protocol_version(kProtocolVersion + 1);
  EXPECT_EQ(CheckFromWorker(hello, PeerState::kNew).message(), "wrong protocol version");
}

TEST(IpcServer, ValidatesWorkerFieldsAsHostile) {
  Request r;
  r.set_operation(static_cast<Operation>(99));
  EXPECT_FALSE(broker::IpcServer::ToCoreRequest(r).ok());
  r.set_operation(OP_READ);
  r.set_path(std::string(5000, 'a'));
  EXPECT_FALSE(broker::IpcServer::ToCoreRequest(r).ok());
  r.set_path("sys/health");
  r.set_data_json("[not an object]");
  EXPECT_FALSE(broker::IpcServer::ToCoreRequest(r).ok());
  r.set_data_json("{}");
  r.set_namespace_("tenant-a/");
  EXPECT_FALSE(broker::IpcServer::ToCoreRequest(r).ok());
  r.set_namespace_("");
  auto ok = broker::IpcServer::ToCoreRequest(r);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->request_id.size(), 36u);
}

// Request ids are random version 4 UUIDs, drawn from a per-thread pool of random bytes.
TEST(IpcServer, RequestIdsAreDistinctVersion4Uuids) {
  Request r;
  r.set_operation(OP_READ);
  r.set_path("secret/data/a");
  r.set_data_json("{}");
  std::set<std::string> seen;
  const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  for (int i = 0; i < 2000; ++i) {  // several refills of the pool
    auto req = broker::IpcServer::ToCoreRequest(r);
    ASSERT_TRUE(req.ok()) << req.status();
    EXPECT_TRUE(std::regex_match(req->request_id, uuid)) << req->request_id;
    seen.insert(req->request_id);
  }
  EXPECT_EQ(seen.size(), 2000u);
}

// The broker checks a request's data against the JSON limits it gave the workers before it
// parses it (a compromised worker skips the worker's check): issue 23 item 8.
TEST(IpcServer, ChecksTheWorkersJsonLimitsBeforeParsing) {
  WorkerSettings s;
  s.set_max_json_array_element_count(3);
  s.set_max_json_string_value_length(4);
  const core::JsonLimits limits = broker::IpcServer::JsonLimitsFor(s);
  EXPECT_EQ(limits.max_array_elements, 3u);
  EXPECT_EQ(limits.max_string_length, 32u);  // at least 32: the worker writes numbers anew
  EXPECT_EQ(limits.max_depth, core::JsonLimits{}.max_depth);  // 0: the default
  EXPECT_EQ(limits.max_strings, core::JsonLimits{}.max_strings);
  Request r;
  r.set_operation(OP_UPDATE);
  r.set_path("secret/data/x");
  r.set_data_json(R"({"k":[1,2,3]})");
  EXPECT_TRUE(broker::IpcServer::ToCoreRequest(r, limits).ok());
  r.set_data_json(R"({"k":[1,2,3,4]})");
  auto over = broker::IpcServer::ToCoreRequest(r, limits);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(over.status().message(), "JSON array exceeds allowed element count");
}

TEST(IpcServer, InternalErrorsNeverCarryDetail) {
  auto out = broker::IpcServer::ToIpcResponse(7, "rid", absl::InternalError("secret detail"), "");
  EXPECT_EQ(out.kind(), Response::ERROR);
  ASSERT_EQ(out.errors_size(), 1);
  EXPECT_EQ(out.errors(0), "internal error");
  auto denied = broker::IpcServer::ToIpcResponse(
      7, "rid", absl::PermissionDeniedError("permission denied"), "");
  EXPECT_EQ(denied.errors(0), "permission denied");
}

// The status a worker answers with, as the broker's metrics count it.
TEST(IpcServer, ResponseStatusAndRouteClassForMetrics) {
  Response r;
  r.set_kind(Response::EMPTY);
  EXPECT_EQ(ResponseHttpStatus(r), 204u);
  r.set_kind(Response::LOGICAL);
  EXPECT_EQ(ResponseHttpStatus(r), 200u);
  r.set_kind(Response::RAW);
  r.set_http_status(429);
  EXPECT_EQ(ResponseHttpStatus(r), 429u);
  auto denied = broker::IpcServer::ToIpcResponse(
      7, "rid", absl::PermissionDeniedError("permission denied"), "kv");
  EXPECT_EQ(ResponseHttpStatus(denied), 403u);
  EXPECT_EQ(denied.mount_type(), "kv");  // the route class of a refusal on a mount
  EXPECT_EQ(ResponseHttpStatus(broker::IpcServer::ToIpcResponse(
                7, "rid", absl::UnavailableError("Vault is sealed"), "")),
            503u);

  using broker::IpcServer;
  EXPECT_EQ(IpcServer::RouteClass("sys/health", ""), "sys");
  EXPECT_EQ(IpcServer::RouteClass("sys/mounts", "system"), "sys");
  EXPECT_EQ(IpcServer::RouteClass("secret/data/a", "kv"), "kv");
  EXPECT_EQ(IpcServer::RouteClass("transit/encrypt/k", "transit"), "transit");
  EXPECT_EQ(IpcServer::RouteClass("auth/token/create", "token"), "auth/token");
  EXPECT_EQ(IpcServer::RouteClass("auth/k8s/login", "kubernetes"), "auth/kubernetes");
  EXPECT_EQ(IpcServer::RouteClass("auth/ldap/login", "ldap"), "auth/other");
  EXPECT_EQ(IpcServer::RouteClass("db/creds/x", "database"), "other");
  EXPECT_EQ(IpcServer::RouteClass("x/none", "none"), "other");  // never a class by accident
  EXPECT_EQ(IpcServer::RouteClass("nowhere/x", ""), "none");
}

}  // namespace
}  // namespace strongroom::ipc
