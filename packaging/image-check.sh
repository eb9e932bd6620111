#!/usr/bin/env bash
# Builds Herald's image as the Containerfile's final stage does, from what this
# machine can get (CI cannot pull docker.io images): a Debian root filesystem made
# by mmdebstrap from Debian's packages, plus the release binary, with buildah. Then
# checks the image's settings, runs it, and asks /healthz and `herald healthcheck`.
#
#   packaging/image-check.sh <release binary>
set -euo pipefail
binary=$1
rootfs=/var/tmp/herald-rootfs-bookworm.tar
port=18391
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot BUILDAH_FORMAT=docker

if [ ! -f "$rootfs" ]; then
  # Not a tarball yet: anything of that name (a directory an earlier version made,
  # or what an interrupted run left) goes first. `--format=tar` because the name
  # being written ends in .part, from which mmdebstrap would guess a directory.
  rm -rf "$rootfs" "$rootfs.part"
  mmdebstrap --quiet --format=tar --variant=minbase --include=ca-certificates bookworm \
    "$rootfs.part" http://deb.debian.org/debian
  mv "$rootfs.part" "$rootfs"
fi

build=$(buildah from scratch)
run=""
serving=""
cleanup() {
  [ -n "$serving" ] && kill "$serving" 2>/dev/null || true
  buildah rm "$build" ${run:+"$run"} >/dev/null 2>&1 || true
}
trap cleanup EXIT

# The final stage of the Containerfile, step by step.
buildah add "$build" "$rootfs" / >/dev/null
buildah run "$build" -- sh -c 'useradd --system --uid 10001 --user-group --home-dir /var/lib/herald --create-home herald 2>/dev/null && install -d -m 0700 -o herald -g herald /var/lib/herald/data'
buildah copy --chmod 0755 "$build" "$binary" /usr/local/bin/herald >/dev/null
buildah config --user herald --workingdir /var/lib/herald --env HERALD_BIND=0.0.0.0:8080 \
  --volume /var/lib/herald/data --port 8080 \
  --healthcheck 'CMD herald healthcheck' --healthcheck-interval 30s \
  --healthcheck-timeout 5s --healthcheck-start-period 20s \
  --entrypoint '["herald"]' --cmd serve "$build"
buildah commit --quiet --format docker "$build" localhost/herald:ci >/dev/null

# Its settings: a user of its own, the data volume, the health check kept.
buildah inspect --type image localhost/herald:ci | python3 -c '
import json, sys
c = json.load(sys.stdin)["Docker"]["config"]
assert c["User"] == "herald", c["User"]
assert "/var/lib/herald/data" in c["Volumes"], c["Volumes"]
assert c["Healthcheck"]["Test"] == ["CMD", "herald", "healthcheck"], c["Healthcheck"]
assert c["Entrypoint"] == ["herald"] and c["Cmd"] == ["serve"], (c["Entrypoint"], c["Cmd"])
print("image settings: user herald, volume /var/lib/herald/data, HEALTHCHECK herald healthcheck")
'

# Run it. podman needs setrlimit, which some sandboxes (this CI's) refuse; then the
# image's root filesystem runs under buildah's chroot isolation instead.
run=$(buildah from localhost/herald:ci)
if out=$(podman --storage-driver vfs run --rm localhost/herald:ci check-config 2>&1); then
  echo "podman runs the image (check-config)"
else
  echo "podman cannot run containers here: $(printf '%s\n' "$out" | grep -v 'level=' | head -n 1)"
fi
buildah run --user herald --env HERALD_BIND=127.0.0.1:$port "$run" -- herald serve \
  > /var/tmp/herald-image-run.log 2>&1 &
serving=$!
for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { cat /var/tmp/herald-image-run.log; exit 1; }
buildah run --user herald --env HERALD_BIND=127.0.0.1:$port "$run" -- herald healthcheck
grep -q "First start" /var/tmp/herald-image-run.log
echo "the image runs: /healthz and herald healthcheck answer, the first start created its admin"
