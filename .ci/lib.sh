# Shared by .ci/setup, .ci/test, .ci/demo and bench/: sourced, not run.
# Paths are relative to the repository root, which every script cd's into.

# Debian packages the project needs: Nix, a registry, and the independent
# tools the tests check results with.
NIXPUSH_DEBS="nix-bin docker-registry skopeo umoci busybox-static apache2-utils openssl curl podman runc ca-certificates zstd"

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

# Go programs the tests and benchmarks run, at pinned versions, as
# NAME=PACKAGE@VERSION: distribution v3's registry, the second registry
# implementation every registry test runs against (NIXPUSH_TEST_REGISTRY),
# crane, a benchmark baseline, and oras, which lists an image's
# referrers (its SBOM) in the tests. install_go_tools puts them in
# .work/tools, where internal/testenv (testenv.Tool) looks before PATH.
NIXPUSH_GO_TOOLS="registry=github.com/distribution/distribution/v3/cmd/registry@v3.1.2 crane=github.com/google/go-containerregistry/cmd/crane@v0.22.1 oras=oras.land/oras/cmd/oras@v1.3.6"
# cosign checks the sigstore signatures nixpush writes (docs/supply-chain.md),
# as the other half of skopeo's policy check.
NIXPUSH_GO_TOOLS="$NIXPUSH_GO_TOOLS cosign=github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5"

# install_go_tools installs whatever of NIXPUSH_GO_TOOLS is missing from
# .work/tools or built from another version (go version -m names the
# package and module version a binary was built from). A cold install of
# the registry takes about a minute; go install leaves go.mod alone.
install_go_tools() {
	local spec name pkg version start
	mkdir -p .work/tools
	for spec in $NIXPUSH_GO_TOOLS; do
		name=${spec%%=*} pkg=${spec#*=}
		version=${pkg##*@} pkg=${pkg%@*}
		if go version -m ".work/tools/$name" 2>/dev/null |
			awk -v p="$pkg" -v v="$version" '$1 == "path" && $2 == p { path = 1 } $1 == "mod" && $3 == v { mod = 1 } END { exit !(path && mod) }'; then
			continue
		fi
		log "installing $name $version into .work/tools"
		start=$SECONDS
		GOFLAGS= GOBIN="$(pwd)/.work/tools" go install "$pkg@$version"
		log "installed $name $version in $((SECONDS - start)) s"
	done
}

# build_nixpush builds the static binary into .work/bin/nixpush.
build_nixpush() {
	mkdir -p .work/bin
	go build -tags "$NIXPUSH_TAGS" -trimpath -o .work/bin/nixpush ./cmd/nixpush
}
