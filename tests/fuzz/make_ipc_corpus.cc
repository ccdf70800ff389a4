// Writes the seed corpus of ipc_fuzz (tests/fuzz/corpus/ipc): worker -> broker byte streams, valid
// and broken in the ways the broker must end a worker for. Built with the fuzz targets:
//   ./build-fuzz/tests/fuzz/make_ipc_corpus tests/fuzz/corpus/ipc
#include <cstdio>
#include <fstream>
#include <string>

#include "appliance/ipc/protocol.h"

namespace {

using strongroom::ipc::EncodeFrame;
using strongroom::ipc::Frame;

std::string Hello(uint32_t version = strongroom::ipc::kProtocolVersion) {
  Frame f;
  f.mutable_hello()->set_protocol_version(version);
  f.mutable_hello()->set_worker_index(0);
  return EncodeFrame(f);
}

std::string Request(uint64_t id, strongroom::ipc::Operation op, const std::string& path,
                    const std::string& token = "", const std::string& data_json = "") {
  Frame f;
  auto* r = f.mutable_request();
  r->set_id(id);
  r->set_operation(op);
  r->set_path(path);
  r->set_token(token);
  r->set_data_json(data_json.empty() ? "{}" : data_json);
  r->set_has_data(!data_json.empty());
  r->set_remote_address("127.0.0.1");
  r->set_remote_port(40000);
  return EncodeFrame(f);
}

std::string Prefix(uint32_t len) {
  return {static_cast<char>(len >> 24), static_cast<char>(len >> 16), static_cast<char>(len >> 8),
          static_cast<char>(len)};
}

bool Write(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out << bytes;
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  using strongroom::ipc::OP_LIST;
  using strongroom::ipc::OP_READ;
  using strongroom::ipc::OP_UPDATE;

  const std::string write =
      Request(2, OP_UPDATE, "secret/data/app", "hvs.token", R"({"data":{"k":"v"}})");
  Frame response;
  response.mutable_response()->set_id(1);
  response.mutable_response()->set_kind(strongroom::ipc::Response::RAW);
  response.mutable_response()->set_data_json("{}");
  Frame settings;
  settings.mutable_settings()->set_max_request_bytes(1024);
  // A Hello padded past its 64-byte cap with an unknown field (number 1000, length 100).
  const std::string padded_hello_body =
      Hello().substr(4) + std::string("\xc2\x3e\x64", 3) + std::string(100, 'x');

  bool ok = true;
  ok &= Write(dir, "hello", Hello());
  ok &= Write(dir, "hello_then_requests",
              Hello() + Request(1, OP_READ, "sys/health") + write +
                  Request(3, OP_LIST, "secret/metadata/", "hvs.token"));
  ok &= Write(dir, "request_before_hello", Request(1, OP_READ, "sys/health"));
  ok &= Write(dir, "hello_twice", Hello() + Hello());
  ok &= Write(dir, "response_from_worker", Hello() + EncodeFrame(response));
  ok &= Write(dir, "settings_from_worker", EncodeFrame(settings));
  ok &= Write(dir, "wrong_version", Hello(2));
  ok &= Write(dir, "hello_over_cap",
              Prefix(static_cast<uint32_t>(padded_hello_body.size())) + padded_hello_body);
  ok &= Write(dir, "truncated", Hello() + write.substr(0, write.size() / 2));
  ok &= Write(dir, "oversized_length", Prefix(0x7fffffff) + std::string("\x1a\x00", 2));
  ok &= Write(dir, "empty_frame", Hello() + Prefix(0));
  ok &= Write(dir, "garbage", Prefix(8) + std::string(8, '\xff'));
  if (!ok) {
    std::fprintf(stderr, "cannot write into %s\n", dir.c_str());
    return 1;
  }
  return 0;
}
