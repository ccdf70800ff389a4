# shellcheck shell=bash
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
