#!/usr/bin/env bats
# dt-requires-config: CONFIG_FAILSLAB CONFIG_FAIL_PAGE_ALLOC CONFIG_FAIL_MAKE_REQUEST CONFIG_FAULT_INJECTION_DEBUG_FS CONFIG_FAULT_INJECTION_STACKTRACE_FILTER
# dt-dmesg-allow: allocation-failure
#
# The kernel's fault injection where dm-flakey and the error target cannot
# reach (scripts/check lists this suite only for kernels built with the
# options above: the debug kernel of scripts/debug-kernel).
#
#  - Allocation failures: /proc/<pid>/fail-nth makes the Nth allocation of
#    one task fail; failslab and fail_page_alloc count only allocations
#    with dm-dirtytrack's code on the stack (their require-start/end is the
#    module's address range), so N walks through the target's own
#    allocations in the constructor, the resume and the messages, one
#    failure point per round, until rounds pass with no failure injected.
#    Each round either succeeds or fails with an error and leaves nothing
#    behind; no kernel report; every cluster whose write completed stays
#    dirty.
#  - Failed metadata bios at random: fail_make_request on the metadata
#    device (its make-it-fail) fails a share of its bios while a writer
#    writes clusters, each once, with checkpoints and rollbacks in between;
#    then the device heals (or the target is removed while every metadata
#    bio fails, a crash) and the target is activated again: every cluster
#    whose write completed is dirty.
#
# Allocation failures print "page allocation failure" or "vmalloc error"
# reports with a stack dump; the header line above lets them through the
# kernel log check (helpers.bash, dt_dmesg_filter). Everything else fails.
#
# 64 MiB data, 128-sector clusters: 1024 clusters. Longer runs:
# DT_FAULT_ROUNDS (random metadata failure rounds, default 1),
# DT_FAULT_CLUSTERS (clusters written per round, default 96).

FI=/sys/kernel/debug
HOLD_PARAM=/sys/module/dm_dirtytrack/parameters/metadata_hold_seconds

setup() {
	load helpers
	load target
	DT_DMESG_ALLOW_ALLOC_FAILURE=1
	dt_setup_devices
	modprobe dm-dirtytrack
	COMPLETED=$BATS_TEST_TMPDIR/completed
	: >"$COMPLETED"
	HOLD_SAVED=$(cat "$HOLD_PARAM")
	MD_KNAME=$(basename "$(readlink -f "$MD_DEV")")
	fi_setup
}

teardown() {
	fi_restore
	echo "$HOLD_SAVED" >"$HOLD_PARAM"
	dt_cleanup
}

# fi_setup: failslab and fail_page_alloc fail only through fail-nth (no
# probability), GFP_KERNEL allocations included, and only allocations made
# with dm-dirtytrack's code on the stack; one line in the kernel log for
# each failure injected. fail_make_request off.
fi_setup() {
	local name size addr d
	read -r name size _ _ _ addr _ < <(grep '^dm_dirtytrack ' /proc/modules)
	[ "$name" = dm_dirtytrack ] && [ "${addr#0x}" != "$addr" ]
	# The module's text is first in its area; a little data after it is
	# in the range too, which no allocation's stack holds.
	MOD_START=$addr
	MOD_END=$(printf '0x%x' $((addr + size)))
	for d in failslab fail_page_alloc; do
		echo 0 >"$FI/$d/probability"
		echo 1 >"$FI/$d/interval"
		echo -1 >"$FI/$d/times"
		echo 0 >"$FI/$d/space"
		echo N >"$FI/$d/task-filter"
		echo N >"$FI/$d/ignore-gfp-wait"
		echo 32 >"$FI/$d/stacktrace-depth"
		echo "$MOD_START" >"$FI/$d/require-start"
		echo "$MOD_END" >"$FI/$d/require-end"
		echo 1 >"$FI/$d/verbose"
		echo 100000 >"$FI/$d/verbose_ratelimit_burst"
	done
	echo N >"$FI/failslab/cache-filter"
	echo N >"$FI/fail_page_alloc/ignore-gfp-highmem"
	echo 0 >"$FI/fail_page_alloc/min-order"
	echo 0 >"$FI/fail_make_request/probability"
	echo 0 >"$FI/fail_make_request/verbose"
}

fi_restore() {
	local d
	[ -n "${MD_KNAME:-}" ] && echo 0 >"/sys/block/$MD_KNAME/make-it-fail" || true
	echo 0 >"$FI/fail_make_request/probability" || true
	for d in failslab fail_page_alloc; do
		echo 0 >"$FI/$d/probability" || true
		echo 0 >"$FI/$d/require-start" || true
		echo 0xffffffffffffffff >"$FI/$d/require-end" || true
	done
}

# with_fail_nth N CMD...: run CMD (exec'd in place of a shell, so in the
# same task) with its Nth allocation from the target's code failing.
with_fail_nth() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	bash -c 'echo "$1" >/proc/self/fail-nth && shift && exec "$@"' _ "$@"
}

# injected: how many failures fault injection reported in the kernel log.
injected() {
	dmesg | grep -c 'FAULT_INJECTION: forcing a failure' || true
}

# write_once CLUSTER: write its first 4 KiB once; on success the cluster is
# recorded in $COMPLETED. Returns dd's status.
write_once() {
	if timeout 300 dd if=/dev/urandom of=/dev/mapper/dt0 bs=4k seek=$(($1 * 16)) count=1 \
		oflag=direct conv=notrunc status=none; then
		echo "$1" >>"$COMPLETED"
		return 0
	fi
	return 1
}

# no_dt0: a failed dmsetup create left no device behind.
no_dt0() {
	if dmsetup info dt0 >/dev/null 2>&1; then
		echo "a failed create left dt0 behind: $(dmsetup table dt0 2>&1)"
		return 1
	fi
}

# ------------------------------------------------------ allocation failures

# ctr_under_faults [FEATURE_ARGS...]: dmsetup create (table load and resume)
# with its Nth target allocation failing, N = 1, 2, ... until 5 rounds in a
# row succeed with no failure injected. A round that succeeds has every
# cluster written before dirty, health ok, and takes a write; one that
# fails leaves no device. Both with a stored state to load.
ctr_under_faults() {
	local line n st before quiet=0 failed=0 passed=0 max=${DT_FAULT_NTH_MAX:-300}
	line="0 $(blockdev --getsz "$DATA_DEV") dirtytrack $MD_DEV $DATA_DEV 128${*:+ $*}"
	dt_create dt0 128 "" "$@"
	write_once 1
	dmsetup remove dt0
	for ((n = 1; n <= max && quiet < 5; n++)); do
		before=$(injected)
		st=0
		with_fail_nth "$n" dmsetup create dt0 --table "$line" 2>"$BATS_TEST_TMPDIR/err" || st=$?
		if [ "$st" = 0 ]; then
			passed=$((passed + 1))
			all_covered
			# A create that succeeds is not degraded: an allocation
			# failure must never cost the next backup a full copy.
			if [ "$(dt_status dt0 health)" != ok ]; then
				echo "# n=$n: create succeeded with health $(dt_status dt0 health)" >&3
				return 1
			fi
			write_once $((n + 1))
			dmsetup remove dt0
			if [ "$(injected)" = "$before" ]; then
				quiet=$((quiet + 1))
			else
				quiet=0
			fi
		else
			failed=$((failed + 1))
			quiet=0
			echo "# n=$n: $(head -n1 "$BATS_TEST_TMPDIR/err")" >&3
			no_dt0
		fi
	done
	echo "# $((n - 1)) rounds: $failed creates failed cleanly, $passed succeeded" >&3
	# the walk reached the end of the target's allocations
	[ "$quiet" -ge 5 ]
	[ "$failed" -ge 1 ]
	dt_create dt0 128 "" "$@"
	all_covered
	[ "$(dt_status dt0 health)" = ok ]
}

@test "default mode: an allocation failure anywhere in create fails it cleanly" {
	ctr_under_faults
}

@test "crash_safe: an allocation failure anywhere in create fails it cleanly" {
	ctr_under_faults 1 crash_safe
}

# messages_under_faults [FEATURE_ARGS...]: checkpoint, rollback and mark
# with their Nth target allocation failing, N = 1, 2, ... until 5 rounds in
# a row pass with no failure injected; a write to a new cluster before each
# round. Each message succeeds or fails; a failed checkpoint freezes
# nothing; every completed write and every mark that succeeded stays dirty;
# health stays ok (no allocation failure degrades tracking).
messages_under_faults() {
	local n st before quiet=0 failed=0 max=${DT_FAULT_NTH_MAX:-300} c
	dt_create dt0 128 "" "$@"
	for ((n = 1; n <= max && quiet < 5; n++)); do
		c=$((2 * n))
		write_once "$c"
		before=$(injected)
		st=0
		with_fail_nth "$n" dmsetup message dt0 0 checkpoint >/dev/null || st=$?
		all_covered
		if [ "$st" = 0 ]; then
			[ "$(dt_status dt0 frozen)" != - ]
			st=0
			with_fail_nth "$n" dmsetup message dt0 0 rollback || st=$?
			all_covered
			if [ "$st" != 0 ]; then
				failed=$((failed + 1))
				echo "# n=$n: rollback failed" >&3
				dmsetup message dt0 0 rollback
				all_covered
			fi
		else
			failed=$((failed + 1))
			echo "# n=$n: checkpoint failed" >&3
			[ "$(dt_status dt0 frozen)" = - ]
		fi
		st=0
		with_fail_nth "$n" dmsetup message dt0 0 mark $(((c + 1) * 128)) 1 || st=$?
		if [ "$st" = 0 ]; then
			echo $((c + 1)) >>"$COMPLETED"
		else
			failed=$((failed + 1))
			echo "# n=$n: mark failed" >&3
		fi
		all_covered
		if [ "$(injected)" = "$before" ]; then
			quiet=$((quiet + 1))
		else
			quiet=0
		fi
	done
	echo "# $((n - 1)) rounds, $failed messages failed cleanly, health $(dt_status dt0 health)" >&3
	[ "$quiet" -ge 5 ]
	# a message that failed for memory did not degrade tracking
	[ "$(dt_status dt0 health)" = ok ]
	dmsetup remove dt0
	dt_create dt0 128 "" "$@"
	all_covered
}

@test "default mode: allocation failures in checkpoint, rollback and mark lose no bit" {
	messages_under_faults
}

@test "crash_safe: allocation failures in checkpoint, rollback and mark lose no bit" {
	messages_under_faults 1 crash_safe
}

# ------------------------------------------------- failed metadata bios

# md_failing PERCENT: that share of the bios to the metadata device fails
# (0: none).
md_failing() {
	echo "$1" >"$FI/fail_make_request/probability"
	echo 1 >"$FI/fail_make_request/interval"
	echo -1 >"$FI/fail_make_request/times"
	echo N >"$FI/fail_make_request/task-filter"
	echo $(($1 > 0 ? 1 : 0)) >"/sys/block/$MD_KNAME/make-it-fail"
}

# random_md_failures CRASH [FEATURE_ARGS...]: a writer writes clusters in
# random order, each once, while a quarter of the metadata bios fail, with
# a checkpoint, a rollback, a suspend and a resume every 8 writes (in the
# default mode the metadata is written at the first write after each
# activation or resume and at each suspend). Then, CRASH=0: the device
# heals and dt0 is activated again; CRASH=1: every metadata bio fails, dt0
# goes away (what is on the device is what a power cut leaves), the device
# heals, dt0 comes back. Every cluster whose write completed is dirty.
random_md_failures() {
	local crash=$1 round k c i done_writes health failures mark
	shift
	echo 2 >"$HOLD_PARAM"
	for ((round = 1; round <= ${DT_FAULT_ROUNDS:-1}; round++)); do
		: >"$COMPLETED"
		mark="dt-fault-round-$$-$RANDOM-$round"
		echo "$mark" >/dev/kmsg
		dt_create dt0 128 "" "$@"
		md_failing 25
		k=0
		for c in $(shuf -i 0-1023 -n "${DT_FAULT_CLUSTERS:-96}"); do
			write_once "$c" || true
			k=$((k + 1))
			if [ $((k % 8)) = 0 ]; then
				dmsetup message dt0 0 checkpoint >/dev/null 2>&1 || true
				dmsetup message dt0 0 rollback >/dev/null 2>&1 || true
				dmsetup suspend dt0 || true
				# a resume that cannot write its metadata fails: again
				for i in $(seq 20); do
					! dmsetup resume dt0 || break
					sleep 0.2
				done
				[ "$(dmsetup info -c --noheadings -o suspended dt0)" = Active ]
			fi
		done
		health=$(dt_status dt0 health)
		failures=$(dmesg | awk -v m="$mark" 'found { print } index($0, m) { found = 1 }' |
			grep -c 'dirtytrack: .*metadata .*failed' || true)
		done_writes=$(wc -l <"$COMPLETED")
		if [ "$crash" = 1 ]; then
			md_failing 100
			dmsetup remove dt0
		fi
		md_failing 0
		[ "$crash" = 1 ] || dmsetup remove dt0
		dt_create dt0 128 "" "$@"
		echo "# round $round: $done_writes of $k writes completed, $failures metadata failures reported, health then $health, now $(dt_status dt0 health)" >&3
		all_covered
		# the failures were met (else this proved nothing)
		[ "$failures" -ge 1 ]
		[ "$done_writes" -ge 1 ]
		dmsetup remove dt0
		# a fresh metadata device for the next round
		dd if=/dev/zero of="$MD_DEV" bs=1M count=1 oflag=direct status=none
	done
}

@test "default mode: random metadata bio failures, then healed: every completed write is dirty" {
	random_md_failures 0
}

@test "default mode: random metadata bio failures, then a crash: every completed write is dirty" {
	random_md_failures 1
}

@test "crash_safe: random metadata bio failures, then healed: every completed write is dirty" {
	random_md_failures 0 1 crash_safe
}

@test "crash_safe: random metadata bio failures, then a crash: every completed write is dirty" {
	random_md_failures 1 1 crash_safe
}
