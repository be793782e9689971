#!/usr/bin/env bash
# What the tests need besides Go, by part, and the one installer of it:
# scripts/test.sh checks the parts it runs, .ci/run installs them all.
# A part is a set of programs the tests run and the Debian packages that
# provide them (see docs/testing.md).
#
#   bash scripts/deps.sh check PART...      # names what is missing and how to get it; exit 1 if anything is
#   bash scripts/deps.sh install [PART...]  # apt-get installs the missing packages (every part without PART)
#   bash scripts/deps.sh parts              # lists the parts
set -euo pipefail

# part="the programs that tell it is installed | its Debian packages".
# "websockets" stands for python3's websockets module, as the tests import
# it (testprog: /usr/bin/python3 when there is one).
declare -A parts=(
	[lab]="ip nft conntrack | nftables iproute2 conntrack"
	[protoc]="protoc | protobuf-compiler"
	[programs]="curl openssl nginx python3 websockets | curl openssl nginx-light python3 python3-websockets"
	[browser]="chromium | chromium"
	[packaging]="systemd-analyze file | systemd file"
	[image]="buildah busybox openssl file | buildah busybox-static openssl file"
	[nix]="nix-instantiate nix-hash | nix-bin"
	[bench]="wrk | wrk"
)
programs() { echo "${parts[$1]%% |*}"; }
packages() { echo "${parts[$1]#*| }"; }
# Parts that need root as well: the lab's network namespaces, and the
# image, built and run with buildah.
declare -A needs_root=([lab]=1 [image]=1)
all_parts=(lab protoc programs browser packaging image nix bench)

has_program() {
	if [[ $1 == websockets ]]; then
		local python=/usr/bin/python3
		[[ -x $python ]] || python=python3
		"$python" -c 'import websockets' >/dev/null 2>&1
		return
	fi
	command -v "$1" >/dev/null
}

known() {
	local part
	for part in "$@"; do
		[[ -n "${parts[$part]:-}" ]] || { echo "deps.sh: no part '$part' (parts: ${all_parts[*]})" >&2; exit 2; }
	done
}

# check PART...: prints each missing program with its part and package,
# then the command that installs them; fails if any is missing (or a part
# that needs root runs without it).
check() {
	known "$@"
	local part prog missing=() root=()
	for part in "$@"; do
		for prog in $(programs "$part"); do
			has_program "$prog" || missing+=("$part")
		done
		[[ -z "${needs_root[$part]:-}" || $EUID -eq 0 ]] || root+=("$part")
	done
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | grep .)
	((${#missing[@]} + ${#root[@]})) || return 0
	for part in "${missing[@]}"; do
		echo "missing for $part: $(for prog in $(programs "$part"); do has_program "$prog" || printf '%s ' "$prog"; done)(Debian packages: $(packages "$part"))"
	done
	((${#root[@]} == 0)) || echo "needs root: ${root[*]} (run as root)"
	if ((${#missing[@]})); then
		echo "install them with:  sudo bash scripts/deps.sh install ${missing[*]}"
	fi
	return 1
}

# install [PART...]: apt-get installs the packages of the parts (all of
# them when none is named) that dpkg does not list as installed.
install() {
	(($#)) || set -- "${all_parts[@]}"
	known "$@"
	local part pkg missing=()
	for part in "$@"; do
		for pkg in $(packages "$part"); do
			dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
		done
	done
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | grep .)
	((${#missing[@]})) || return 0
	echo "== installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

case "${1:-}" in
check) shift && check "$@" ;;
install) shift && install "$@" ;;
parts) echo "${all_parts[*]}" ;;
*) sed -n '2,9p' "$0" >&2 && exit 2 ;;
esac
