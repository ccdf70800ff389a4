// `strongroom csi-provider`: the Secrets Store CSI Driver provider (docs/secret-delivery.md,
// "The CSI provider").
#pragma once

namespace strongroom::csi {

// argv[0] is "csi-provider"; returns the process exit status.
int Main(int argc, char** argv);

}  // namespace strongroom::csi
