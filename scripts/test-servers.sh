# Sourced (not run) by .ci/run, or by hand before `cargo nextest run`: installs, once and cached
# outside the clone, the storage emulators the remote-storage tests start, and exports the
# variables those tests read to find them (tests/it/support/servers.rs):
#   PIVOT_TEST_MOTO     moto's S3 server (PyPI moto[server], in a venv of Debian's python3)
#   PIVOT_TEST_AZURITE  Azurite's blob service (npm azurite)
# A cached install is a check of a stamp, not a reinstall; a version bump here reinstalls.
# Needs python3-venv (Debian, installed by .ci/run) and the machine's Node.js 20 with npm
# (Azurite 3.36 and later want Node.js 21+, hence 3.35).

pivot_servers_cache="${XDG_CACHE_HOME:-$HOME/.cache}/pivot-ci"
pivot_moto_version=5.2.5
pivot_azurite_version=3.35.0
mkdir -p "$pivot_servers_cache"

# moto: a venv whose stamp names the pinned version.
pivot_moto_venv="$pivot_servers_cache/moto-venv"
if [ "$(cat "$pivot_moto_venv/.pivot-stamp" 2>/dev/null)" != "moto[server]==$pivot_moto_version" ] \
    || [ ! -x "$pivot_moto_venv/bin/moto_server" ]; then
    echo "test servers: installing moto[server]==$pivot_moto_version into $pivot_moto_venv" >&2
    rm -rf "$pivot_moto_venv"
    /usr/bin/python3 -m venv "$pivot_moto_venv"
    "$pivot_moto_venv/bin/python" -m pip install -q --disable-pip-version-check \
        "moto[server]==$pivot_moto_version"
    echo "moto[server]==$pivot_moto_version" > "$pivot_moto_venv/.pivot-stamp"
fi
export PIVOT_TEST_MOTO="$pivot_moto_venv/bin/moto_server"

# Azurite: an npm prefix whose stamp names the pinned version.
pivot_azurite_dir="$pivot_servers_cache/azurite"
if [ "$(cat "$pivot_azurite_dir/.pivot-stamp" 2>/dev/null)" != "azurite@$pivot_azurite_version" ] \
    || [ ! -x "$pivot_azurite_dir/node_modules/.bin/azurite-blob" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "error: npm not found (Azurite installs from the npm registry)" >&2
        return 1
    fi
    echo "test servers: installing azurite@$pivot_azurite_version into $pivot_azurite_dir" >&2
    rm -rf "$pivot_azurite_dir"
    mkdir -p "$pivot_azurite_dir"
    npm install --silent --no-audit --no-fund --prefix "$pivot_azurite_dir" \
        "azurite@$pivot_azurite_version" >/dev/null
    echo "azurite@$pivot_azurite_version" > "$pivot_azurite_dir/.pivot-stamp"
fi
export PIVOT_TEST_AZURITE="$pivot_azurite_dir/node_modules/.bin/azurite-blob"

"$PIVOT_TEST_MOTO" --help >/dev/null
"$PIVOT_TEST_AZURITE" --version >/dev/null
echo "test servers: moto $pivot_moto_version, azurite $pivot_azurite_version" >&2
