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

# dt_checkpoint_race NAME CLUSTER_BYTES: the backup-job shape while fio
# writes at random: checkpoint, read the frozen set, commit, again and again.
# Fails unless every cluster fio wrote is in one of the frozen sets read or
# in the final live set.
dt_checkpoint_race() {
	local name=$1 cbytes=$2 log=$BATS_TEST_TMPDIR/fio.log seen=$BATS_TEST_TMPDIR/seen
	local fio_pid rounds=0 missing
	: >"$seen"
	fio --name=w --filename=/dev/mapper/"$name" --rw=randwrite --bs=4k --direct=1 \
	    --ioengine=libaio --iodepth=8 --time_based --runtime=6 --size=100% \
	    --write_iolog="$log" --output=/dev/null &
	fio_pid=$!
	sleep 1
	while kill -0 $fio_pid 2>/dev/null; do
		dmsetup message "$name" 0 checkpoint
		dt_clusters "$name" frozen >>"$seen"
		dmsetup message "$name" 0 commit
		rounds=$((rounds + 1))
	done
	wait $fio_pid
	dt_clusters "$name" live >>"$seen"
	echo "# $rounds checkpoints during the run" >&3
	[ "$rounds" -ge 2 ]
	# fio logs "[<time>] <file> write <offset> <length>" per I/O (iolog v2/v3)
	awk -v cb="$cbytes" '{ for (i = 1; i < NF - 1; i++) if ($i == "write") {
		s = int($(i + 1) / cb); e = int(($(i + 1) + $(i + 2) - 1) / cb)
		for (c = s; c <= e; c++) print c } }' "$log" | sort -un >"$BATS_TEST_TMPDIR/written"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/written")" -gt 100 ]
	sort -un "$seen" >"$BATS_TEST_TMPDIR/tracked"
	missing=$(comm -23 "$BATS_TEST_TMPDIR/written" "$BATS_TEST_TMPDIR/tracked" | head)
	[ -z "$missing" ] || { echo "written but never tracked: $missing"; false; }
}
