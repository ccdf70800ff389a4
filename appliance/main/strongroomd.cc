#include "appliance/broker/daemon.h"

int main(int argc, char** argv) { return strongroom::broker::DaemonMain(argc, argv); }
