#!/usr/bin/env bash
# Install ecgd on a Raspberry Pi (64-bit Raspberry Pi OS) from a checkout.
#
#   sudo systemd/install.sh             # install or upgrade
#   sudo systemd/install.sh --with-bridge   # ... and the MQTT bridge (ecgd-bridge.service)
#   systemd/install.sh --dry-run        # print the steps, change nothing
#
# Idempotent: running it again upgrades the package in the venv, refreshes
# the unit and the sysusers file, and never overwrites /etc/ecgd/ecgd.yaml.
set -euo pipefail

PREFIX=/opt/ecgd
VENV="$PREFIX/venv"
CONF_DIR=/etc/ecgd
CONF="$CONF_DIR/ecgd.yaml"
UNIT_DST=/etc/systemd/system/ecgd.service
SYSUSERS_DST=/usr/lib/sysusers.d/ecgd.conf
BRIDGE_UNIT_DST=/etc/systemd/system/ecgd-bridge.service
BRIDGE_SYSUSERS_DST=/usr/lib/sysusers.d/ecgd-bridge.conf
APT_PACKAGES=(python3-venv python3-dev libsystemd-dev pkg-config gcc i2c-tools)

SRC="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
DRY_RUN=0
SKIP_APT=0
WITH_BRIDGE=0

usage() {
    cat <<EOF
Usage: $(basename -- "$0") [--dry-run] [--skip-apt] [--with-bridge] [-h|--help]

Installs ecgd from $SRC:
  apt packages (${APT_PACKAGES[*]}),
  system user 'ecgd' (in group i2c) via $SYSUSERS_DST,
  a venv in $VENV with the package, the config $CONF (only if absent),
  the unit $UNIT_DST.

  --dry-run   print every step instead of running it (no root needed)
  --skip-apt  do not run apt-get (packages already present / offline)
  --with-bridge  also the MQTT bridge: user 'ecgd-bridge' (group systemd-journal),
              the [bridge] extra, the unit $BRIDGE_UNIT_DST (not enabled)
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --skip-apt) SKIP_APT=1 ;;
        --with-bridge) WITH_BRIDGE=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "unknown option: $1" >&2
            usage >&2
            exit 64
            ;;
    esac
    shift
done

step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }

# Print a command; run it unless --dry-run.
run() {
    printf '    + %s\n' "$*"
    if [[ $DRY_RUN -eq 0 ]]; then
        "$@"
    fi
}

if [[ $DRY_RUN -eq 1 ]]; then
    echo "ecgd installer: DRY RUN, nothing will be changed."
elif [[ $EUID -ne 0 ]]; then
    echo "ecgd installer: run as root (sudo $0), or use --dry-run." >&2
    exit 77
fi

# Files we install must be readable by the ecgd user.
umask 022

for f in systemd/ecgd.service systemd/ecgd.sysusers pyproject.toml; do
    if [[ ! -f "$SRC/$f" ]]; then
        echo "not an ecgd checkout: $SRC/$f is missing" >&2
        exit 66
    fi
done

step "Check platform"
# The userland decides which wheels pip picks: 32-bit Raspberry Pi OS runs a
# 64-bit kernel on recent Pis (uname -m says aarch64), so ask dpkg first.
if command -v dpkg >/dev/null; then arch="$(dpkg --print-architecture)"; else arch="$(uname -m)"; fi
case "$arch" in
    arm64 | aarch64 | amd64 | x86_64) note "architecture $arch: TFLite runtime wheels available" ;;
    *)
        # tflite-runtime / ai-edge-litert publish no wheels for armv7l/armv6l.
        msg="architecture $arch has no TFLite runtime wheels; use 64-bit Raspberry Pi OS (aarch64)"
        if [[ $DRY_RUN -eq 1 ]]; then warn "$msg"; else
            echo "ERROR: $msg" >&2
            exit 69
        fi
        ;;
esac
if [[ ! -d /run/systemd/system ]]; then
    warn "systemd is not running as init here; the unit is installed but cannot be started"
fi

step "Install system packages"
if [[ $SKIP_APT -eq 1 ]]; then
    note "skipped (--skip-apt): ${APT_PACKAGES[*]}"
else
    # libsystemd-dev, pkg-config, gcc and python3-dev build systemd-python,
    # which has no wheels; i2c-tools provides i2cdetect for checking wiring.
    run apt-get update
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
fi

step "Create system user ecgd (sysusers.d)"
run install -D -m 0644 "$SRC/systemd/ecgd.sysusers" "$SYSUSERS_DST"
run systemd-sysusers "$(basename -- "$SYSUSERS_DST")"

step "Create venv $VENV and install the package"
if [[ -x "$VENV/bin/python" ]]; then
    note "venv exists, reusing it"
else
    run install -d -m 0755 "$PREFIX"
    run python3 -m venv "$VENV"
fi
run "$VENV/bin/python" -m pip install --upgrade pip
# Not editable: the service must not depend on the checkout staying around.
# [gpio]: libgpiod bindings, used only when leads.lo_plus_line / lo_minus_line are set.
# [bridge]: paho-mqtt and rich, for ecgd bridge / ecgd ward (only with --with-bridge).
EXTRAS=gpio
if [[ $WITH_BRIDGE -eq 1 ]]; then EXTRAS=gpio,bridge; fi
run "$VENV/bin/python" -m pip install --upgrade "${SRC}[${EXTRAS}]"
if [[ -f "$SRC/README.md" ]]; then
    run install -m 0644 "$SRC/README.md" "$PREFIX/README.md"
fi

step "Install configuration $CONF"
# /etc/ecgd stays root:root 0755 (ConfigurationDirectory= default); the file
# is root:ecgd 0640 so only root and the service can read it.
run install -d -m 0755 -o root -g root "$CONF_DIR"
if [[ -e "$CONF" ]]; then
    note "$CONF exists, kept unchanged"
    if [[ -f "$SRC/config/ecgd.yaml" ]] && ! cmp -s "$SRC/config/ecgd.yaml" "$CONF"; then
        note "it differs from the shipped default; compare with: diff -u $CONF $SRC/config/ecgd.yaml"
    fi
elif [[ -f "$SRC/config/ecgd.yaml" ]]; then
    run install -m 0640 -o root -g ecgd "$SRC/config/ecgd.yaml" "$CONF"
else
    msg="$SRC/config/ecgd.yaml is missing; cannot install a default configuration"
    if [[ $DRY_RUN -eq 1 ]]; then warn "$msg"; else
        echo "ERROR: $msg" >&2
        exit 66
    fi
fi

step "Check configuration and model (no hardware access)"
# Same validation the daemon does at start (exit 78 there); catching it here
# beats a unit that fails right after `systemctl enable --now`.
if [[ $DRY_RUN -eq 1 ]]; then
    printf '    + %s\n' "$VENV/bin/ecgd check-config --config $CONF"
elif [[ -e "$CONF" ]]; then
    if out="$("$VENV/bin/ecgd" check-config --config "$CONF" 2>&1)"; then
        note "$(printf '%s\n' "$out" | tail -n 1)"
    else
        warn "ecgd check-config failed; fix $CONF before starting the service:"
        printf '%s\n' "$out" >&2
    fi
fi

step "Install systemd unit $UNIT_DST"
run install -m 0644 "$SRC/systemd/ecgd.service" "$UNIT_DST"
if [[ -d /run/systemd/system || $DRY_RUN -eq 1 ]]; then
    run systemctl daemon-reload
else
    note "systemd not running: skipped systemctl daemon-reload"
fi

if [[ $WITH_BRIDGE -eq 1 ]]; then
    step "Install the MQTT bridge (ecgd-bridge.service)"
    run install -D -m 0644 "$SRC/systemd/ecgd-bridge.sysusers" "$BRIDGE_SYSUSERS_DST"
    run systemd-sysusers "$(basename -- "$BRIDGE_SYSUSERS_DST")"
    run install -m 0644 "$SRC/systemd/ecgd-bridge.service" "$BRIDGE_UNIT_DST"
    if [[ -d /run/systemd/system || $DRY_RUN -eq 1 ]]; then
        run systemctl daemon-reload
    fi
    note "set bridge.broker, site, bed and the login in $CONF (ecgd check-config checks them),"
    note "then: sudo systemctl enable --now ecgd-bridge"
fi

step "Check I2C"
if [[ -e /dev/i2c-1 ]]; then
    grp="$(stat -c %G /dev/i2c-1)"
    mode="$(stat -c %a /dev/i2c-1)"
    if [[ $grp == i2c && $mode == 66? ]]; then
        note "/dev/i2c-1 is root:$grp $mode: ok"
    else
        warn "/dev/i2c-1 is group '$grp' mode $mode; ecgd needs group i2c with rw (0660)." \
            "Raspberry Pi OS sets this with a udev rule; elsewhere add e.g." \
            "'SUBSYSTEM==\"i2c-dev\", GROUP=\"i2c\", MODE=\"0660\"' to /etc/udev/rules.d/99-i2c.rules"
    fi
    if command -v i2cdetect >/dev/null; then
        note "a PCF8591 with A0-A2 low shows up as 48 in: i2cdetect -y 1"
    fi
else
    warn "/dev/i2c-1 not found: enable I2C with 'sudo raspi-config nonint do_i2c 0' and reboot"
fi

if [[ -d /run/systemd/system ]] && systemctl is-active --quiet ecgd 2>/dev/null; then
    note ""
    note "ecgd is running the previous version; restart it to use the new one:"
    note "  sudo systemctl restart ecgd"
fi

printf '\nDone. Next steps:\n'
printf '  %-34s # %s\n' \
    "sudoedit $CONF" "I2C bus/address, channel, model" \
    "i2cdetect -y 1" "the PCF8591 shows up as 48" \
    "sudo systemctl enable --now ecgd" "start now and at every boot" \
    "systemctl status ecgd" "state + the daemon's STATUS line" \
    "journalctl -u ecgd -f" "results and events" \
    "sudo systemctl reload ecgd" "re-read the config (SIGHUP)"
