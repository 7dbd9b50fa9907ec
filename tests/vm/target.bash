# Helpers for the dirtytrack target suites; loaded after helpers.bash.
#
# They talk to the target with dmsetup only (never dirtyctl), so that the
# target's tests check the kernel's replies independently of the tool.

# dt_create NAME CLUSTER_SECTORS [LENGTH [FEATURE_ARGS...]]
# Creates NAME over $MD_DEV/$DATA_DEV; LENGTH defaults to the data device.
dt_create() {
	local name=$1 cs=$2 len=${3:-$(blockdev --getsz "$DATA_DEV")}
	shift 3 2>/dev/null || shift $#
	local line="0 $len dirtytrack $MD_DEV $DATA_DEV $cs${*:+ $*}"
	echo "# dmsetup create $name --table '$line'" >&3
	dmsetup create "$name" --table "$line"
}

# dt_status NAME FIELD: one field of the status line, named as in
# Documentation/dm-dirtytrack.rst.
dt_status() {
	local name=$1 field=$2 idx
	case $field in
	cluster_sectors) idx=4 ;;
	clusters) idx=5 ;;
	dirty) idx=6 ;;
	frozen) idx=7 ;;
	mode) idx=8 ;;
	health) idx=9 ;;
	uuid) idx=10 ;;
	sequence) idx=11 ;;
	frozen_id) idx=12 ;;
	snapshot) idx=13 ;;
	store_used) idx=14 ;;
	store_sectors) idx=15 ;;
	*) echo "dt_status: unknown field $field" >&2; return 2 ;;
	esac
	dmsetup status "$name" | awk -v i=$idx '$3 == "dirtytrack" { print $i; exit }'
}

# dt_clusters NAME [live|frozen] [TARGET_START]: the set's clusters, one
# index per line, ascending, read through the paged "bitmap" message and
# decoded here (payload grammar in dm-dirtytrack-abi.h).
dt_clusters() {
	local name=$1 set=${2:-live} start=${3:-0} group=0 reply epoch first n payload
	local first_epoch=
	while :; do
		reply=$(dmsetup message "$name" "$start" bitmap "$set" "$group") || return 1
		read -r epoch first n payload <<<"$reply"
		[ -n "$first_epoch" ] || first_epoch=$epoch
		if [ "$epoch" != "$first_epoch" ]; then
			echo "dt_clusters: epoch changed during read" >&2
			return 1
		fi
		if [ "$first" != "$group" ]; then
			echo "dt_clusters: asked for group $group, got $first" >&2
			return 1
		fi
		[ "$n" -gt 0 ] || break
		echo "$first $n $payload"
		group=$((first + n))
	done | awk -v B64="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" '
	function hexval(c) { return index("0123456789abcdef", c) - 1 }
	{
		g = $1; p = $3; i = 1; groups = 0
		while (i <= length(p)) {
			c = substr(p, i, 1)
			if (c == "z") {
				j = index(substr(p, i), ".")
				if (j == 0) { print "bad zero run" > "/dev/stderr"; exit 1 }
				run = 0
				for (k = i + 1; k < i + j - 1; k++) run = run * 16 + hexval(substr(p, k, 1))
				g += run; groups += run; i += j
				continue
			}
			k = index("GHIJKLMN", c)
			if (k > 0) {
				# k bit positions, ascending, one base64url digit each
				for (m = 1; m <= k; m++) {
					pos = index(B64, substr(p, i + m, 1)) - 1
					if (pos < 0) { print "bad position" > "/dev/stderr"; exit 1 }
					print g * 64 + pos
				}
				g++; groups++; i += k + 1
				continue
			}
			for (b = 0; b < 8; b++) {
				v = hexval(substr(p, i + 2 * b, 1)) * 16 + hexval(substr(p, i + 2 * b + 1, 1))
				for (bit = 0; bit < 8; bit++) {
					if (v % 2) print g * 64 + b * 8 + bit
					v = int(v / 2)
				}
			}
			g++; groups++; i += 16
		}
		if (groups != $2) { print "group count mismatch" > "/dev/stderr"; exit 1 }
	}'
}

# dt_ranges: turn ascending cluster indices on stdin into "first-last"
# ranges on one line, e.g. "0-1 5 9-12".
dt_ranges() {
	awk '
	NR == 1 { s = $1; e = $1; next }
	$1 == e + 1 { e = $1; next }
	{ out = out (out ? " " : "") (s == e ? s : s "-" e); s = $1; e = $1 }
	END { if (NR) out = out (out ? " " : "") (s == e ? s : s "-" e); print out }'
}

# dt_write DEV SECTOR NR_SECTORS: O_DIRECT write of random data.
dt_write() {
	dd if=/dev/urandom of="$1" bs=512 seek="$2" count="$3" oflag=direct conv=notrunc status=none
}

# dt_sb_flags DEV: the superblock flags word of a metadata device.
dt_sb_flags() {
	dd if="$1" bs=4096 count=1 iflag=direct status=none | od -An -tu4 -j12 -N4 | tr -d ' '
}

# dt_sb_sequence DEV: the sequence stored in the superblock of DEV.
dt_sb_sequence() {
	dd if="$1" bs=4096 count=1 iflag=direct status=none | od -An -tu8 -j32 -N8 | tr -d ' '
}

# dt_sb_valid DEV: succeeds when the valid flag is set on disk.
dt_sb_valid() {
	[ $(( $(dt_sb_flags "$1") & 1 )) -eq 1 ]
}

# dt_blocks_differ A B: how many 4 KiB blocks of files A and B differ.
dt_blocks_differ() {
	{ cmp -l "$1" "$2" || true; } | awk '{ print int(($1 - 1) / 4096) }' | uniq | wc -l
}

# dt_race_create NAME [FEATURE_ARGS...]: NAME, 4 KiB clusters, over the
# first 32 MiB (8192 blocks) of a dm-delay device that passes reads at once
# and holds writes for 20 ms, but for 1 s in the first 2 MiB: there are
# always writes in flight that stay so for long after a checkpoint, where
# the backup's read starts, so that a read that came too early would see
# them as they were before.
dt_race_create() {
	local name=$1
	shift
	printf '%s\n' "0 4096 delay $DATA_DEV 0 0 $DATA_DEV 0 1000" \
		"4096 61440 delay $DATA_DEV 4096 0 $DATA_DEV 4096 20" |
		dmsetup create "${name}delay"
	DATA_DEV=/dev/mapper/${name}delay dt_create "$name" 8 65536 "$@"
}

# dt_race_again NAME [FEATURE_ARGS...]: NAME fresh for one more
# dt_checkpoint_race: NAME and its delay device removed, the metadata's
# superblock and the data the race writes zeroed, dt_race_create again.
dt_race_again() {
	local name=$1
	dmsetup remove "$name"
	dmsetup remove "${name}delay"
	dd if=/dev/zero of="$MD_DEV" bs=4096 count=1 oflag=direct status=none
	dd if=/dev/zero of="$DATA_DEV" bs=1M count=32 oflag=direct status=none
	dt_race_create "$@"
}

# dt_checkpoint_race NAME: the backup job's loop against a writer that
# writes every 4 KiB block of NAME exactly once, in random order (fio's
# random map), two jobs over the two halves, 32 writes in flight each:
# checkpoint, read the whole device at once (the backup's read), dump the
# frozen set (dirtyctl dump --frozen) and keep its extents of that read,
# commit, again until fio ends (the writer runs 0.2 s between rounds, and
# during checkpoint and commit, and pauses while the round reads); then
# dump the live set. No block is written twice, so a bit lost at a
# checkpoint is never marked again by a later write, and a copy read
# before the block's one write completed holds zeros. Fails unless
#  - the frozen sets and the final live set together hold every block of
#    the device, and nothing past its end (no lost bit: the grace period
#    of dt_swap_live(), the marking in dt_map());
#  - the first copy of each block equals the device (checkpoint returns
#    only when the writes of its frozen set completed: the drain wait);
#  - an incremental backup made of the copies in order and a last copy of
#    the live set equals the device (what a user relies on; the drain wait
#    and the marking again at completion each keep it).
# NAME has 4 KiB clusters and starts all zeros (dt_race_create).
dt_checkpoint_race() {
	local name=$1 dev=/dev/mapper/$1 dir=$BATS_TEST_TMPDIR/race
	local fio_pid fio_rc=0 rounds=0 nonempty=0 k bytes blocks start=$SECONDS
	local uncovered stale lost
	[ "$(dt_status "$name" cluster_sectors)" = 8 ]
	bytes=$(blockdev --getsize64 "$dev")
	blocks=$((bytes / 4096))
	# a race of its own: no set or copy of an earlier one may count
	rm -rf "$dir"
	mkdir -p "$dir"
	# --thread: one process, which SIGSTOP pauses as a whole
	fio --name=w --filename="$dev" --rw=randwrite --bs=4k --direct=1 --thread \
	    --ioengine=libaio --iodepth=32 --numjobs=2 --size=50% --offset_increment=50% \
	    --norandommap=0 --randrepeat=0 --output="$dir/fio.out" &
	fio_pid=$!
	# the first checkpoint once the writes began
	while [ "$(dt_status "$name" dirty)" = 0 ] && kill -0 $fio_pid 2>/dev/null; do
		sleep 0.1
	done
	while kill -0 $fio_pid 2>/dev/null; do
		k=$rounds
		sleep 0.2
		dmsetup message "$name" 0 checkpoint
		# Under TCG on a busy host a round takes seconds: the writer
		# pauses (its writes in flight go on) while the round reads,
		# so that every run has many rounds, whatever the load.
		kill -STOP $fio_pid 2>/dev/null || true
		# the backup's read, at once: the whole device, big direct reads
		dd if="$dev" of="$dir/snap" bs=1M iflag=direct status=none
		dirtyctl dump "$name" --frozen --format bytes >"$dir/f.$k"
		: >"$dir/c.$k"
		dt-copy-extents "$dir/snap" "$dir/c.$k" <"$dir/f.$k" >/dev/null
		kill -CONT $fio_pid 2>/dev/null || true
		dmsetup message "$name" 0 commit
		rounds=$((rounds + 1))
		[ ! -s "$dir/f.$k" ] || nonempty=$((nonempty + 1))
	done
	wait $fio_pid || fio_rc=$?
	dirtyctl dump "$name" --format bytes >"$dir/live"
	echo "# $rounds checkpoints ($nonempty with a frozen set) while $blocks blocks were written, $((SECONDS - start)) s" >&3
	# Every block in the union, nothing past the end.
	uncovered=$(cat "$dir"/f.* "$dir/live" | awk -v n="$blocks" '
		$1 % 4096 || $2 % 4096 || $1 + $2 > n * 4096 { print "bad extent " $0 }
		{ for (b = $1 / 4096; b < ($1 + $2) / 4096; b++) seen[b] = 1 }
		END { m = 0
		      for (b = 0; b < n; b++) if (!(b in seen)) { m++; if (m <= 5) first = first " " b }
		      if (m) print m " blocks in no set:" first }')
	# The first copy of each block: the live set's below, the copies
	# from the last round to the first over it.
	truncate -s "$bytes" "$dir/first"
	dt-copy-extents "$dev" "$dir/first" <"$dir/live" >/dev/null
	for ((k = rounds - 1; k >= 0; k--)); do
		dt-copy-extents "$dir/c.$k" "$dir/first" <"$dir/f.$k" >/dev/null
	done
	stale=$(dt_blocks_differ "$dir/first" "$dev")
	# The incremental backup: the device was all zeros.
	truncate -s "$bytes" "$dir/backup"
	for ((k = 0; k < rounds; k++)); do
		dt-copy-extents "$dir/c.$k" "$dir/backup" <"$dir/f.$k" >/dev/null
	done
	dt-copy-extents "$dev" "$dir/backup" <"$dir/live" >/dev/null
	lost=$(dt_blocks_differ "$dir/backup" "$dev")
	echo "# union: ${uncovered:-every block}; blocks whose first copy is stale: $stale; blocks the backup lacks: $lost; $((SECONDS - start)) s" >&3
	[ "$fio_rc" = 0 ]
	# each job wrote each block of its half once: random map on
	[ "$(grep -c "issued rwts: total=0,$((blocks / 2)),0" "$dir/fio.out")" = 2 ]
	[ "$rounds" -ge 5 ]
	[ "$nonempty" -ge 5 ]
	[ -z "$uncovered" ]
	[ "$stale" = 0 ]
	[ "$lost" = 0 ]
}

# ------------------------------------------------- a failing metadata device
#
# "mdx" is a dm device over $MD_DEV whose table is swapped to make a range
# of it fail (an "error" segment between "linear" ones: dm-flakey has no
# error_reads on 6.1); dt0 is created over it with 128-sector clusters
# (30-metadata.bats, 35-metadata-errors.bats).

# mdx [--suspend] [FIRST NR]: (re)load mdx as $MD_DEV with sectors
# FIRST..FIRST+NR-1 failing every read and write; no range: all of it
# healthy. --suspend suspends mdx on its own before the resume that swaps
# the table in (35-metadata-errors.bats does, as it always did).
mdx() {
	local suspend=0
	if [ "${1:-}" = --suspend ]; then
		suspend=1
		shift
	fi
	local size first=${1:-0} nr=${2:-0} rest table=
	size=$(blockdev --getsz "$MD_DEV")
	rest=$((first + nr))
	[ "$first" -eq 0 ] || table+="0 $first linear $MD_DEV 0"$'\n'
	[ "$nr" -eq 0 ] || table+="$first $nr error"$'\n'
	[ "$rest" -ge "$size" ] || table+="$rest $((size - rest)) linear $MD_DEV $rest"$'\n'
	echo "# mdx: ${table//$'\n'/; }" >&3
	if dmsetup info mdx >/dev/null 2>&1; then
		printf '%s' "$table" | dmsetup load mdx
		[ "$suspend" = 0 ] || dmsetup suspend mdx
		dmsetup resume mdx
	else
		printf '%s' "$table" | dmsetup create mdx
	fi
}

# mdx_all_failing [--suspend]: every I/O to the metadata device fails from
# now on; what it holds stays as it was, as after a power cut.
mdx_all_failing() {
	mdx "$@" 0 "$(blockdev --getsz "$MD_DEV")"
}

# dtx_line [FEATURE_ARGS...]: the table line of dt0 over mdx.
dtx_line() {
	echo "0 $(blockdev --getsz "$DATA_DEV") dirtytrack /dev/mapper/mdx $DATA_DEV 128${*:+ $*}"
}

# dtx_create [FEATURE_ARGS...]: create dt0 over mdx.
dtx_create() {
	local line
	line=$(dtx_line "$@")
	echo "# dmsetup create dt0 --table '$line'" >&3
	dmsetup create dt0 --table "$line"
}

# all_covered: every cluster listed in $COMPLETED (one a line: writes that
# completed, marks that succeeded) is dirty in dt0, in its live or its
# frozen set.
all_covered() {
	local have c
	have=" $(dt_clusters dt0 | tr '\n' ' ')"
	if [ "$(dt_status dt0 frozen)" != - ]; then
		have+="$(dt_clusters dt0 frozen | tr '\n' ' ')"
	fi
	while read -r c; do
		if [[ "$have" != *" $c "* ]]; then
			echo "cluster $c was written (the write completed) but is not dirty;" \
				"health $(dt_status dt0 health), $(dt_status dt0 dirty) dirty"
			return 1
		fi
	done <"$COMPLETED"
}
