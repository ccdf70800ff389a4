// strongroom-raft-node: one real Raft node (RaftStorage: libraft, the mutual-TLS transport,
// the RocksDB state machine) in its own process, driven line by line on stdin by
// tests/integration/raft_test.cc. Not shipped.
//
//   strongroom-raft-node --id N --address HOST:PORT --dir DIR --ca F --cert F --key F
//                        [--bootstrap] [--snapshot-threshold N --snapshot-trailing N]
//                        [--hold-restore FILE]
// Commands (one answer line each): put K V | del K | get K | list PREFIX | leader | isleader |
// add ID ADDRESS | remove ID | config | applied | barrier | quit
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "appliance/raft/raft_storage.h"
#include "base/log.h"

namespace {

using strongroom::raft::RaftOptions;
using strongroom::raft::RaftStorage;

std::string Answer(const absl::Status& s) {
  return s.ok() ? "ok" : "error " + std::string(s.message());
}

int Usage() {
  std::cerr << "usage: strongroom-raft-node --id N --address HOST:PORT --dir DIR --ca F --cert F "
               "--key F [--bootstrap] [--snapshot-threshold N] [--snapshot-trailing N] "
               "[--hold-restore FILE]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // As in strongroomd: a peer that hangs up must not kill the node (libuv writes with write(2)).
  std::signal(SIGPIPE, SIG_IGN);
  RaftOptions o;
  o.election_timeout_ms = 500;
  o.heartbeat_timeout_ms = 50;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--id") {
      if (!absl::SimpleAtoi(next(), &o.node_id)) return Usage();
    } else if (a == "--address") {
      o.address = next();
    } else if (a == "--dir") {
      o.dir = next();
    } else if (a == "--ca") {
      o.tls.ca_file = next();
    } else if (a == "--cert") {
      o.tls.cert_file = next();
    } else if (a == "--key") {
      o.tls.key_file = next();
    } else if (a == "--bootstrap") {
      o.bootstrap = true;
    } else if (a == "--snapshot-threshold") {
      if (!absl::SimpleAtoi(next(), &o.snapshot_threshold)) return Usage();
    } else if (a == "--snapshot-trailing") {
      if (!absl::SimpleAtoi(next(), &o.snapshot_trailing)) return Usage();
    } else if (a == "--hold-restore") {
      // While FILE exists, a snapshot received from the leader is not restored (the test of a
      // follower that answers its leader during a long restore).
      std::string file = next();
      o.before_restore = [file] {
        strongroom::LogInfo("raft node: restore held while %s exists", file);
        while (::access(file.c_str(), F_OK) == 0) ::usleep(20 * 1000);
        strongroom::LogInfo("raft node: restore released");
      };
    } else {
      return Usage();
    }
  }
  auto node = RaftStorage::Start(o);
  if (!node.ok()) {
    std::cout << "error " << node.status().message() << std::endl;
    return 1;
  }
  RaftStorage& r = **node;
  std::cout << "started" << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd, a, b;
    in >> cmd >> a >> b;
    std::string out;
    if (cmd == "put") {
      out = Answer(r.Put(a, b));
    } else if (cmd == "putbig") {
      // putbig KEY BYTES: BYTES copies of KEY's last character.
      size_t n = 0;
      out = !a.empty() && absl::SimpleAtoi(b, &n) && n <= (64u << 20)
                ? Answer(r.Put(a, std::string(n, a.back())))
                : "error bad size";
    } else if (cmd == "getbig") {
      // getbig KEY: "big SIZE" when the value is SIZE copies of KEY's last character.
      auto v = r.Get(a);
      out = !v.ok()           ? Answer(v.status())
            : !v->has_value() ? "none"
            : (*v)->find_first_not_of(a.back()) != std::string::npos
                ? "big garbled"
                : "big " + std::to_string((*v)->size());
    } else if (cmd == "del") {
      out = Answer(r.Delete(a));
    } else if (cmd == "get") {
      auto v = r.Get(a);
      out = !v.ok() ? Answer(v.status()) : v->has_value() ? "value " + **v : "none";
    } else if (cmd == "list") {
      auto v = r.List(a);
      out = v.ok() ? "list " + absl::StrJoin(*v, ",") : Answer(v.status());
    } else if (cmd == "leader") {
      auto l = r.Leader();
      out = l ? "leader " + std::to_string(l->id) + " " + l->address : "none";
    } else if (cmd == "isleader") {
      out = r.IsLeader() ? "yes" : "no";
    } else if (cmd == "add") {
      uint64_t id = 0;
      out = absl::SimpleAtoi(a, &id) ? Answer(r.AddVoter(id, b)) : "error bad id";
    } else if (cmd == "remove") {
      uint64_t id = 0;
      out = absl::SimpleAtoi(a, &id) ? Answer(r.Remove(id)) : "error bad id";
    } else if (cmd == "config") {
      std::vector<std::string> peers;
      for (const auto& p : r.Configuration())
        peers.push_back(std::to_string(p.id) + "=" + p.address + (p.voter ? ":voter" : ":spare"));
      out = "config " + absl::StrJoin(peers, " ");
    } else if (cmd == "applied") {
      out = "applied " + std::to_string(r.AppliedIndex());
    } else if (cmd == "barrier") {
      out = Answer(r.Barrier());
    } else if (cmd == "quit") {
      break;
    } else {
      out = "error unknown command";
    }
    std::cout << out << std::endl;
  }
  return 0;
}
