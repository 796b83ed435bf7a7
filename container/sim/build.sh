#!/usr/bin/env bash
# Build the stand-in of the SageMaker Triton image (make sim-image), offline from any image
# registry: debootstrap a minimal Debian from the mirror apt uses on this machine, import it
# as a base image, then `docker build` this folder on top of it (rootfs/: serve, tritonserver).
#
#   container/sim/build.sh            # skips the build when the image is up to date
#   SIM_REBUILD=1 container/sim/build.sh
#
# NOT NVIDIA's image: no GPU, no CUDA, no real DALI or TensorFlow backend. Its tritonserver
# is the nvidia-pytriton wheel's, from the host's Python environment that compose.sim.yml
# mounts read-only (see docs/serving.md). Needs root (debootstrap) and a Docker engine.
#
# Variables: SIM_IMAGE (the tag), SIM_BASE_IMAGE, SIM_SUITE (bookworm), SIM_MIRROR (default:
# the first URI apt is configured with for SIM_SUITE), SIM_REBUILD=1 (build even if current).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
IMAGE=${SIM_IMAGE:-tritonship/sagemaker-tritonserver-sim:24.09-py3}
BASE_IMAGE=${SIM_BASE_IMAGE:-tritonship/sagemaker-tritonserver-sim-base:bookworm}
SUITE=${SIM_SUITE:-bookworm}
# curl: the compose healthcheck. python3 and libpython3.11: a host virtual environment made
# from Debian's own python3 (its base interpreter is then the image's). The libraries: what
# a pyenv-built interpreter links against (ldd of its binary and lib-dynload modules).
PACKAGES=(
    curl ca-certificates python3 libpython3.11 libgomp1
    libbz2-1.0 libcom-err2 libcrypt1 libexpat1 libffi8 libkeyutils1 liblzma5 libncursesw6
    libreadline8 libsqlite3-0 libssl3 libtinfo6 libtirpc3 libuuid1 zlib1g
)

# The base image's settings (docker import --change): what NVIDIA's image sets too.
BASE_CHANGES=(
    "ENV PATH=/opt/tritonserver/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    "ENV PYTHONDONTWRITEBYTECODE=1"
    "EXPOSE 8080"
    'CMD ["serve"]'
)

log() { echo "sim-image: $*" >&2; }

# The inputs of each stage; an image whose label holds the same hash is current.
inputs=$(cd "$here" && cat build.sh Dockerfile rootfs/usr/bin/serve rootfs/opt/tritonserver/bin/tritonserver |
    sha256sum | cut -c1-16)
base_inputs=$(printf '%s\n' "$SUITE" "${PACKAGES[@]}" "${BASE_CHANGES[@]}" | sha256sum | cut -c1-16)

label() {  # label IMAGE KEY: the label's value, empty when the image is missing
    docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

apt_mirror() {  # the first URI apt uses for SUITE (one-line .list or deb822 .sources files)
    local files=() f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    [ "${#files[@]}" -gt 0 ] || return 0
    awk -v suite="$SUITE" '
        function flush() {
            if (!found && deb && uris && suites && enabled) { print uris; found = 1 }
            uris = ""; suites = 0; enabled = 1; deb = 0
        }
        FNR == 1 { flush() }
        found { exit }
        FILENAME !~ /\.sources$/ && /^[[:space:]]*deb[[:space:]]/ {
            sub(/\[[^]]*\][[:space:]]*/, "")
            if ($3 == suite) { print $2; found = 1; exit }
        }
        FILENAME ~ /\.sources$/ {
            if (/^Types:/ && / deb( |$)/) deb = 1
            if (/^URIs:/) uris = $2
            if (/^Suites:/) for (i = 2; i <= NF; i++) if ($i == suite) suites = 1
            if (/^Enabled:[[:space:]]*no/) enabled = 0
            if (/^[[:space:]]*$/) flush()
        }
        END { flush() }
    ' "${files[@]}" 2>/dev/null
}

if [ -z "${SIM_REBUILD:-}" ] && [ "$(label "$IMAGE" io.tritonship.sim.inputs)" = "$inputs" ]; then
    log "$IMAGE is up to date (inputs $inputs)"
    exit 0
fi
docker version --format '{{.Server.Version}}' >/dev/null || {
    log "no Docker engine answers (start dockerd first)"
    exit 1
}
started=$(date +%s)
previous=$(docker image inspect --format '{{.Id}}' "$IMAGE" "$BASE_IMAGE" 2>/dev/null || true)

if [ -n "${SIM_REBUILD:-}" ] || [ "$(label "$BASE_IMAGE" io.tritonship.sim.base-inputs)" != "$base_inputs" ]; then
    command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install debootstrap"; exit 1; }
    mirror=${SIM_MIRROR:-$(apt_mirror)}
    [ -n "$mirror" ] || { log "apt has no mirror for $SUITE; set SIM_MIRROR"; exit 1; }
    rootfs=$(mktemp -d /tmp/tritonship-sim-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    log "debootstrap $SUITE from $mirror (a few minutes)"
    debootstrap --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" \
        "$SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
        tail -n 20 "$rootfs.log" >&2
        exit 1
    }
    rm -f "$rootfs.log"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    changes=(--change "LABEL io.tritonship.sim.base-inputs=$base_inputs")
    for change in "${BASE_CHANGES[@]}"; do changes+=(--change "$change"); done
    tar -C "$rootfs" -c . | docker import "${changes[@]}" - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
fi

log "docker build $IMAGE"
DOCKER_BUILDKIT=0 docker build --quiet --build-arg "BASE=$BASE_IMAGE" --build-arg "INPUTS=$inputs" \
    --tag "$IMAGE" "$here" >/dev/null 2>"$here/.build.log" || { cat "$here/.build.log" >&2; exit 1; }
rm -f "$here/.build.log"
# Drop the images this build replaced (each is a full copy of the file system under vfs).
current=$(docker image inspect --format '{{.Id}}' "$IMAGE" "$BASE_IMAGE")
for id in $previous; do
    grep -q "$id" <<<"$current" || docker image rm "$id" >/dev/null 2>&1 || true
done
size=$(docker image inspect --format '{{.Size}}' "$IMAGE")
log "built $IMAGE in $(($(date +%s) - started)) s, $((size / 1000000)) MB"
