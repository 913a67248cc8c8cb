# Shared by scripts/demo and scripts/test. Sourced, not run.

# System packages the project builds, tests and demos with.
MAGICBELL_SYSTEM_PACKAGES=(nginx libfcgi-dev libssl-dev openssl pkg-config curl python3 iproute2 systemd)

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
    # Debian starts the packaged nginx on install; this project never uses it.
    if [[ " ${missing[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null; then
        $sudo systemctl disable --now nginx >/dev/null 2>&1 || true
    fi
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

# PyJWT: the independent JWT library the tests verify tokens with.
ensure_pyjwt() {
    python3 -c 'import jwt' 2>/dev/null && return 0
    say "installing PyJWT"
    python3 -m pip install --quiet --disable-pip-version-check pyjwt 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages pyjwt \
        || die "cannot install PyJWT (pip install pyjwt)"
}
