// `strongroom agent`: Vault Agent's configuration, auto-auth, sinks and templates
// (docs/secret-delivery.md).
#pragma once

namespace strongroom::agent {

// argv[0] is "agent"; returns the process exit status.
int Main(int argc, char** argv);

}  // namespace strongroom::agent
