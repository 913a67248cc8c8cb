# Shared by scripts/demo and scripts/test. Sourced, not run.

# System packages the project builds, tests and demos with.
MAGICBELL_SYSTEM_PACKAGES=(nginx haproxy apache2 apache2-utils fcgiwrap wrk lighttpd lighttpd-modules-lua caddy h2o libfcgi-dev libfcgi-bin spawn-fcgi libssl-dev libcurl4-openssl-dev tinyproxy openssl pkg-config curl python3 iproute2 systemd)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs whichever of the packages are missing: with apt-get as root, with
# sudo otherwise, or says what to install.
ensure_system_packages() {
    local missing=()
    for package in "${MAGICBELL_SYSTEM_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
        sudo=sudo
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts the packaged nginx and haproxy on install; this project never uses them.
    for service in nginx haproxy; do
        if [[ " ${missing[*]} " == *" $service "* ]] && command -v systemctl >/dev/null; then
            $sudo systemctl disable --now "$service" >/dev/null 2>&1 || true
        fi
    done
}

# Sanitizer settings for every sanitized process started from here on: the
# reports go to REPORTS_DIR, leaks in libraries we do not own are suppressed.
export_sanitizer_options() {
    local reports="$1"
    export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1"
    export LSAN_OPTIONS="suppressions=$PWD/Tests/sanitizers/lsan.supp:print_suppressions=0"
    export TSAN_OPTIONS="log_path=$reports/tsan:suppressions=$PWD/Tests/sanitizers/tsan.supp"
}

# Fails, printing them, if any sanitizer report is in REPORTS_DIR.
die_on_sanitizer_reports() {
    local reports="$1" what="$2"
    [ -z "$(ls -A "$reports")" ] && return 0
    for report in "$reports"/*; do echo "--- $report"; head -60 "$report"; done >&2
    die "$what reported the problems above"
}

# Installs a PyPI package unless MODULE imports: ensure_python_package MODULE PACKAGE.
ensure_python_package() {
    local module="$1" package="$2"
    python3 -c "import $module" 2>/dev/null && return 0
    say "installing $package (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check "$package" 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$package" \
        || die "cannot install $package (pip install $package)"
}

# PyJWT: the independent JWT library the tests verify tokens with.
ensure_pyjwt() { ensure_python_package jwt pyjwt; }

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts scripts/demo in the background as a terminal would (its own
# session, SIGINT at its default, so that demo_stop's Ctrl-C reaches it) and
# waits until it is up. Sets DEMO_PID and DEMO_DIR; its output goes to LOG.
# The caller's environment passes through (MAGICBELL_DEMO_BINARY, MAGICBELL_TOKEN_TTL, ...).
#   demo_start PORT LOG
demo_start() {
    local port="$1" log="$2"
    MAGICBELL_DEMO_PORT=$port python3 -c '
import os, signal, sys
os.setsid()
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' scripts/demo >"$log" 2>&1 &
    DEMO_PID=$!
    for _ in $(seq 600); do grep -q "demo is running" "$log" && break; kill -0 $DEMO_PID 2>/dev/null || break; sleep 0.1; done
    DEMO_DIR="$(grep -o '/tmp/magicbell-demo\.[A-Za-z0-9]*' "$log" | head -1 || true)"
    grep -q "demo is running" "$log"
}

# The last lines of each of the demo's logs, on stderr: why a test on it failed.
demo_print_logs() {
    for f in "$DEMO_DIR"/logs/*; do echo "--- $f"; tail -20 "$f"; done >&2
}

# Ctrl-C to the demo's whole process group, then waits up to 10 s for it to end.
demo_stop() {
    kill -INT -- -"$DEMO_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.1; done
    ! kill -0 "$DEMO_PID" 2>/dev/null
}
