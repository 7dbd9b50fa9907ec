# Common helpers for the bats suites that run inside the test VM.
#
#   setup()    { load helpers; dt_setup_devices; }
#   teardown() { dt_cleanup; }
#
# dt_setup_devices also marks the kernel log, and dt_cleanup fails the test
# when the log has a BUG/WARNING/Call Trace/UBSAN/KASAN line since the mark.

# shellcheck disable=SC2154 # status, output, stderr: set by bats' run
DT_LOOP_DEVS=()
DT_LOOP_FILES=()

# Kernel log lines that fail any test: BUG and WARNING cover the debug
# kernel's reports too ("BUG: KASAN: ...", "WARNING: possible circular
# locking dependency detected", "WARNING: suspicious RCU usage", "BUG:
# sleeping function called from invalid context"); they are named as well,
# so that a report with another header still fails.
DT_SPLAT_RE='\<(BUG|WARNING)\>|Call Trace|UBSAN|KASAN|suspicious RCU usage|possible (circular|recursive) locking|inconsistent lock state|lock held when returning|sleeping function called from invalid context|general protection fault|\<Oops\>|ODEBUG|list_(add|del) corruption|blocked for more than'

# dt_dmesg_filter: the kernel log on stdin, less the reports that allocation
# failures print (warn_alloc: "page allocation failure" or "vmalloc error",
# then a stack dump ending in "</TASK>") when DT_DMESG_ALLOW_ALLOC_FAILURE
# is 1: a suite that injects allocation failures sets it. Anything else,
# also a WARNING from the allocator itself, stays.
dt_dmesg_filter() {
	if [ "${DT_DMESG_ALLOW_ALLOC_FAILURE:-0}" != 1 ]; then
		cat
		return
	fi
	awk '/page allocation failure: |vmalloc error: / { skip = 1; next }
	     skip && /<\/TASK>/ { skip = 0; next }
	     !skip { print }'
}

# dt_setup_devices [DATA_SIZE [MD_SIZE]]: a zeroed metadata and a data loop
# device, each over a file on tmpfs (so both support discard and
# write-zeroes). Sizes as for truncate; defaults $DT_DATA_SIZE (64M) and
# $DT_MD_SIZE (1M). Exports MD_DEV, DATA_DEV (and MD_FILE, DATA_FILE).
dt_setup_devices() {
	local data_size=${1:-${DT_DATA_SIZE:-64M}} md_size=${2:-${DT_MD_SIZE:-1M}}
	dmesg_mark
	dt_remember_dm_devices
	MD_FILE=$BATS_TEST_TMPDIR/md.img
	DATA_FILE=$BATS_TEST_TMPDIR/data.img
	dt_loop_device MD_DEV "$MD_FILE" "$md_size"
	dt_loop_device DATA_DEV "$DATA_FILE" "$data_size"
	export MD_DEV DATA_DEV MD_FILE DATA_FILE
}

# dt_loop_device VAR FILE SIZE: a loop device over a new zeroed FILE of SIZE,
# its name stored in VAR; dt_cleanup detaches it and deletes FILE.
dt_loop_device() {
	local var=$1 file=$2 size=$3 dev
	truncate -s "$size" "$file"
	DT_LOOP_FILES+=("$file")
	dev=$(losetup -f --show "$file")
	DT_LOOP_DEVS+=("$dev")
	printf -v "$var" '%s' "$dev"
}

# The dm devices present before the test: dt_cleanup leaves those alone.
dt_remember_dm_devices() {
	DT_DM_BEFORE=$(dt_dm_names)
}

dt_dm_names() {
	dmsetup ls 2>/dev/null | awk '$1 != "No" { print $1 }' | sort
}

# dt_cleanup: remove every dm device the test made (stacked ones first, by
# retrying), detach the loop devices, delete their files, then check the
# kernel log. Safe to call when setup failed half way.
dt_cleanup() {
	local name left dev rc=0
	if [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -n "${DT_DMESG_MARK:-}" ]; then
		echo "kernel log since the test started (last 20 lines):"
		dmesg_since_mark | tail -n 20
	fi
	for _ in 1 2 3 4 5; do
		left=$(comm -13 <(printf '%s\n' "${DT_DM_BEFORE:-}" | sort) <(dt_dm_names))
		[ -n "$left" ] || break
		for name in $left; do
			dmsetup remove --retry "$name" >/dev/null 2>&1 || true
		done
	done
	if [ -n "$left" ]; then
		echo "dt_cleanup: could not remove dm devices: $left" >&2
		rc=1
	fi
	for dev in "${DT_LOOP_DEVS[@]}"; do
		losetup -d "$dev" 2>/dev/null || true
	done
	rm -f "${DT_LOOP_FILES[@]}"
	DT_LOOP_DEVS=() DT_LOOP_FILES=()
	unset MD_DEV DATA_DEV MD_FILE DATA_FILE
	dmesg_check || rc=1
	return $rc
}

# dmesg_mark: write a unique marker into the kernel log; dmesg_check looks
# only at what came after it.
dmesg_mark() {
	DT_DMESG_MARK="dt-test-mark-$$-$RANDOM-$RANDOM"
	echo "$DT_DMESG_MARK ${BATS_TEST_NAME:-}" >/dev/kmsg
}

# dmesg_since_mark: the kernel log after the last dmesg_mark.
dmesg_since_mark() {
	dmesg | awk -v m="${DT_DMESG_MARK:-}" 'found { print } index($0, m) { found = 1 }'
}

# dmesg_check: fails, printing the lines, when the kernel log has a splat
# since dmesg_mark.
dmesg_check() {
	[ -n "${DT_DMESG_MARK:-}" ] || return 0
	dmesg_since_mark | dt_dmesg_filter | grep -Eq "$DT_SPLAT_RE" || return 0
	echo "kernel log has a splat since the test started:" >&2
	dmesg_since_mark | dt_dmesg_filter | grep -E -A 20 "$DT_SPLAT_RE" | head -n 60 >&2
	return 1
}

# run_dirtyctl [--separate-stderr] EXPECTED_STATUS ARGS...: run dirtyctl
# under a 60 s timeout with bats' `run`, echo the command and its output, and
# fail unless it exits with EXPECTED_STATUS ('?' accepts any).
run_dirtyctl() {
	local sep=()
	if [ "$1" = --separate-stderr ]; then
		sep=(--separate-stderr)
		shift
	fi
	local expected=$1
	shift
	echo "\$ dirtyctl $*"
	run "${sep[@]}" timeout 60 dirtyctl "$@"
	[ -z "$output" ] || echo "$output"
	if [ "${#sep[@]}" -gt 0 ] && [ -n "$stderr" ]; then
		echo "stderr: $stderr"
	fi
	if [ "$status" -eq 124 ]; then
		echo "FAIL: dirtyctl $* timed out after 60 s"
		return 1
	fi
	if [ "$expected" != "?" ] && [ "$status" -ne "$expected" ]; then
		echo "FAIL: dirtyctl $* exited $status, expected $expected"
		return 1
	fi
}

# dmsetup_expect_error "TABLE" "TEXT": creating a device from TABLE must fail
# and the kernel log must then contain TEXT (the target's ti->error).
dmsetup_expect_error() {
	local table=$1 expected=$2 name=dt-expect-error mark log
	mark="dt-expect-error-$$-$RANDOM"
	echo "$mark" >/dev/kmsg
	echo "\$ dmsetup create $name --table '$table'"
	run dmsetup create "$name" --table "$table"
	echo "$output"
	if [ "$status" -eq 0 ]; then
		dmsetup remove --retry "$name" >/dev/null 2>&1 || true
		echo "FAIL: table was accepted: $table"
		return 1
	fi
	log=$(dmesg | awk -v m="$mark" 'found { print } index($0, m) { found = 1 }')
	if ! grep -qF -- "$expected" <<<"$log"; then
		echo "FAIL: kernel log has no '$expected' after the refused table; it has:"
		echo "$log"
		return 1
	fi
}

# dt_dm_kname NAME: the kernel name (dm-N) of a dm device, for /sys/block.
dt_dm_kname() {
	dmsetup info -c --noheadings -o blkdevname "$1"
}

# dt_majmin DEV: a block device's major:minor.
dt_majmin() {
	local dev
	dev=$(readlink -f "$1")
	printf '%d:%d\n' "0x$(stat -c %t "$dev")" "0x$(stat -c %T "$dev")"
}

# dt_writer_dirtyctl DIR [BEFORE [AFTER]]: write DIR/dirtyctl, a dirtyctl
# for the backup job (DIRTYCTL=DIR/dirtyctl) that starts a writer as soon as
# the job's view exists, i.e. right after the checkpoint, so that every
# write of it lands after the checkpoint and during the copy: fio, random
# 4 KiB writes over /dev/mapper/dt0 until stopped (dt_stop_writer), in a
# session of its own (killing the job's process group spares it), its pid
# in DIR/fio.pid and its output in DIR/w.log. It returns once fio has
# written: the live set is no longer empty. BEFORE and AFTER are shell
# lines run before and after the real dirtyctl (AFTER sees its status in
# $rc).
dt_writer_dirtyctl() {
	local dir=$1 before=${2:-} after=${3:-} real
	real=$(command -v dirtyctl || echo /dt/userspace/dirtyctl)
	cat >"$dir/dirtyctl" <<EOS
#!/bin/bash
$before
"$real" "\$@"
rc=\$?
$after
if [ "\$1" = view ] && [ "\${3:-}" != --remove ] && [ \$rc = 0 ]; then
	setsid fio --name=w --filename=/dev/mapper/dt0 --rw=randwrite --bs=4k --direct=1 \
	    --ioengine=libaio --iodepth=4 --rate_iops=500 --time_based --runtime=900 \
	    --refill_buffers --randrepeat=0 --output=$dir/w.log \
	    </dev/null >/dev/null 2>&1 &
	echo \$! >$dir/fio.pid
	for i in \$(seq 600); do
		[ "\$(dmsetup status dt0 | cut -d' ' -f6)" != 0 ] && break
		sleep 0.1
	done
fi
exit \$rc
EOS
	chmod +x "$dir/dirtyctl"
}

# dt_stop_writer DIR: the writer of dt_writer_dirtyctl ends; none of its
# writes failed.
dt_stop_writer() {
	local pid
	pid=$(cat "$1/fio.pid")
	rm -f "$1/fio.pid"
	kill -INT "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
	grep -q "err= 0" "$1/w.log"
	! grep -Eq "err= *[1-9]" "$1/w.log" || false
}
