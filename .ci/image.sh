#!/usr/bin/env bash
# Build the Docker image for real and check what it contains (issue #13 part 6). Root only.
#
# These machines pull no registry image and start no container (the runtime's setrlimit is refused),
# but podman builds with --isolation=chroot. So:
#   1. a Debian bookworm base (debootstrap minbase + python3 + python3-venv) from this machine's own
#      apt source, cached under $CACHE, imported into podman;
#   2. the project and its dependencies as wheels built on the host (the build has no network);
#   3. `podman build --build-arg BASE=<that base>` of the real Dockerfile;
#   4. the image's filesystem exported and its entrypoint run from it with chroot, as uid 10001,
#      inside a new network namespace with no route at all: `consent --show`, `targets check`, one
#      `run --yes` (every target must be `outage`: nothing can be reached), the interpreter's
#      cap_net_raw file capability, and /data owned by 10001 with mode 0700.
# Everything it keeps lives under $CACHE (/var/tmp); the clone gets a wheelhouse/ only while building.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ "$(id -u)" != 0 ]; then
    echo "image: not root, skipped (the image build and check need root)"
    exit 0
fi

CACHE=${REACHPROBE_IMAGE_CACHE:-/var/tmp/reachprobe-ci}
SUITE=bookworm
BASE_IMAGE=localhost/reachprobe-base:$SUITE
IMAGE=localhost/reachprobe:ci
NS=rp-image-$$
WORK=$(mktemp -d "$CACHE/work.XXXXXX" 2>/dev/null || { mkdir -p "$CACHE"; mktemp -d "$CACHE/work.XXXXXX"; })
PODMAN=(podman --root "$CACHE/storage" --runroot "$CACHE/run" --cgroup-manager=cgroupfs)
T0=$(date +%s)

say() { echo "image: $*"; }
fail() { echo "image: FAILED: $*" >&2; exit 1; }
[ -e build ] && KEEP_BUILD=1 || KEEP_BUILD=0
cleanup() {
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$ROOT/wheelhouse" "$WORK"
    [ "$KEEP_BUILD" = 1 ] || rm -rf "$ROOT/build"  # setuptools' leftovers of `pip wheel .`
    if [ -n "${CTR:-}" ]; then "${PODMAN[@]}" rm -f "$CTR" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# The apt source this machine is configured with (deb822 .sources or a one-line sources.list).
mirror() {
    local uri
    uri=$(grep -h -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | head -n1 || true)
    if [ -z "$uri" ]; then
        uri=$(grep -h -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
              | awk '{for (i = 2; i <= NF; i++) if ($i !~ /^\[/) {print $i; exit}}' | head -n1 || true)
    fi
    [ -n "$uri" ] || fail "no apt source found in /etc/apt/sources.list*"
    echo "$uri"
}

# --- 1. the base -------------------------------------------------------------------------------------
if ! "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
    if [ ! -s "$CACHE/base-$SUITE.tar" ]; then
        say "debootstrap $SUITE minbase (python3, python3-venv) from $(mirror)"
        rm -rf "$CACHE/rootfs-$SUITE"
        debootstrap --variant=minbase --include=python3,python3-venv "$SUITE" "$CACHE/rootfs-$SUITE" "$(mirror)" \
            > "$CACHE/debootstrap.log" 2>&1 || { tail -n 20 "$CACHE/debootstrap.log" >&2; fail "debootstrap"; }
        rm -rf "$CACHE/rootfs-$SUITE"/var/cache/apt/archives/*.deb "$CACHE/rootfs-$SUITE"/var/lib/apt/lists/*
        tar -C "$CACHE/rootfs-$SUITE" -cf "$CACHE/base-$SUITE.tar.tmp" . && mv "$CACHE/base-$SUITE.tar.tmp" "$CACHE/base-$SUITE.tar"
        rm -rf "$CACHE/rootfs-$SUITE"
    fi
    "${PODMAN[@]}" import "$CACHE/base-$SUITE.tar" "$BASE_IMAGE" >"$WORK/import.log" 2>&1 \
        || { cat "$WORK/import.log" >&2; fail "podman import of the base"; }
fi
say "base $BASE_IMAGE ready ($(( $(date +%s) - T0 )) s)"

# --- 2. wheels -------------------------------------------------------------------------------------
T1=$(date +%s)
python3 -m pip wheel -q . -w "$ROOT/wheelhouse" > "$WORK/wheel.log" 2>&1 \
    || { tail -n 20 "$WORK/wheel.log" >&2; fail "pip wheel"; }
say "wheelhouse: $(ls "$ROOT/wheelhouse" | wc -l) wheels ($(( $(date +%s) - T1 )) s)"

# --- 3. build ---------------------------------------------------------------------------------------
T2=$(date +%s)
"${PODMAN[@]}" build --isolation=chroot --pull=never --build-arg "BASE=$BASE_IMAGE" \
    -t "$IMAGE" -f Dockerfile . > "$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log" >&2; fail "podman build"; }
BUILD_S=$(( $(date +%s) - T2 ))
say "built $IMAGE in $BUILD_S s"

# --- 4. export and check ------------------------------------------------------------------------------
CTR=$("${PODMAN[@]}" create "$IMAGE")
FS=$WORK/rootfs
mkdir -p "$FS"
# --xattrs: the file capability is an extended attribute and must survive the export
"${PODMAN[@]}" export "$CTR" | tar --xattrs --xattrs-include='security.*' -C "$FS" -xf - \
    || fail "export of the image's filesystem"
mapfile -t ENTRY < <("${PODMAN[@]}" image inspect --format '{{range .Config.Entrypoint}}{{println .}}{{end}}' "$IMAGE" | sed '/^$/d')
mapfile -t ENVS < <("${PODMAN[@]}" image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$IMAGE" | sed '/^$/d')
USER_SPEC=$("${PODMAN[@]}" image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$USER_SPEC" = "10001:10001" ] || fail "image USER is '$USER_SPEC', not 10001:10001"
say "entrypoint: ${ENTRY[*]}"

interp=$FS${ENTRY[0]}
caps=$(getcap "$interp" 2>/dev/null || true)
case "$caps" in
    *cap_net_raw*) say "interpreter ${ENTRY[0]} carries: ${caps#"$interp"}" ;;
    *) fail "interpreter ${ENTRY[0]} has no cap_net_raw file capability (getcap: '${caps}')" ;;
esac
data=$(stat -c '%u %a' "$FS/data")
[ "$data" = "10001 700" ] || fail "/data is owner/mode '$data', not '10001 700'"
say "/data: owner 10001, mode 0700"

ip netns add "$NS"
ip -n "$NS" link set lo up
routes=$(ip -n "$NS" route show; ip -n "$NS" -6 route show | grep -v '^::1 \|^local ' || true)
[ -z "$routes" ] || fail "the namespace has routes: $routes"
say "namespace $NS: no route (ip route is empty)"

# The entrypoint, as the image would run it: its env, uid 10001, in the sealed namespace, in a mount
# namespace with /proc and /dev of its own so nothing of the host is written.
in_image() {
    ip netns exec "$NS" unshare --mount --fork --pid sh -c '
        fs=$1; shift
        mount -t proc proc "$fs/proc" && mount --rbind /dev "$fs/dev" && mount -t tmpfs tmpfs "$fs/tmp"
        exec chroot --userspec=10001:10001 "$fs" "$@"' sh "$FS" \
        env -i "${ENVS[@]}" HOME=/data sh -c 'cd /data && exec "$@"' sh "${ENTRY[@]}" "$@"
}

in_image consent --show > "$WORK/consent.out" 2>&1 || { cat "$WORK/consent.out" >&2; fail "consent --show"; }
grep -qi "anyone who can watch\|risk" "$WORK/consent.out" || { cat "$WORK/consent.out" >&2; fail "consent --show printed no notice"; }
say "consent --show: ok ($(wc -l < "$WORK/consent.out") lines)"

in_image targets check /etc/reachprobe/targets.yaml > "$WORK/check.out" 2>&1 \
    || { cat "$WORK/check.out" >&2; fail "targets check"; }
say "targets check: $(tail -n1 "$WORK/check.out")"

set +e
in_image run --yes --quiet --timeout 2 --retries 0 --target-deadline 20 --inject-window 0.5 > "$WORK/run.out" 2>&1
rc=$?
set -e
[ "$rc" = 0 ] || { cat "$WORK/run.out" >&2; fail "run --yes exited $rc"; }
python3 - "$FS/data/results" <<'EOF' || fail "run --yes: not every target is outage"
import json, pathlib, sys
lines = [json.loads(l) for f in sorted(pathlib.Path(sys.argv[1]).glob("*.jsonl")) for l in f.read_text().splitlines()]
statuses = {}
for rec in lines:
    statuses[rec["verdict"]["status"]] = statuses.get(rec["verdict"]["status"], 0) + 1
print(f"image: run --yes: {len(lines)} measurements, statuses {statuses}")
sys.exit(0 if lines and set(statuses) == {"outage"} else 1)
EOF
say "OK: image built in $BUILD_S s, checked; total $(( $(date +%s) - T0 )) s"
