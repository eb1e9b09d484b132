#!/usr/bin/env bash
# Builds a local stand-in for the `python:3.11-slim` base image where no image registry is reachable:
# Debian bookworm (Python 3.11) from Debian's package mirror via debootstrap, imported into the engine under the
# tag the project's Dockerfiles use, so the Dockerfiles stay the real ones. Idempotent: an existing tag is kept.
# Usage: include/docker/build-base-image.sh [TAG]     (needs root, debootstrap and a running Docker engine)
set -euo pipefail
tag="${1:-python:3.11-slim}"
exec 9>"/tmp/mlops-build-base-image.lock" && flock 9  # test workers may ask at once: one builds, the other waits
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag already present"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
echo "building $tag with debootstrap (about a minute) ..."
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$workdir/rootfs" \
  >"$workdir/debootstrap.log" 2>&1 || { tail -20 "$workdir/debootstrap.log" >&2; exit 1; }
# python:3.11-slim has `python` on PATH; so does this image.
ln -sf /usr/bin/python3 "$workdir/rootfs/usr/local/bin/python"
# Trust the same extra CAs as this machine (a TLS-inspecting egress proxy, a corporate CA), so `pip install`
# in a Dockerfile FROM this image reaches PyPI as the host does.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$workdir/rootfs/usr/local/share/ca-certificates/"
  chroot "$workdir/rootfs" update-ca-certificates >/dev/null
fi
rm -rf "$workdir/rootfs/var/cache/apt/archives/"*.deb "$workdir/rootfs/var/lib/apt/lists/"*
tar -C "$workdir/rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["python3"]' - "$tag" >/dev/null
echo "built $tag"
