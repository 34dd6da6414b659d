#!/bin/sh
# The Debian package, end to end (CTest label `package`):
#   tests/package/package_test.sh BUILD_DIR
# builds herdd, herdctl and herd-logger, makes herd_<version>_amd64.deb
# with cpack, checks it with lintian (no errors allowed), installs it with
# `apt-get install ./herd_*.deb` (containerd, runc and tini come from the
# archive when missing), runs the installed `herdd --check-config` on the
# packaged /etc/herd/herd.json, checks the files and the conffile, and
# removes the package again (purge), also when a step fails.
#
# Needs root, dpkg-dev (dpkg-shlibdeps), lintian and a reachable apt
# archive: CI machines are disposable. A machine with a `herd` package
# installed already is left alone (the test fails at once, naming it).
set -eu

build=$(cd "$1" && pwd)
out="$build/package-out"

fail() {
  echo "package_test: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root (apt-get install)"
command -v lintian >/dev/null || fail "lintian is missing (scripts/install-deps installs it)"
command -v dpkg-shlibdeps >/dev/null || fail "dpkg-shlibdeps is missing (dpkg-dev)"
if dpkg-query -W -f='${Status}' herd 2>/dev/null | grep -q "installed"; then
  fail "a herd package is installed on this machine already; not touching it"
fi

cmake --build "$build" -j1 --target herdd herdctl herd-logger
rm -rf "$out"
(cd "$build" && cpack -G DEB -B "$out")
deb=$(ls "$out"/herd_*_amd64.deb)
[ -f "$deb" ] || fail "no herd_*_amd64.deb in $out"
echo "package_test: built $(basename "$deb")"

echo "package_test: lintian"
lintian --fail-on error --tag-display-limit 0 "$deb"

installed=0
cleanup() {
  if [ "$installed" = 1 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get remove -y -q -o DPkg::Lock::Timeout=600 --purge herd >/dev/null 2>&1 ||
      dpkg --purge herd >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT INT TERM

# From here on the package may be (partly) installed: the trap removes it.
installed=1
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "$deb"; then
  # A fresh machine may have no package lists yet for the dependencies.
  apt-get update -q -o DPkg::Lock::Timeout=600
  apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "$deb"
fi

for f in /usr/sbin/herdd /usr/bin/herdctl /usr/libexec/herd/herd-logger \
  /lib/systemd/system/herd.service /etc/herd/herd.json \
  /usr/share/bash-completion/completions/herdctl /usr/share/doc/herd/operations.md \
  /usr/share/doc/herd/copyright; do
  [ -e "$f" ] || fail "$f is not installed"
done
dpkg-query -W -f='${Conffiles}\n' herd | grep -q "/etc/herd/herd.json" ||
  fail "/etc/herd/herd.json is not a conffile"
for dep in containerd runc tini libcurl4 libssl3; do
  dpkg-query -W -f='${Depends}\n' herd | grep -q "$dep" || fail "does not depend on $dep"
done

check=$(/usr/sbin/herdd --check-config 2>&1) || fail "herdd --check-config: $check"
echo "package_test: $check"
echo "$check" | grep -q "valid, 0 component(s)" || fail "unexpected: $check"
/usr/bin/herdctl --help >/dev/null || fail "herdctl --help failed"

apt-get remove -y -q -o DPkg::Lock::Timeout=600 --purge herd
installed=0
[ ! -e /usr/sbin/herdd ] || fail "/usr/sbin/herdd is still there after the purge"
[ ! -e /etc/herd/herd.json ] || fail "/etc/herd/herd.json is still there after the purge"
echo "package_test: ok"
