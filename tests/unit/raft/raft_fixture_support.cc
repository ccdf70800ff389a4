#include "tests/unit/raft/raft_fixture_support.h"

#include <cstdlib>
#include <cstring>

namespace strongroom::raft_test {
namespace {

constexpr size_t kCommandSize = sizeof(uint64_t);

int Apply(raft_fsm* fsm, const raft_buffer* buf, void** result) {
  auto* self = static_cast<RecordingFsm*>(fsm->data);
  *result = nullptr;
  if (buf->len != kCommandSize) {
    if (self->error.empty())
      self->error = "apply: a command of " + std::to_string(buf->len) + " bytes";
    return RAFT_MALFORMED;
  }
  uint64_t value = 0;
  std::memcpy(&value, buf->base, kCommandSize);
  self->applied.push_back(value);
  return 0;
}

// The snapshot: the number of commands, then the commands (8 bytes each, host order).
int Snapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
  auto* self = static_cast<RecordingFsm*>(fsm->data);
  const uint64_t count = self->applied.size();
  const size_t len = kCommandSize * (1 + self->applied.size());
  auto* out = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
  if (out == nullptr) return RAFT_NOMEM;
  out->base = raft_malloc(len);
  if (out->base == nullptr) {
    raft_free(out);
    return RAFT_NOMEM;
  }
  out->len = len;
  std::memcpy(out->base, &count, kCommandSize);
  if (count > 0) {
    std::memcpy(static_cast<char*>(out->base) + kCommandSize, self->applied.data(),
                kCommandSize * self->applied.size());
  }
  *bufs = out;
  *n_bufs = 1;
  ++self->snapshots_taken;
  return 0;
}

int Restore(raft_fsm* fsm, raft_buffer* buf) {
  auto* self = static_cast<RecordingFsm*>(fsm->data);
  uint64_t count = 0;
  if (buf->len < kCommandSize) {
    if (self->error.empty()) self->error = "restore: a snapshot shorter than its header";
    return RAFT_MALFORMED;
  }
  std::memcpy(&count, buf->base, kCommandSize);
  if (count != buf->len / kCommandSize - 1 || buf->len % kCommandSize != 0) {
    if (self->error.empty()) self->error = "restore: a snapshot whose length is not its count";
    return RAFT_MALFORMED;
  }
  self->applied.resize(count);
  if (count > 0) {
    std::memcpy(self->applied.data(), static_cast<const char*>(buf->base) + kCommandSize,
                kCommandSize * count);
  }
  raft_free(buf->base);  // a successful restore owns the data
  ++self->restores;
  return 0;
}

using ApplyRequest = struct raft_apply;  // the struct, not the function of the same name

bool Trampoline(raft_fixture*, void* arg) {
  return (*static_cast<const std::function<bool()>*>(arg))();
}

}  // namespace

RecordingFsm::RecordingFsm() {
  fsm.version = 1;
  fsm.data = this;
  fsm.apply = &Apply;
  fsm.snapshot = &Snapshot;
  fsm.restore = &Restore;
}

FixtureCluster::FixtureCluster(unsigned n) {
  init_status_ = raft_fixture_init(&f_);
  if (init_status_ != 0) return;
  initialised_ = true;
  for (unsigned i = 0; i < n; ++i) {
    fsms_.push_back(std::make_unique<RecordingFsm>());
    init_status_ = raft_fixture_grow(&f_, &fsms_.back()->fsm);
    if (init_status_ != 0) return;
    // The fixture's tracer prints every step to stderr; STRONGROOM_RAFT_TRACE=1 keeps it.
    if (std::getenv("STRONGROOM_RAFT_TRACE") == nullptr) server(i)->tracer = nullptr;
  }
}

FixtureCluster::~FixtureCluster() {
  if (initialised_) raft_fixture_close(&f_);
}

int FixtureCluster::Bootstrap() {
  raft_configuration conf;
  int rv = raft_fixture_configuration(&f_, size(), &conf);
  if (rv == 0) rv = raft_fixture_bootstrap(&f_, &conf);
  raft_configuration_close(&conf);
  return rv;
}

void FixtureCluster::AddCommand(unsigned i, raft_term term, uint64_t value) {
  raft_entry entry{};
  entry.term = term;
  entry.type = RAFT_COMMAND;
  entry.buf.len = kCommandSize;
  entry.buf.base = raft_malloc(kCommandSize);  // the fixture's log owns it from here
  std::memcpy(entry.buf.base, &value, kCommandSize);
  entry.batch = nullptr;
  raft_fixture_add_entry(&f_, i, &entry);
}

int FixtureCluster::Submit(unsigned i, const std::vector<uint64_t>& values) {
  // libraft 0.22 takes one buffer per raft_apply call.
  for (uint64_t value : values) {
    raft_buffer buf;
    buf.len = kCommandSize;
    buf.base = raft_malloc(kCommandSize);
    if (buf.base == nullptr) return RAFT_NOMEM;
    std::memcpy(buf.base, &value, kCommandSize);
    auto* req = new ApplyRequest{};
    int rv =
        raft_apply(server(i), req, &buf, 1, [](ApplyRequest* done, int, void*) { delete done; });
    if (rv != 0) {
      raft_free(buf.base);
      delete req;
      return rv;
    }
  }
  return 0;
}

bool FixtureCluster::StepUntil(const std::function<bool()>& done, unsigned max_msecs) {
  return raft_fixture_step_until(&f_, &Trampoline, const_cast<std::function<bool()>*>(&done),
                                 max_msecs);
}

bool AppliedPrefixConsistent(const std::vector<const std::vector<uint64_t>*>& lists,
                             std::string* why) {
  const std::vector<uint64_t>* longest = nullptr;
  for (const auto* l : lists) {
    if (longest == nullptr || l->size() > longest->size()) longest = l;
  }
  for (size_t s = 0; s < lists.size(); ++s) {
    const auto& l = *lists[s];
    for (size_t k = 0; k < l.size(); ++k) {
      if (l[k] != (*longest)[k]) {
        *why = "server " + std::to_string(s + 1) + " applied " + std::to_string(l[k]) +
               " as its command " + std::to_string(k + 1) + ", another server applied " +
               std::to_string((*longest)[k]);
        return false;
      }
    }
  }
  return true;
}

}  // namespace strongroom::raft_test
