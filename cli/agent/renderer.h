// The agent's templates: each parsed once at start, rendered with a `secret` function that
// reads (or, with parameters, writes) through the client, written to its destination only when
// the result changed, then its command run.
//
// When is a template due again? consul-template's rule as Vault Agent applies it: a template
// whose secrets hold no lease (KV v1 and v2, Transit) is re-rendered every
// static_secret_render_interval; one that read a leased secret is re-rendered when two thirds
// of the shortest lease have passed, so the file never holds an expired credential.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/agent/config.h"
#include "cli/template/template.h"
#include "client/client.h"

namespace strongroom::agent {

struct RenderResult {
  bool changed = false;  // the destination was (re)written
  absl::Duration next;   // when to render again, from now
};

class TemplateRenderer {
 public:
  // Reads `source` (bounded), parses the template; errors name the template's destination.
  static absl::StatusOr<std::unique_ptr<TemplateRenderer>> Create(const TemplateSpec& spec,
                                                                  const TemplateSettings& settings);

  // One render. Errors leave the destination as it was; they name the destination and carry the
  // server's or the template's message, never a secret value. A PermissionDenied error means the
  // server refused the token (the caller re-authenticates).
  absl::StatusOr<RenderResult> Render(client::Client& client);

  const TemplateSpec& spec() const { return spec_; }

 private:
  TemplateRenderer(TemplateSpec spec, TemplateSettings settings, tmpl::Template t)
      : spec_(std::move(spec)), settings_(settings), template_(std::move(t)) {}

  TemplateSpec spec_;
  TemplateSettings settings_;
  tmpl::Template template_;
};

// consul-template's Secret for a Vault response, as templates see it: LeaseID, LeaseDuration,
// Renewable, Data, Warnings, RequestID.
boost::json::value SecretValue(const client::Secret& secret);

}  // namespace strongroom::agent
