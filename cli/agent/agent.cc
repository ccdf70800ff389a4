#include "cli/agent/agent.h"

#include <signal.h>
#include <time.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "cli/agent/auth.h"
#include "cli/agent/files.h"

namespace strongroom::agent {
namespace {

absl::Duration Backoff(absl::Duration min, absl::Duration max, int failures) {
  absl::Duration d = min;
  for (int i = 1; i < failures && d < max; ++i) d *= 2;
  return std::min(d, max);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(AgentConfig config, client::Client client,
                                                     std::optional<CommandRunner> runner) {
  if (!config.method) return absl::InvalidArgumentError("no auto_auth method");
  std::unique_ptr<Agent> agent(new Agent(std::move(config), std::move(client), std::move(runner)));
  for (const TemplateSpec& spec : agent->config_.templates) {
    if (!spec.command.empty() && !agent->runner_) {
      return absl::InternalError("a template has a command but no command runner was started");
    }
    auto renderer = TemplateRenderer::Create(spec, agent->config_.template_config);
    if (!renderer.ok()) return renderer.status();
    TemplateState state;
    state.renderer = std::move(*renderer);
    agent->templates_.push_back(std::move(state));
  }
  return agent;
}

absl::Status Agent::Authenticate() {
  const AuthMethod& method = *config_.method;
  auto login = authenticator_.Login(client_);
  if (!login.ok()) return login.status();
  sink_written_.assign(config_.sinks.size(), false);
  sinks_pending_ = !config_.sinks.empty();
  if (login->wrapped) {
    // Nothing to renew or use: the token is for whoever unwraps the sink's wrap_info.
    wrapped_login_ = client::WrapInfoJson(*login->wrapped);
    client_.ClearToken();
    authenticated_ = true;
    renewable_ = false;
    renew_at_ = absl::InfiniteFuture();
    LogInfo(
        "auth: %s login at %s succeeded, wrapped (wrapping token ttl %ds); writing the wrapping "
        "token to the sink and pausing",
        method.type, method.mount_path, login->wrapped->ttl);
    WriteSinksIfPending();
    return absl::OkStatus();
  }
  const client::Auth* auth = &login->auth;
  client_.SetToken(auth->client_token);
  authenticated_ = true;
  renewable_ = auth->renewable;
  renew_at_ = auth->lease_duration > 0 ? absl::Now() + client::RenewAfter(auth->lease_duration)
                                       : absl::InfiniteFuture();
  LogInfo("auth: %s login at %s succeeded (token ttl %ds, %s)", method.type, method.mount_path,
          auth->lease_duration, auth->renewable ? "renewable" : "not renewable");
  WriteSinksIfPending();
  return absl::OkStatus();
}

void Agent::WriteSinksIfPending() {
  if (!sinks_pending_) return;
  bool all = true;
  for (size_t i = 0; i < config_.sinks.size(); ++i) {
    if (sink_written_[i]) continue;
    const FileSink& sink = config_.sinks[i];
    absl::StatusOr<std::string> content = wrapped_login_;
    if (wrapped_login_.empty()) content = SinkContent(client_, sink, client_.token());
    absl::Status s = content.ok() ? WriteSink(sink, *content) : content.status();
    if (s.ok()) {
      sink_written_[i] = true;
      if (sink.wrap_ttl > absl::ZeroDuration()) {
        LogInfo("auth: sink %s: wrapped token written", sink.path);
      }
    } else {
      // Retried on every pass of the loop (a full or read-only volume may come back); the
      // sinks already written are not written again.
      LogError("auth: %s", s.message());
      all = false;
    }
  }
  sinks_pending_ = !all;
}

void Agent::RenderDue(bool* reauth, absl::Status* fatal) {
  const absl::Time now = absl::Now();
  for (TemplateState& t : templates_) {
    if (t.due > now) continue;
    const TemplateSpec& spec = t.renderer->spec();
    auto result = t.renderer->Render(client_);
    if (result.ok()) {
      t.failures = 0;
      t.rendered = true;
      t.relogged = false;
      t.due = absl::Now() + result->next;
      if (result->changed) {
        LogInfo("template %s: rendered", spec.destination);
        if (!spec.command.empty()) {
          absl::Status ran = runner_->Run(spec.command_index);
          if (!ran.ok()) LogWarn("template %s: command: %s", spec.destination, ran.message());
        }
      }
      continue;
    }
    if (absl::IsPermissionDenied(result.status()) && !t.relogged) {
      // The token was revoked or expired: log in again and retry this template at once. Once
      // only: a policy that denies the path is a failure like any other (back-off, no login
      // storm).
      LogWarn("%s; logging in again", result.status().message());
      *reauth = true;
      t.relogged = true;
      t.due = absl::InfinitePast();
      continue;
    }
    ++t.failures;
    LogError("%s (attempt %d)", result.status().message(), t.failures);
    if (t.failures > kTemplateRetries && config_.template_config.exit_on_retry_failure) {
      *fatal = absl::UnavailableError(absl::StrCat(
          "template ", spec.destination, ": giving up after ", kTemplateRetries, " retries"));
      return;
    }
    t.due = absl::Now() + Backoff(absl::Milliseconds(250), absl::Minutes(1), t.failures);
  }
}

absl::Status Agent::Run() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  // Blocked before any thread starts (the resolver's threads inherit the mask), taken only in
  // sigtimedwait below.
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (!config_.pid_file.empty()) {
    absl::Status s = AtomicWrite(config_.pid_file, absl::StrCat(getpid()), 0600, false);
    if (!s.ok()) return s;
  }
  struct PidFileRemover {
    const std::string& path;
    ~PidFileRemover() {
      if (!path.empty()) unlink(path.c_str());
    }
  } remove_pid{config_.pid_file};

  const AuthMethod& method = *config_.method;
  for (;;) {
    const absl::Time now = absl::Now();
    bool reauth = false;
    if (!authenticated_ && now >= auth_due_) {
      absl::Status s = Authenticate();
      if (s.ok()) {
        auth_failures_ = 0;
      } else {
        ++auth_failures_;
        LogError("auth: %s login failed (attempt %d): %s", method.type, auth_failures_,
                 s.message());
        if (method.exit_on_err) return s;
        auth_due_ = absl::Now() + Backoff(method.min_backoff, method.max_backoff, auth_failures_);
      }
    } else if (authenticated_ && now >= renew_at_) {
      if (renewable_) {
        auto renewed = client_.RenewSelf(0);
        if (renewed.ok() && renewed->lease_duration > 0) {
          renew_at_ = absl::Now() + client::RenewAfter(renewed->lease_duration);
          LogInfo("auth: token renewed (ttl %ds)", renewed->lease_duration);
        } else {
          LogWarn("auth: renewal failed (%s); logging in again",
                  renewed.ok() ? "no lease" : renewed.status().message());
          reauth = true;
        }
      } else {
        reauth = true;  // a token that cannot be renewed is replaced before it expires
      }
    }
    if (authenticated_ && !reauth) {
      WriteSinksIfPending();
      absl::Status fatal;
      RenderDue(&reauth, &fatal);
      if (!fatal.ok()) return fatal;
      if (config_.exit_after_auth && !sinks_pending_ &&
          std::all_of(templates_.begin(), templates_.end(),
                      [](const TemplateState& t) { return t.rendered; })) {
        LogInfo("exit_after_auth: every template rendered; exiting");
        return absl::OkStatus();
      }
    }
    if (reauth) {
      authenticated_ = false;
      wrapped_login_.clear();
      client_.ClearToken();
      auth_due_ = absl::InfinitePast();
      continue;
    }
    // Sleep until the next thing is due, or a signal.
    absl::Time wake = authenticated_ ? renew_at_ : auth_due_;
    if (authenticated_) {
      for (const TemplateState& t : templates_) wake = std::min(wake, t.due);
      if (sinks_pending_) wake = std::min(wake, absl::Now() + absl::Seconds(5));
    }
    absl::Duration wait = std::clamp(wake - absl::Now(), absl::Milliseconds(1), absl::Hours(1));
    const timespec ts = absl::ToTimespec(wait);
    siginfo_t info;
    const int sig = sigtimedwait(&signals, &info, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      LogInfo("received %s; exiting", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      return absl::OkStatus();
    }
    if (sig == SIGHUP) {
      LogInfo("received SIGHUP; rendering every template");
      for (TemplateState& t : templates_) t.due = absl::InfinitePast();
    }
  }
}

}  // namespace strongroom::agent
