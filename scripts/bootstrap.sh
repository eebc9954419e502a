#!/usr/bin/env bash
# Shared by scripts/run.sh and scripts/test.sh: make this (Debian) machine able to run sipphones.
#   bootstrap.sh base    -> python3 with venv, the project's virtualenv in .venv
#   bootstrap.sh test    -> base + every test peer and server (apt), PostgreSQL and Redis running
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-base}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "error: need root (or sudo) to run: $*" >&2; exit 1; fi
}

APT_UPDATED=0
apt_install() {  # install the Debian packages of "$@" that are not installed yet
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> apt-get install ${missing[*]}"
    if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -q >/dev/null; APT_UPDATED=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null || ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    apt_install python3 python3-venv python3-pip
fi
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "sipphones needs Python 3.11 or newer")'

EXTRAS=""
[ "$MODE" = test ] && EXTRAS="[test]"
STAMP=".venv/.installed$EXTRAS"
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PYTHON" -m venv .venv
fi
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    echo "==> pip install -e .$EXTRAS"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    .venv/bin/python -m pip install -q -e ".$EXTRAS" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
    .venv/bin/python -c 'import sipphones' && touch "$STAMP"
fi

# The SIP core compiled with mypyc (setup.py): ~1.7x less CPU per registration. Rebuilt when a
# compiled source changed; SIPPHONES_MYPYC=0 keeps pure Python (the .so files are removed).
MYPYC=${SIPPHONES_MYPYC:-all}
if [ "$MYPYC" = 0 ]; then
    find src -name '*.so' -delete
elif ! .venv/bin/python setup.py -q compiled_fresh >/dev/null 2>&1; then
    command -v gcc >/dev/null || apt_install gcc libc6-dev
    .venv/bin/python -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        || apt_install python3-dev
    # setup.py runs on the venv's setuptools here (no build isolation): one that reads pyproject's license
    .venv/bin/python -m pip install -q "mypy>=1.13" "setuptools>=77" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
    echo "==> compiling the SIP core with mypyc (about a minute)"
    # From scratch: setuptools would copy an unchanged module's old extension (and its old time) from build/
    find src -name '*.so' -delete && rm -rf build
    SIPPHONES_MYPYC=$MYPYC SIPPHONES_MYPYC_REQUIRED=1 .venv/bin/python setup.py -q build_ext --inplace >/dev/null
    .venv/bin/python setup.py -q compiled_fresh || { echo "error: the compiled SIP core is missing or stale" >&2; exit 1; }
fi

[ "$MODE" = test ] || exit 0

# Test peers and servers from Debian's packages.
apt_install curl openssl sqlite3 kamailio kamailio-tls-modules kamailio-sqlite-modules sip-tester dnsmasq-base \
            postgresql redis-server chromium wrk

# Installing kamailio may start its default service on :5060; the tests use their own instances.
if command -v systemctl >/dev/null && systemctl is-active --quiet kamailio 2>/dev/null; then
    as_root systemctl stop kamailio || true
fi

# PostgreSQL on 127.0.0.1:5432 with a "test" database the tests reach as user postgres without a password.
PG_URL=${SIPPHONES_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}
pg_ok() { psql "$PG_URL" -Atqc 'select 1' >/dev/null 2>&1; }
if ! pg_ok; then
    echo "==> starting PostgreSQL"
    ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
    if [ -z "$ver" ]; then echo "error: PostgreSQL is installed but has no cluster" >&2; exit 1; fi
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || as_root pg_ctlcluster "$ver" main start || true
    for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
    if ! pg_ok; then
        # A fresh Debian cluster asks for passwords on TCP: trust loopback for the test user, as CI machines do.
        hba=/etc/postgresql/$ver/main/pg_hba.conf
        if ! as_root grep -q "sipphones-tests" "$hba"; then
            as_root sed -i '1i host all postgres 127.0.0.1/32 trust # sipphones-tests\nhost all postgres ::1/128 trust # sipphones-tests' "$hba"
            as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main reload 2>/dev/null || as_root pg_ctlcluster "$ver" main reload
        fi
        as_root runuser -u postgres -- psql -Atqc "select 1 from pg_database where datname='test'" | grep -q 1 \
            || as_root runuser -u postgres -- createdb test
    fi
    pg_ok || { echo "error: cannot reach PostgreSQL at $PG_URL" >&2; exit 1; }
fi

# Redis on 127.0.0.1:6379.
if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
    echo "==> starting Redis"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
    redis-cli -h 127.0.0.1 ping | grep -q PONG || { echo "error: Redis did not start" >&2; exit 1; }
fi
