# shellcheck shell=bash
# The set-up the bench scripts (bench/run, bench/exec, bench/net) share; they source it, it does the work:
# packages (apt-get), a work dir removed on exit, bin/rl and bin/rl-testenv,
# the bench user with subordinate ids and a tmpfs /run/user/UID, podman's
# config, the test registry serving busybox as docker.io, and busybox pulled
# by both podman and rl. It leaves: REPO RUNS WARMUP BUSER BUID BGID WORK HOMEDIR
# RUNDIR RL, and log, die, as_user, must. The environment it reads is
# described in bench/run.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_SCRIPT=bench/$(basename "$0")
RUNS=${BENCH_RUNS:-50}
WARMUP=${BENCH_WARMUP:-5}
BUSER=${BENCH_USER:-rlbench}
SUBID=${BENCH_SUBID:-400000}

log() { printf '== %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "$BENCH_SCRIPT" "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and creates the user '$BUSER'); try: sudo $0"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, not '$RUNS'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a non-negative integer, not '$WARMUP'"

# One bench at a time: they share the user and its /run/user/UID.
exec 9>/run/lock/rl-bench.lock
flock -n 9 || die "another bench script holds /run/lock/rl-bench.lock"

# ---- packages ---------------------------------------------------------------
PKGS=(podman runc bubblewrap hyperfine uidmap busybox-static docker-registry
      slirp4netns jq make procps)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "${BENCH_NO_APT:-}" != 1 ] || die "missing packages: ${missing[*]}"
	log "apt-get install ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ---- work dir, cleanup ------------------------------------------------------
WORK=$(mktemp -d /tmp/rl-bench.XXXXXX)
chmod 0755 "$WORK"
SERVE_PID=
RUNDIR=
RUNDIR_CREATED=
RUNDIR_MOUNTED=
BUID=

# Kill every process of the bench user (podman's rootless pause process,
# conmon, a stray container), by pid; the user is dedicated to this bench.
# Zombies are skipped: they are their parent's (often PID 1's) to reap.
user_pids() { ps -o pid=,stat= -u "$BUID" 2>/dev/null | awk '$2 !~ /^Z/ { print $1 }' || true; }
kill_user_procs() {
	[ -n "$BUID" ] || return 0
	local sig pids i
	for sig in TERM KILL; do
		pids=$(user_pids)
		[ -n "$pids" ] || return 0
		# shellcheck disable=SC2086
		kill -s "$sig" $pids 2>/dev/null || true
		for ((i = 0; i < 20; i++)); do
			[ -n "$(user_pids)" ] || return 0
			sleep 0.1
		done
	done
	log "processes of $BUSER still alive: $(user_pids | tr '\n' ' ')"
}

cleanup() {
	local rc=$?
	set +e
	if [ -n "$SERVE_PID" ]; then
		kill -TERM "$SERVE_PID" 2>/dev/null
		wait "$SERVE_PID" 2>/dev/null
	fi
	kill_user_procs
	if [ -n "$RUNDIR_MOUNTED" ]; then umount -l "$RUNDIR"; fi
	if [ -n "$RUNDIR_CREATED" ]; then rm -rf "$RUNDIR"; fi
	if [ "${BENCH_KEEP:-}" = 1 ]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build rl and rl-testenv ------------------------------------------------
if [ -n "${RL_BINARY:-}" ]; then
	log "rl: $RL_BINARY; building bin/rl-testenv"
	make -s -C "$REPO" bin/rl-testenv >&2
else
	log "building bin/rl and bin/rl-testenv"
	make -s -C "$REPO" build bin/rl-testenv >&2
	RL_BINARY=$REPO/bin/rl
fi
# The repo may live under a 0700 home: give the user its own copy of rl and
# of the helpers it runs (rl-core, rl-image, rl-net: found beside it; an
# older build, as RL_BINARY, may have no rl-net).
for b in rl rl-core rl-image rl-net; do
	[ "$b" != rl-net ] || [ -e "$(dirname "$RL_BINARY")/$b" ] || continue
	install -m 0755 "$(dirname "$RL_BINARY")/$b" "$WORK/$b"
done
RL=$WORK/rl

# ---- the bench user -----------------------------------------------------------
if ! id -u "$BUSER" >/dev/null 2>&1; then
	log "useradd $BUSER"
	useradd -m -s /bin/sh "$BUSER"
fi
BUID=$(id -u "$BUSER")
BGID=$(id -g "$BUSER")
[ "$BUID" != 0 ] || die "BENCH_USER '$BUSER' is root"
for f in /etc/subuid /etc/subgid; do
	touch "$f"
	if ! grep -Eq "^($BUSER|$BUID):" "$f"; then
		log "$f: $BUSER:$SUBID:65536"
		echo "$BUSER:$SUBID:65536" >>"$f"
	fi
done

HOMEDIR=$WORK/home
install -d -m 0700 -o "$BUID" -g "$BGID" "$HOMEDIR"
RUNDIR=/run/user/$BUID
if [ -e "$RUNDIR" ]; then
	# Left by an earlier run that could not clean up: nothing of the user's
	# should be running now (the lock above), so start afresh.
	kill_user_procs
	rm -rf "$RUNDIR"
fi
install -d -m 0755 /run/user
install -d -m 0700 -o "$BUID" -g "$BGID" "$RUNDIR"
RUNDIR_CREATED=1
# systemd-logind makes /run/user/UID a tmpfs; this machine has no logind and
# /run on disk, so do what it does: both rl and podman keep their run state there.
if [ "$(findmnt -no FSTYPE -T "$RUNDIR")" != tmpfs ]; then
	mount -t tmpfs -o "mode=0700,uid=$BUID,gid=$BGID,size=10%" tmpfs "$RUNDIR"
	RUNDIR_MOUNTED=1
fi

# Run a command as the bench user with a clean environment.
as_user() {
	setpriv --reuid="$BUID" --regid="$BGID" --init-groups \
		env -i HOME="$HOMEDIR" USER="$BUSER" LOGNAME="$BUSER" \
		XDG_RUNTIME_DIR="$RUNDIR" PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		LANG=C.UTF-8 "$@"
}

# ---- podman's config --------------------------------------------------------
# crun 1.8.1 refuses this host's hybrid cgroups: runc. No systemd: cgroupfs
# and file events. Without a storage.conf podman 4.3 silently picks vfs.
install -d -m 0700 -o "$BUID" -g "$BGID" "$HOMEDIR/.config" "$HOMEDIR/.config/containers"
cat >"$HOMEDIR/.config/containers/containers.conf" <<'EOF'
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cat >"$HOMEDIR/.config/containers/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$HOMEDIR/.local/share/containers/storage"
runroot = "$RUNDIR/containers"
EOF
chown "$BUID:$BGID" "$HOMEDIR/.config/containers/"*.conf

# ---- the registry -------------------------------------------------------------
log "starting the test registry (bin/rl-testenv serve)"
"$REPO/bin/rl-testenv" serve --dir "$WORK/env" --user "$BUSER" --home "$HOMEDIR" \
	>"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVE_PID=$!
for ((i = 0; ; i++)); do
	grep -q '^RL_TEST_REGISTRY=' "$WORK/serve.out" && break
	if ! kill -0 "$SERVE_PID" 2>/dev/null; then
		cat "$WORK/serve.err" >&2
		die "rl-testenv serve failed"
	fi
	[ "$i" -lt 1200 ] || die "rl-testenv serve: no registry after 120 s"
	sleep 0.1
done
log "$(cat "$WORK/serve.out")"

# ---- images -------------------------------------------------------------------
# Run "$@" as the user; on failure print its output and stop.
must() {
	local out
	if ! out=$(as_user "$@" 2>&1); then
		printf '%s\n' "$out" >&2
		die "failed: $*"
	fi
	[ -z "$out" ] || printf '%s\n' "$out"
}

log "podman pull busybox"
must podman pull -q busybox >/dev/null
driver=$(must podman info --format '{{.Store.GraphDriverName}} (native diff: {{index .Store.GraphStatus "Native Overlay Diff"}}), runtime {{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Version}}')
driver=${driver%%$'\n'*}
log "podman storage: $driver"
case $driver in overlay*) ;; *) die "podman does not use overlay: $driver" ;; esac
log "rl pull busybox"
must "$RL" pull -q busybox >/dev/null
log "rl info:"
must "$RL" info | sed 's/^/   /' >&2 || true
podman_digest=$(must podman image inspect --format '{{.Digest}}' busybox)
log "image: docker.io/library/busybox:latest $podman_digest"
