// `strongroom injector`: the mutating admission webhook that reads the vault.hashicorp.com/*
// annotations (docs/secret-delivery.md).
#pragma once

namespace strongroom::injector {

// argv[0] is "injector"; returns the process exit status.
int Main(int argc, char** argv);

}  // namespace strongroom::injector
