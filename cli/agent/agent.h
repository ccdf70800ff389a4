// The agent's loop (Vault Agent's behaviour): log in, write the sinks, render every template,
// then keep the token alive (renew at two thirds of its lease, log in again when renewal fails
// or the server refuses the token) and re-render each template when it is due, retrying
// failures with back-off while the files already written stay as they are.
//
// Response wrapping: a sink with wrap_ttl gets a wrapped copy of each new token (the agent uses
// the token itself). With the method's wrap_ttl the login is wrapped: its wrap_info goes to the
// one sink and the agent pauses (no renewal, no new login, nothing rendered) until it is
// stopped, as Vault Agent does.
//
// Signals: SIGTERM and SIGINT end the loop (exit 0); SIGHUP renders every template now. The
// loop sleeps in sigtimedwait, so a signal is handled between two steps, never inside one.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "cli/agent/auth.h"
#include "cli/agent/command_runner.h"
#include "cli/agent/config.h"
#include "cli/agent/renderer.h"
#include "client/client.h"

namespace strongroom::agent {

// Vault Agent's template retry defaults: 12 retries, back-off from 250 ms doubling to 1 min.
inline constexpr int kTemplateRetries = 12;

class Agent {
 public:
  // Parses every template (errors here are configuration errors: exit 1 before any request).
  // `runner` runs the templates' commands; required when a template has one.
  static absl::StatusOr<std::unique_ptr<Agent>> Create(AgentConfig config, client::Client client,
                                                       std::optional<CommandRunner> runner);

  // Runs until a signal ends it (OK), exit_after_auth is satisfied (OK), or a failure the
  // configuration makes fatal (exit_on_err, exit_on_retry_failure).
  absl::Status Run();

 private:
  Agent(AgentConfig config, client::Client client, std::optional<CommandRunner> runner)
      : config_(std::move(config)),
        client_(std::move(client)),
        runner_(std::move(runner)),
        authenticator_(*config_.method) {}

  struct TemplateState {
    std::unique_ptr<TemplateRenderer> renderer;
    absl::Time due = absl::InfinitePast();
    int failures = 0;
    bool rendered = false;
    bool relogged = false;  // a refusal already led to a new login; the next one is a failure
  };

  absl::Status Authenticate();  // one attempt
  void WriteSinksIfPending();
  void RenderDue(bool* reauth, absl::Status* fatal);

  AgentConfig config_;
  client::Client client_;
  std::optional<CommandRunner> runner_;
  Authenticator authenticator_;
  std::vector<TemplateState> templates_;
  bool authenticated_ = false;
  absl::Time renew_at_ = absl::InfiniteFuture();
  bool renewable_ = false;
  bool sinks_pending_ = false;      // the current token is not in every sink yet
  std::vector<bool> sink_written_;  // per sink, for the current token
  std::string wrapped_login_;       // method wrap_ttl: the login's wrap_info JSON (the sink's)
  int auth_failures_ = 0;
  absl::Time auth_due_ = absl::InfinitePast();
};

}  // namespace strongroom::agent
