# shellcheck shell=bash
# Helpers shared by tests/packaging/systemd_test.sh and container_test.sh.

# free_port: a TCP port on 127.0.0.1 that nothing listens on now (the tests' containers share the
# machine's network, where 8200 may belong to a dev appliance).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# debian_mirror: prints the Debian 12 (bookworm) archive that this machine's apt sources name
# (deb822 .sources or one-line sources.list), so that the tests which debootstrap a root use the
# archive apt already uses and no address is written in the repository. Prints nothing if none.
debian_mirror() {
  {
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
      awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u}'
    grep -hsE '^deb +(\[[^]]*\] +)?[a-z]+://[^ ]+ +bookworm +' /etc/apt/sources.list \
      /etc/apt/sources.list.d/*.list | sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}'
  } | head -1 || true
}
