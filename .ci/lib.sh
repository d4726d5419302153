# Shared by .ci/setup, .ci/test, .ci/demo and bench/: sourced, not run.
# Paths are relative to the repository root, which every script cd's into.

# Debian packages the project needs: Nix, a registry, and the independent
# tools the tests check results with.
NIXPUSH_DEBS="nix-bin docker-registry skopeo umoci busybox-static apache2-utils openssl curl podman runc ca-certificates"

# Nix settings for every nix command the scripts and tests run, blind to the
# machine's own configuration: NIX_CONF_DIR and NIX_USER_CONF_FILES point at
# an empty nix.conf, so /etc/nix and ~/.config/nix can neither help nor hurt,
# and every setting is passed here. A fresh Debian machine has no nixbld
# group, and Nix running as root defaults build-users-group to it: builds run
# as root instead (the sandbox still isolates them). No binary cache
# (unreachable here, and each build would first spend seconds retrying it),
# the sandbox on, flakes on, and a local flake registry so flake commands
# never try to download the global one. Keep in step with
# internal/testenv/nixconf.go, which does the same for `go test` alone.
nixpush_nix_config() {
	local conf
	conf="$(pwd)/.work/nix-conf"
	mkdir -p "$conf"
	: > "$conf/nix.conf"
	export NIX_CONF_DIR="$conf" NIX_USER_CONF_FILES="$conf/nix.conf"
	export NIX_CONFIG="build-users-group =
sandbox = true
substituters =
experimental-features = nix-command flakes
flake-registry = $(pwd)/.ci/flake-registry.json"
}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# install_debs installs whatever of NIXPUSH_DEBS is missing.
install_debs() {
	local missing=()
	for p in $NIXPUSH_DEBS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing Debian packages: ${missing[*]}"
		local sudo=""
		[ "$(id -u)" = 0 ] || sudo="sudo"
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

export CGO_ENABLED=0
NIXPUSH_TAGS="containers_image_openpgp"

# build_nixpush builds the static binary into .work/bin/nixpush.
build_nixpush() {
	mkdir -p .work/bin
	go build -tags "$NIXPUSH_TAGS" -trimpath -o .work/bin/nixpush ./cmd/nixpush
}
