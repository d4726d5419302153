# Shared by bench/push.sh, bench/release.sh and bench/run: sourced, not run,
# after .ci/lib.sh, from the repository root. Sourcing it installs an EXIT
# trap that calls bench_stop.

# bench_groups lists the process groups bench_run started, in a file since
# bench_run may run in a pipeline's subshell. A script that bench/run starts
# has its own: stopped by bench/run, it stops its own groups.
bench_groups="$(mktemp)"
# bench_tmp is the TMPDIR of everything bench_run starts: go test's
# temporary directories (fixtures, registries' storage, OCI layouts) go
# there, and are removed even when a killed test cannot remove them.
bench_tmp="$(mktemp -d)"

# bench_run runs a command (go test, which starts registries and adds store
# paths) in a process group of its own, and waits for it. It may run in a
# pipeline's subshell.
bench_run() {
	# In a script `&` never makes a group leader, so setsid does not fork:
	# the group's id is $!.
	TMPDIR="$bench_tmp" setsid -w "$@" &
	echo "$!" >>"$bench_groups"
	wait "$!"
}

# bench_stop stops every process of bench_run's groups, so no registry
# outlives the script, removes bench_tmp and the podman storages the
# compression benchmarks keep in /dev/shm, and deletes any store path a
# killed benchmark left.
bench_stop() {
	local g left
	while read -r g; do
		kill -- -"$g" 2>/dev/null || true
	done <"$bench_groups"
	# Give them a moment to exit before removing what they write to.
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		while read -r g; do
			if kill -0 -- -"$g" 2>/dev/null; then
				sleep 0.5
				continue 2
			fi
		done <"$bench_groups"
		break
	done
	rm -rf "$bench_tmp" /dev/shm/nixpush-bench-podman-*
	left=$(find /nix/store -maxdepth 1 -name '*-nixpush-bench-*' 2>/dev/null || true)
	if [ -n "$left" ]; then
		# shellcheck disable=SC2086 # one store path per word
		nix-store --delete $left >/dev/null 2>&1 || true
	fi
	rm -f "$bench_groups"
}
trap bench_stop EXIT
trap 'exit 130' INT TERM
