#include "appliance/raft/log_recover.h"

#include <cstddef>
#include <string>

#include "absl/strings/str_cat.h"
#include "appliance/raft/libraft.h"
#include "base/log.h"

namespace strongroom::raft {
namespace {

// What io->load hands over, freed as libraft frees it (entryBatchesDestroy, snapshotDestroy).
struct Loaded {
  raft_snapshot* snapshot = nullptr;
  raft_entry* entries = nullptr;
  size_t n_entries = 0;
  ~Loaded() {
    if (entries != nullptr) {
      void* batch = nullptr;
      for (size_t i = 0; i < n_entries; ++i) {
        if (entries[i].batch != batch) {
          batch = entries[i].batch;
          raft_free(batch);
        }
      }
      raft_free(entries);
    }
    if (snapshot != nullptr) {
      raft_configuration_close(&snapshot->configuration);
      for (unsigned i = 0; i < snapshot->n_bufs; ++i) raft_free(snapshot->bufs[i].base);
      raft_free(snapshot->bufs);
      raft_free(snapshot);
    }
  }
};

std::vector<Peer> PeersOf(const raft_configuration& c) {
  std::vector<Peer> out;
  for (unsigned i = 0; i < c.n; ++i) {
    out.push_back(Peer{c.servers[i].id, c.servers[i].address, c.servers[i].role == RAFT_VOTER});
  }
  return out;
}

}  // namespace

absl::Status RecoverLog(
    raft_io* io, struct raft* r,
    const std::function<absl::StatusOr<std::vector<Peer>>(const std::vector<Peer>&)>& decide) {
  raft_term term = 0;
  raft_id voted_for = 0;
  raft_index start_index = 0;
  Loaded loaded;
  int rv = io->load(io, &term, &voted_for, &loaded.snapshot, &start_index, &loaded.entries,
                    &loaded.n_entries);
  if (rv != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("raft recovery: cannot read the Raft log: ", io->errmsg));
  }
  std::vector<Peer> current;
  bool found = false;
  for (size_t i = loaded.n_entries; i-- > 0 && !found;) {
    if (loaded.entries[i].type != RAFT_CHANGE) continue;
    raft_configuration c;
    raft_configuration_init(&c);
    rv = raft_configuration_decode(&loaded.entries[i].buf, &c);
    if (rv != 0) {
      raft_configuration_close(&c);
      return absl::DataLossError(absl::StrCat(
          "raft recovery: a configuration entry of the log cannot be read: ", raft_strerror(rv)));
    }
    current = PeersOf(c);
    raft_configuration_close(&c);
    found = true;
  }
  if (!found && loaded.snapshot != nullptr) {
    current = PeersOf(loaded.snapshot->configuration);
    found = true;
  }
  if (!found || term == 0) {
    return absl::FailedPreconditionError(
        "raft recovery: this node holds no Raft state (nothing to recover)");
  }
  absl::StatusOr<std::vector<Peer>> forced = decide(current);
  if (!forced.ok()) return forced.status();
  raft_configuration conf;
  raft_configuration_init(&conf);
  for (const Peer& p : *forced) {
    rv =
        raft_configuration_add(&conf, p.id, p.address.c_str(), p.voter ? RAFT_VOTER : RAFT_STANDBY);
    if (rv != 0) {
      raft_configuration_close(&conf);
      return absl::InvalidArgumentError(
          absl::StrCat("raft recovery: invalid configuration: ", raft_strerror(rv)));
    }
  }
  rv = raft_recover(r, &conf);
  raft_configuration_close(&conf);
  if (rv != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("raft recovery: cannot write the new configuration: ", raft_strerror(rv), " (",
                     raft_errmsg(r), ")"));
  }
  LogWarn("raft: recovered: the Raft configuration is now the %d server(s) of the peers file",
          forced->size());
  return absl::OkStatus();
}

}  // namespace strongroom::raft
