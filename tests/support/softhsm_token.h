// SoftHsmToken: a throwaway SoftHSM2 token for tests.
//
// Each instance owns a fresh temporary directory holding a softhsm2.conf and a token store, and
// initialises one token in it with softhsm2-util. SoftHSM2 finds its configuration only through
// the SOFTHSM2_CONF environment variable, so Create() points SOFTHSM2_CONF (in this process) at
// the new conf; the destructor puts the previous value back and deletes the directory.
//
// In-process use: create the SoftHsmToken, then open it with hsm::Token::Open using lib(),
// label() and pin(). SoftHSM2 2.6.1 re-reads SOFTHSM2_CONF on every C_Initialize, so a fresh
// token per test works as long as the previous hsm::Module has been destroyed (C_Finalize).
//
// Child processes (the daemon in integration tests): pass env_assignment() (or conf_path()) in
// the child's environment. The conf file holds absolute paths only, so it works from any working
// directory, and it stays valid until this object is destroyed.
//
// Not thread-safe: setenv/unsetenv race with getenv in other threads, so create and destroy
// tokens while no other test thread is running.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace strongroom::test_support {

class SoftHsmToken {
 public:
  static constexpr const char* kSoftHsmLib = "/usr/lib/softhsm/libsofthsm2.so";

  // Makes the directory, writes the conf, sets SOFTHSM2_CONF and runs
  //   softhsm2-util --init-token --free --label <label> --pin <pin> --so-pin <so_pin>
  // PINs must be 4..255 characters (SoftHSM2's limits).
  static absl::StatusOr<std::unique_ptr<SoftHsmToken>> Create(
      const std::string& label = "strongroom-test", const std::string& pin = "1234",
      const std::string& so_pin = "5678");
  ~SoftHsmToken();
  SoftHsmToken(const SoftHsmToken&) = delete;
  SoftHsmToken& operator=(const SoftHsmToken&) = delete;

  const std::string& dir() const { return dir_; }              // the temporary directory
  const std::string& conf_path() const { return conf_path_; }  // <dir>/softhsm2.conf
  const std::string& label() const { return label_; }
  const std::string& pin() const { return pin_; }
  const std::string& so_pin() const { return so_pin_; }
  std::string lib() const { return kSoftHsmLib; }
  // "SOFTHSM2_CONF=<conf_path>", ready for a child's envp.
  std::string env_assignment() const { return "SOFTHSM2_CONF=" + conf_path_; }

  // Points SOFTHSM2_CONF at this token's conf again (when several tokens exist at once, the
  // most recently created one is active).
  void Activate() const;

 private:
  SoftHsmToken() = default;

  std::string dir_;
  std::string conf_path_;
  std::string label_;
  std::string pin_;
  std::string so_pin_;
  bool had_previous_conf_ = false;
  std::string previous_conf_;  // SOFTHSM2_CONF before Create, restored by the destructor
};

}  // namespace strongroom::test_support
