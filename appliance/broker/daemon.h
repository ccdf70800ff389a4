// strongroomd: the broker process. Parses flags and config, binds the listener, starts and
// supervises the workers, opens storage and (after the workers exist) the PKCS#11 token, and
// serves until SIGTERM/SIGINT.
#pragma once

namespace strongroom::broker {

int DaemonMain(int argc, char** argv);

}  // namespace strongroom::broker
