#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the benchmarks need.
# Safe to run twice: apt-get skips what is already installed, and the package
# lists are refreshed only when they are missing or older than a day.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config clang llvm libclang-rt-14-dev git
  # agent protocol and static agent
  libprotobuf-c-dev protobuf-c-compiler
  # copy streams (tar) and the static libraries libarchive pulls into the static agent
  libarchive-dev zlib1g-dev liblzma-dev libzstd-dev libbz2-dev liblz4-dev libacl1-dev nettle-dev
  # daemon-side libraries (product card)
  libjansson-dev libcurl4-openssl-dev libssl-dev libxml2-dev libmicrohttpd-dev
  # image store: ext4 images written without mounting
  libext2fs-dev
  # guest boot: VMs through libvirt's embedded QEMU driver, test root disks
  libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils
  busybox-static e2fsprogs cpio kmod
  # our own small guest kernel (scripts/build-kernel.sh, the slow test)
  linux-source bc flex bison libelf-dev xz-utils lz4
  # image store tests: a loopback registry, images built and pushed locally
  docker-registry skopeo umoci apache2-utils zstd
  # container networking: bridges and taps (iproute2), NAT and published ports
  # (libnftables; nft for operators), user-mode networking measured against passt
  iproute2 nftables libnftables-dev passt
  # tests and benchmarks (python3: the socket clients of scripts/bench-usernet.sh and bench-net.sh;
  # curl and jq: the networking e2e test and bench-net.sh in their namespace)
  libcmocka-dev hyperfine procps python3 curl jq
)

# The docker CLI for the Docker front end's test and benchmark: these machines
# ship /usr/local/bin/docker (28.2.2); where there is none, Debian's docker.io
# (20.10, API 1.41, the front end's minimum) brings one. Its daemon is not
# needed: portlayerd answers the CLI.
command -v docker >/dev/null 2>&1 || packages+=(docker.io)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: must run as root (it installs Debian packages)" >&2
  exit 1
fi

# libvirt's embedded QEMU driver looks up its built-in user before it reads
# our qemu.conf (which names it as the default QEMU user; the daemon gives
# each container VM a uid of its own): without it, opening fails with
# "Failed to parse user 'libvirt-qemu'". libvirt-daemon-system would create it
# but also brings services and AppArmor profiles we do not want.
# The group 'portlayer' may use the daemon's API socket (0660 root:portlayer;
# docs/security.md): membership is as good as root on this host.
ensure_libvirt_user() {
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  getent passwd libvirt-qemu >/dev/null || useradd --system --gid libvirt-qemu --no-create-home \
    --home-dir /var/lib/libvirt --shell /usr/sbin/nologin libvirt-qemu
  getent group portlayer >/dev/null || groupadd --system portlayer
}

# Every container VM's QEMU runs under a uid of its own, so /dev/kvm must be
# usable by every user: mode 0666, systemd's own udev default. It matters even
# without KVM: libvirt drops its cached QEMU capabilities whenever qemu.conf's
# user cannot open /dev/kvm but its capability probe (which keeps
# CAP_DAC_OVERRIDE) could, and probes QEMU again at every domain start
# (measured here with /dev/kvm 0600: 85-100 s per container start instead of 9).
ensure_kvm_mode() {
  [ -c /dev/kvm ] && chmod 0666 /dev/kvm
  if [ -d /etc/udev/rules.d ] && [ ! -e /etc/udev/rules.d/65-portlayer-kvm.rules ]; then
    echo 'KERNEL=="kvm", MODE="0666"' >/etc/udev/rules.d/65-portlayer-kvm.rules
  fi
  return 0
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  ensure_libvirt_user
  ensure_kvm_mode
  echo "setup.sh: all ${#packages[@]} packages present"
  exit 0
fi

stamp=/var/lib/apt/periodic/update-success-stamp
lists=$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n1)
if [ -z "$lists" ]; then
  echo "setup.sh: refreshing package lists"
  apt-get update -q
fi
echo "setup.sh: installing ${missing[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
ensure_libvirt_user
ensure_kvm_mode
