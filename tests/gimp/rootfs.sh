#!/usr/bin/env bash
# A Debian 13 (trixie) root filesystem with a real GIMP 3 for the plug-in tests, built once with
# mmdebstrap and cached (GIMP 3 with Python plug-ins is not in Debian 12, which CI runs on).
#
#   tests/gimp/rootfs.sh build     # build unless a complete one is cached; prints its path
#   tests/gimp/rootfs.sh path      # print the path (no build)
#   tests/gimp/rootfs.sh mount     # /proc and /dev inside it (needed by gimp-console)
#   tests/gimp/rootfs.sh umount    # undo mount (and any bind mounts the tests left)
#   tests/gimp/rootfs.sh clean     # unmount and delete it
#
# Where: $STYLEFILL_GIMP_ROOTFS, else ${XDG_CACHE_HOME:-~/.cache}/stylefill/gimp-rootfs.
# Mirror: $STYLEFILL_DEBIAN_MIRROR, else the host's own Debian mirror, else deb.debian.org.
# Needs root (mmdebstrap, chroot, mount). Installs mmdebstrap with apt-get when it is missing.
set -euo pipefail

ROOTFS=${STYLEFILL_GIMP_ROOTFS:-${XDG_CACHE_HOME:-$HOME/.cache}/stylefill/gimp-rootfs}
ROOTFS=${ROOTFS%/}
SUITE=trixie
# gimp hard-depends on python3, python3-gi and gir1.2-gimp-3.0; xvfb and xdotool drive the GUI
# tests (undo, dialogs). No numpy: the plug-in must work
# with GIMP's bare Python, and the tests prove it.
PACKAGES=gimp,ca-certificates,xvfb,xdotool
RECIPE="suite=$SUITE packages=$PACKAGES recipe=1"
STAMP=$ROOTFS/.stylefill-rootfs-ready

die() { echo "rootfs.sh: $*" >&2; exit 1; }

mirror() {
    if [ -n "${STYLEFILL_DEBIAN_MIRROR:-}" ]; then echo "$STYLEFILL_DEBIAN_MIRROR"; return; fi
    local m=""
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
        m=$(awk '/^deb / && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

mounts_below() { findmnt -rn -o TARGET | grep -E "^$1(/|$)" | sort -r || true; }

do_umount() {
    local m
    for m in $(mounts_below "$ROOTFS"); do umount -l "$m" 2>/dev/null || true; done
}

complete() { [ -f "$STAMP" ] && grep -qxF "$RECIPE" "$STAMP"; }

do_build() {
    [ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap and chroot)"
    complete && { echo "$ROOTFS"; return; }
    mkdir -p "$(dirname "$ROOTFS")"
    exec 9>"$ROOTFS.lock"
    flock 9          # a parallel run (another test worker) waits, then reuses our build
    complete && { echo "$ROOTFS"; return; }
    if ! command -v mmdebstrap >/dev/null; then
        echo "rootfs.sh: installing mmdebstrap" >&2
        apt-get update -qq >&2 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >&2 \
            || die "mmdebstrap is missing and apt-get could not install it"
    fi
    local tmp=$ROOTFS.building log=$ROOTFS.build.log t0=$SECONDS
    for d in "$tmp" "$ROOTFS"; do
        [ -z "$(mounts_below "$d")" ] || for m in $(mounts_below "$d"); do umount -l "$m"; done
        rm -rf --one-file-system "$d"
    done
    echo "rootfs.sh: building Debian $SUITE + GIMP 3 in $ROOTFS (once; about a minute)" >&2
    # Translations and docs are dropped (about 175 MB); mmdebstrap cleans the apt cache itself.
    if ! mmdebstrap --variant=minbase --include="$PACKAGES" \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-include=/usr/share/locale/locale.alias' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        "$SUITE" "$tmp" "$(mirror)" >"$log" 2>&1; then
        tail -30 "$log" >&2
        die "mmdebstrap failed (full log: $log)"
    fi
    chroot "$tmp" gimp-console-3.0 --version >&2 || die "gimp-console-3.0 does not run in $tmp"
    mv "$tmp" "$ROOTFS"
    { echo "$RECIPE"; chroot "$ROOTFS" dpkg-query -W gimp python3 python3-gi gir1.2-gimp-3.0; } \
        >"$STAMP.tmp"
    mv "$STAMP.tmp" "$STAMP"
    echo "rootfs.sh: built in $((SECONDS - t0)) s, $(du -xsh "$ROOTFS" | cut -f1)" >&2
    echo "$ROOTFS"
}

do_mount() {
    complete || die "no complete rootfs at $ROOTFS (run: $0 build)"
    exec 9>"$ROOTFS.lock"
    flock 9          # two test workers mount it once
    mountpoint -q "$ROOTFS/proc" || mount -t proc proc "$ROOTFS/proc"
    if ! mountpoint -q "$ROOTFS/dev"; then
        mount --rbind /dev "$ROOTFS/dev"
        mount --make-rslave "$ROOTFS/dev"     # so an unmount never propagates to the host's /dev
    fi
}

case "${1:-build}" in
    build) do_build ;;
    path) echo "$ROOTFS" ;;
    mount) do_mount ;;
    umount) do_umount ;;
    clean)
        do_umount
        [ -z "$(mounts_below "$ROOTFS")" ] || die "still mounted below $ROOTFS; not deleting"
        rm -rf --one-file-system "$ROOTFS" "$ROOTFS.building" "$ROOTFS.lock" "$ROOTFS.build.log" ;;
    -h|--help) sed -n '2,13p' "$0" ;;
    *) die "unknown command ${1} (build, path, mount, umount, clean)" ;;
esac
