#!/usr/bin/env bats
# dirtyctl against the real target: every command, every dump format, the
# errors a user sees, and a real `ddrescue --domain-mapfile` run driven by
# the ddrescue dump. What dirtyctl reports is checked against the kernel's
# own replies, read with dmsetup and decoded by target.bash (dt_status,
# dt_clusters), never by dirtyctl itself.
#
# Under TCG every process costs a lot: the tests compare whole lines in bash
# and ask jq once per object rather than once per key.

bats_require_minimum_version 1.5.0

setup() {
	load helpers
	load target
	dt_setup_devices
}

teardown() {
	# a name dt_cleanup's `dmsetup ls` would print mangled
	[ -z "${ODD_NAME:-}" ] || dmsetup --manglename none remove --retry "$ODD_NAME" || true
	dt_cleanup
}

# eq ACTUAL EXPECTED: fails showing both when they differ.
eq() {
	if [ "$1" != "$2" ]; then
		printf 'FAIL: expected:\n%s\nactual:\n%s\n' "$2" "$1"
		return 1
	fi
}

# no_stdout_and_stderr TEXT: after run_dirtyctl --separate-stderr, stdout is
# empty and stderr is exactly TEXT.
no_stdout_and_stderr() {
	eq "$output" ""
	eq "$stderr" "$1"
}

# The usage hint that follows every usage error.
HINT="Try 'dirtyctl --help' for more information."

# wr SECTOR NR_SECTORS: an O_DIRECT write of random data to dt0, like
# dt_write but in one system call however long.
wr() {
	dd if=/dev/urandom of=/dev/mapper/dt0 bs=$(($2 * 512)) count=1 iflag=fullblock \
		seek=$(($1 * 512)) oflag=direct,seek_bytes conv=notrunc status=none
}

# ranges_to_clusters CLUSTER_SECTORS [TARGET_START]: the clusters that
# "start nr" sector lines on stdin cover, one per line, ascending.
ranges_to_clusters() {
	awk -v cs="$1" -v st="${2:-0}" '{
		for (c = int(($1 - st) / cs); c <= int(($1 - st + $2 - 1) / cs); c++) print c
	}'
}

# ddl START NR STATUS: one ddrescue mapfile data line for a sector extent,
# spaced as ddrescue writes them.
ddl() {
	printf '0x%08X  0x%08X  %s\n' $(($1 * 512)) $(($2 * 512)) "$3"
}

# after_header: the lines of $output after the 5 header lines of a mapfile.
after_header() {
	printf '%s\n' "${lines[@]:5}"
}

# line_is INDEX LABEL VALUE: line INDEX of $output is LABEL padded to 17
# columns, then VALUE (the layout of `inspect`).
line_is() {
	local want
	printf -v want '%-17s%s' "$2" "$3"
	eq "${lines[$1]}" "$want"
}

# A dt0 of 131032 sectors (its last cluster 88 sectors long) with 64 KiB
# clusters, written so that its extents are: a write straddling clusters
# 0 and 1; clusters 10 and 11 by two writes (coalesced); cluster 20 by one
# sector; the last sector of the device (the short tail cluster).
KNOWN_RANGES="0 256
1280 256
2560 128
130944 88"
known_writes() {
	dt_create dt0 128 131032
	wr 124 8
	wr 1280 8
	wr 1500 8
	wr 2565 1
	wr 131031 1
}

# ---------------------------------------------------------------- status

@test "status says how much changed, in how many clusters, what is frozen, the mode, health, sequence and uuid" {
	local uuid
	dt_create dt0 128
	wr 124 8
	dmsetup message dt0 0 clear
	wr 124 8
	wr $((7 * 128)) 1
	wr $((7 * 128 + 5)) 1
	uuid=$(dt_status dt0 uuid)
	[[ $uuid =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]
	run_dirtyctl --separate-stderr 0 status dt0
	eq "$stderr" ""
	eq "${lines[0]}" "dt0: 192 KiB of 64 MiB changed (3 of 1024 clusters of 64 KiB), frozen: none, mode default, health ok, sequence 1"
	eq "${lines[1]}" "uuid: $uuid"

	dmsetup message dt0 0 checkpoint
	wr $((100 * 128)) 1
	run_dirtyctl --separate-stderr 0 status dt0
	eq "${lines[0]}" "dt0: 64 KiB of 64 MiB changed (1 of 1024 clusters of 64 KiB), frozen: 192 KiB (3 clusters), mode default, health ok, sequence 1"
}

@test "status -b prints every size as an exact byte count" {
	dt_create dt0 128
	wr 124 8
	dmsetup message dt0 0 checkpoint
	wr $((50 * 128)) 1
	run_dirtyctl --separate-stderr 0 status -b dt0
	eq "${lines[0]}" "dt0: 65536 bytes of 67108864 bytes changed (1 of 1024 clusters of 65536 bytes), frozen: 131072 bytes (2 clusters), mode default, health ok, sequence 0"
	run_dirtyctl --separate-stderr 0 status --bytes dt0
	eq "${lines[0]}" "dt0: 65536 bytes of 67108864 bytes changed (1 of 1024 clusters of 65536 bytes), frozen: 131072 bytes (2 clusters), mode default, health ok, sequence 0"
}

# status_json_matches_dmsetup: the status keys of `status --json` (in
# $output), as JSON values, equal the fields of `dmsetup status dt0`:
# strings quoted, numbers bare, frozen_clusters null for '-'.
status_json_matches_dmsetup() {
	local cs clusters dirty frozen mode health uuid seq
	read -r _ _ _ cs clusters dirty frozen mode health uuid seq _ <<<"$(dmsetup status dt0)"
	[ "$frozen" != - ] || frozen=null
	eq "$(jq -r '[.device, .uuid, .sequence, .cluster_sectors, .clusters, .dirty_clusters,
		.frozen_clusters, .mode, .health, .suspended, .start_sector, .length_sectors,
		.size_bytes] | map(tojson) | join(" ")' <<<"$output")" \
		"\"dt0\" \"$uuid\" $seq $cs $clusters $dirty $frozen \"$mode\" \"$health\" false 0 131072 67108864"
}

@test "status --json has the target's status fields with dmsetup's values, frozen_clusters null until a checkpoint" {
	dt_create dt0 128
	wr 0 8
	wr $((3 * 128)) 300
	dmsetup message dt0 0 checkpoint
	dmsetup message dt0 0 commit
	wr $((20 * 128)) 8
	run_dirtyctl --separate-stderr 0 status --json dt0
	eq "$stderr" ""
	status_json_matches_dmsetup
	[[ $output == *'"sequence": 1,'* && $output == *'"dirty_clusters": 1,'* ]]
	[[ $output == *'"frozen_clusters": null,'* ]]

	dmsetup message dt0 0 checkpoint
	wr $((30 * 128)) 8
	wr $((31 * 128)) 8
	run_dirtyctl --separate-stderr 0 status -J dt0
	status_json_matches_dmsetup
	[[ $output == *'"frozen_clusters": 1,'* && $output == *'"dirty_clusters": 2,'* ]]
}

@test "the status map has a non-blank cell where clusters were written and blank cells elsewhere" {
	local cells blank
	dt_create dt0 128
	# 1024 clusters: 128 cells of 8 clusters, two lines of 64 cells
	wr 0 1                           # cell 0: 1 of 8 clusters
	wr $((40 * 128)) $((8 * 128))    # cell 5: 8 of 8
	wr $((80 * 128)) $((4 * 128))    # cell 10: 4 of 8
	wr $((512 * 128 + 3)) 1          # cell 64: 1 of 8
	wr $((1024 * 128 - 1)) 1         # cell 127: 1 of 8
	printf -v blank '%64s' ''
	cells=$blank$blank
	set_cell() { cells="${cells:0:$1}$2${cells:$(($1 + 1))}"; }
	set_cell 0 .
	set_cell 5 '#'
	set_cell 10 :
	set_cell 64 .
	set_cell 127 .
	run_dirtyctl --separate-stderr 0 status dt0
	# the map is the last three lines (a snapshot line may stand above it)
	local n=${#lines[@]}
	[[ ${lines[n - 3]} == "map: 128 cells of 8 clusters; "* ]]
	eq "${lines[n - 2]}" "  |${cells:0:64}|"
	eq "${lines[n - 1]}" "  |${cells:64:64}|"

	dmsetup message dt0 0 clear
	run_dirtyctl --separate-stderr 0 status dt0
	n=${#lines[@]}
	eq "${lines[n - 2]}" "  |$blank|"
	eq "${lines[n - 1]}" "  |$blank|"
}

@test "status finds the device by dm name, by /dev/mapper/NAME and by its /dev/dm-N node" {
	local by_name node
	dt_create dt0 128
	wr $((6 * 128)) 8
	node=/dev/$(dt_dm_kname dt0)
	run_dirtyctl 0 status --json dt0
	by_name=$output
	[[ $by_name == *'"dirty_clusters": 1,'* ]]
	run_dirtyctl 0 status --json /dev/mapper/dt0
	eq "$output" "$by_name"
	run_dirtyctl 0 status --json "$node"
	eq "$output" "$by_name"
	run_dirtyctl 0 dump "$node"
	eq "$output" "768 128"
}

@test "status works on a suspended device and says it is suspended" {
	dt_create dt0 128
	wr 0 8
	dmsetup suspend dt0
	run_dirtyctl --separate-stderr 0 status dt0
	[[ ${lines[0]} == "dt0: 64 KiB of 64 MiB changed (1 of 1024 clusters of 64 KiB), frozen: none, "*", suspended" ]]
	run_dirtyctl --separate-stderr 0 status --json dt0
	[[ $output == *'"suspended": true,'* && $output == *'"dirty_clusters": 1,'* ]]
	dmsetup resume dt0
	run_dirtyctl --separate-stderr 0 status dt0
	[[ ${lines[0]} == *", sequence 0" ]]
}

@test "in crash_safe mode status says so, and checkpoint, dump --frozen, mark and commit work" {
	dt_create dt0 128 131072 1 crash_safe
	wr 124 8
	run_dirtyctl --separate-stderr 0 status dt0
	eq "${lines[0]}" "dt0: 128 KiB of 64 MiB changed (2 of 1024 clusters of 64 KiB), frozen: none, mode crash_safe, health ok, sequence 0"
	run_dirtyctl --separate-stderr 0 status --json dt0
	[[ $output == *'"mode": "crash_safe",'* ]]
	run_dirtyctl 0 checkpoint dt0
	wr $((9 * 128)) 8
	run_dirtyctl 0 mark dt0 $((20 * 128)) 1
	run_dirtyctl --separate-stderr 0 dump dt0 --frozen
	eq "$output" "0 256"
	run_dirtyctl 0 commit dt0
	eq "$(dmsetup status dt0 | cut -d' ' -f6,7,8,11)" "2 - crash_safe 1"
	eq "$(dt_clusters dt0 | dt_ranges)" "9 20"
}

# ---------------------------------------------------------------- dump

@test "dump lists changed extents in sectors: straddling writes, adjacent clusters coalesced, the tail cluster clipped" {
	known_writes
	eq "$(dt_clusters dt0 | dt_ranges)" "0-1 10-11 20 1023"
	run_dirtyctl --separate-stderr 0 dump dt0
	eq "$stderr" ""
	eq "$output" "$KNOWN_RANGES"
	run_dirtyctl --separate-stderr 0 dump dt0 --format ranges
	eq "$output" "$KNOWN_RANGES"
}

@test "dump --format bytes lists the same extents in bytes" {
	known_writes
	run_dirtyctl --separate-stderr 0 dump dt0 --format bytes
	eq "$output" "0 131072
655360 131072
1310720 65536
67043328 45056"
}

@test "dump --format json is one object with the device, the cluster size and the extents in bytes" {
	local json
	known_writes
	run_dirtyctl --separate-stderr 0 dump dt0 --format json
	eq "$output" '{"device": "dt0", "cluster_sectors": 128, "extents": [
  {"offset": 0, "length": 131072},
  {"offset": 655360, "length": 131072},
  {"offset": 1310720, "length": 65536},
  {"offset": 67043328, "length": 45056}
]}'
	eq "$(jq -c . <<<"$output")" '{"device":"dt0","cluster_sectors":128,"extents":[{"offset":0,"length":131072},{"offset":655360,"length":131072},{"offset":1310720,"length":65536},{"offset":67043328,"length":45056}]}'
	json=$output
	run_dirtyctl --separate-stderr 0 dump dt0 --json
	eq "$output" "$json"
}

@test "dump --format ddrescue is a mapfile over the whole device with + where it changed, read back by ddrescuelog" {
	local uuid map=$BATS_TEST_TMPDIR/map pos size end=0
	known_writes
	uuid=$(dt_status dt0 uuid)
	run_dirtyctl --separate-stderr 0 dump dt0 --format ddrescue
	eq "$(printf '%s\n' "${lines[@]:0:5}")" "# Mapfile. Created by dirtyctl from dm-dirtytrack device dt0
# live set, uuid $uuid, sequence 0, cluster_sectors 128
# current_pos  current_status  current_pass
0x00000000     +               1
#      pos        size  status"
	eq "$(after_header)" "$(ddl 0 256 +
		ddl 256 1024 '?'
		ddl 1280 256 +
		ddl 1536 1024 '?'
		ddl 2560 128 +
		ddl 2688 128256 '?'
		ddl 130944 88 +)"
	# contiguous from 0 to the device's size (131032 sectors)
	while read -r pos size _; do
		eq $((pos)) $end
		end=$((pos + size))
	done < <(after_header)
	eq $end $((131032 * 512))
	# ddrescue's own tool reads it and finds exactly the changed sectors
	printf '%s\n' "$output" >"$map"
	eq "$(ddrescuelog --list-blocks=+ --block-size=512 "$map")" \
		"$(awk '{ for (i = 0; i < $2; i++) print $1 + i }' <<<"$KNOWN_RANGES")"
}

@test "dump of a clean device: no ranges, an empty JSON list, a mapfile that is all non-tried" {
	dt_create dt0 128
	run_dirtyctl --separate-stderr 0 dump dt0
	eq "$output" ""
	eq "$stderr" ""
	run_dirtyctl --separate-stderr 0 dump dt0 --format bytes
	eq "$output" ""
	run_dirtyctl --separate-stderr 0 dump dt0 --format json
	eq "$output" '{"device": "dt0", "cluster_sectors": 128, "extents": []}'
	run_dirtyctl --separate-stderr 0 dump dt0 --format ddrescue
	eq "${#lines[@]}" 6
	eq "$(after_header)" "$(ddl 0 131072 '?')"
}

@test "dump --frozen lists the checkpoint's set while plain dump lists the writes since" {
	dt_create dt0 128
	wr $((2 * 128)) 8
	wr $((9 * 128)) 8
	run_dirtyctl 0 checkpoint dt0
	wr $((5 * 128)) 8
	wr $((9 * 128)) 8
	run_dirtyctl --separate-stderr 0 dump dt0 --frozen
	eq "$output" "256 128
1152 128"
	eq "$(ranges_to_clusters 128 <<<"$output" | dt_ranges)" "$(dt_clusters dt0 frozen | dt_ranges)"
	run_dirtyctl --separate-stderr 0 dump dt0
	eq "$output" "640 128
1152 128"
	eq "$(ranges_to_clusters 128 <<<"$output" | dt_ranges)" "$(dt_clusters dt0 live | dt_ranges)"
	run_dirtyctl --separate-stderr 0 dump dt0 --frozen --format ddrescue
	eq "${lines[1]}" "# frozen set, uuid $(dt_status dt0 uuid), sequence 0, cluster_sectors 128"
	eq "$(after_header)" "$(ddl 0 256 '?'; ddl 256 128 +; ddl 384 768 '?'
		ddl 1152 128 +; ddl 1280 129792 '?')"
}

@test "dump -o FILE writes what dump prints, replacing FILE and leaving nothing else behind" {
	local dir=$BATS_TEST_TMPDIR/out fmt
	known_writes
	mkdir "$dir"
	for fmt in ranges json ddrescue; do
		echo "stale content" >"$dir/extents"
		timeout 60 dirtyctl dump dt0 --format $fmt >"$BATS_TEST_TMPDIR/stdout.$fmt"
		run_dirtyctl --separate-stderr 0 dump dt0 --format $fmt -o "$dir/extents"
		no_stdout_and_stderr ""
		cmp "$BATS_TEST_TMPDIR/stdout.$fmt" "$dir/extents"
	done
	run_dirtyctl --separate-stderr 0 dump dt0 --output "$dir/extents"
	eq "$(ls -A "$dir")" extents
	eq "$(<"$dir/extents")" "$KNOWN_RANGES"
}

@test "dump of a target that starts at sector 2048 of the device reports device sectors, and mark takes them" {
	local lin_dev
	dt_loop_device lin_dev "$BATS_TEST_TMPDIR/lin.img" 1M
	printf '0 2048 linear %s 0\n2048 131072 dirtytrack %s %s 128\n' \
		"$lin_dev" "$MD_DEV" "$DATA_DEV" | dmsetup create dt0
	eq "$(blockdev --getsz /dev/mapper/dt0)" 133120
	wr 100 8                         # the linear target: not tracked
	wr $((2048 + 3 * 128 + 1)) 1     # cluster 3
	wr 133119 1                      # the last cluster, 1023
	eq "$(dt_clusters dt0 live 2048 | dt_ranges)" "3 1023"
	run_dirtyctl --separate-stderr 0 dump dt0
	eq "$output" "2432 128
132992 128"
	run_dirtyctl --separate-stderr 0 dump dt0 --format bytes
	eq "$output" "1245184 65536
68091904 65536"
	run_dirtyctl --separate-stderr 0 dump dt0 --format ddrescue
	eq "$(after_header)" "$(ddl 0 2432 '?'; ddl 2432 128 +
		ddl 2560 130432 '?'; ddl 132992 128 +)"
	run_dirtyctl --separate-stderr 0 status --json dt0
	[[ $output == *'"start_sector": 2048,'* && $output == *'"length_sectors": 131072,'* ]]

	run_dirtyctl --separate-stderr 0 mark dt0 $((2048 + 5 * 128 + 7)) 1
	eq "$(dt_clusters dt0 live 2048 | dt_ranges)" "3 5 1023"
	run_dirtyctl --separate-stderr 1 mark dt0 2000 100
	no_stdout_and_stderr "dirtyctl: dt0: extent 2000+100 lies outside the dirtytrack target (sectors 2048 to 133119)"
	run_dirtyctl 0 checkpoint dt0
	run_dirtyctl --separate-stderr 0 dump dt0 --frozen
	eq "$output" "2432 128
2688 128
132992 128"
}

@test "dump of random writes covers exactly the clusters in the kernel's bitmap, ascending and coalesced" {
	local len=$((131072 - 3)) seed=${DT_SEED:-$RANDOM} n off
	echo "# seed $seed"
	RANDOM=$seed
	dt_create dt0 8 $len
	for _ in $(seq 30); do
		n=$((1 + RANDOM % 64))
		off=$(((RANDOM * 32768 + RANDOM) % (len - n + 1)))
		wr $off $n
	done
	wr $((len - 1)) 1
	run_dirtyctl --separate-stderr 0 dump dt0
	# strictly ascending, never touching (coalesced), whole clusters within
	# the device but for the short last one
	eq "$(awk -v len=$len '
		NR > 1 && $1 <= end { print "line " NR " touches or overlaps the one before" }
		$1 % 8 { print "line " NR " does not start on a cluster" }
		$1 + $2 > len { print "line " NR " ends beyond the device" }
		$2 % 8 && $1 + $2 != len { print "line " NR " is not whole clusters" }
		{ end = $1 + $2 }
		END { print "ends at " end }' <<<"$output")" "ends at $len"
	eq "$(ranges_to_clusters 8 <<<"$output")" "$(dt_clusters dt0)"
}

# ---------------------------------------------------------------- ddrescue

@test "ddrescue --domain-mapfile with the frozen ddrescue dump refreshes a backup image to equal the device" {
	local image=$BATS_TEST_TMPDIR/image map=$BATS_TEST_TMPDIR/changed.map
	local rescue=$BATS_TEST_TMPDIR/rescue.map seed=${DT_SEED:-$RANDOM} n clean
	echo "# seed $seed"
	RANDOM=$seed
	# 16 MiB in 4 KiB clusters; a full backup of random content, then clear
	dt_create dt0 8 32768
	dd if=/dev/urandom of=/dev/mapper/dt0 bs=1M count=16 oflag=direct status=none
	dd if=/dev/mapper/dt0 of="$image" bs=1M iflag=direct status=none
	run_dirtyctl 0 clear dt0
	eq "$(dt_status dt0 dirty)" 0
	# writes of mixed sizes anywhere, and at both ends of the device
	for n in 1 7 8 9 100 513 2048 3 64; do
		wr $((RANDOM % (32768 - n + 1))) $n
	done
	wr 0 3
	wr 32767 1
	if cmp -s /dev/mapper/dt0 "$image"; then
		echo "FAIL: the writes did not change the device"
		return 1
	fi

	run_dirtyctl 0 checkpoint dt0
	run_dirtyctl --separate-stderr 0 dump dt0 --frozen --format ddrescue -o "$map"
	# a cluster outside the frozen set, poisoned in the image: ddrescue must
	# leave it alone
	clean=$(awk 'NR == FNR { dirty[$1] = 1; next } !($1 in dirty) { print; exit }' \
		<(dt_clusters dt0 frozen) <(seq 0 4095))
	dd if="$image" of="$BATS_TEST_TMPDIR/orig" bs=4096 skip="$clean" count=1 status=none
	dd if=/dev/urandom of="$BATS_TEST_TMPDIR/poison" bs=4096 count=1 status=none
	dd if="$BATS_TEST_TMPDIR/poison" of="$image" bs=4096 seek="$clean" conv=notrunc status=none

	echo "\$ ddrescue -q --domain-mapfile=$map /dev/mapper/dt0 $image $rescue"
	run timeout 120 ddrescue -q --domain-mapfile="$map" /dev/mapper/dt0 "$image" "$rescue"
	echo "$output"
	eq "$status" 0
	# ddrescue read exactly the frozen set's clusters and wrote nothing else
	eq "$(ddrescuelog --list-blocks=+ --block-size=4096 "$rescue")" "$(dt_clusters dt0 frozen)"
	dd if="$image" bs=4096 skip="$clean" count=1 status=none | cmp - "$BATS_TEST_TMPDIR/poison"
	dd if="$BATS_TEST_TMPDIR/orig" of="$image" bs=4096 seek="$clean" conv=notrunc status=none
	cmp /dev/mapper/dt0 "$image"

	run_dirtyctl 0 commit dt0
	eq "$(dt_status dt0 frozen)" -
	eq "$(dt_status dt0 sequence)" 2
}

# ---------------------------------------------------------------- state

@test "clear empties the live set and advances the sequence" {
	dt_create dt0 128
	wr 0 8
	wr $((70 * 128)) 8
	eq "$(dt_status dt0 dirty)" 2
	run_dirtyctl --separate-stderr 0 clear dt0
	no_stdout_and_stderr ""
	eq "$(dt_clusters dt0 | dt_ranges)" ""
	eq "$(dt_status dt0 sequence)" 1
	run_dirtyctl 0 clear /dev/mapper/dt0
	eq "$(dt_status dt0 sequence)" 2
}

@test "checkpoint freezes the changed clusters and tracks new writes apart, sequence unchanged" {
	dt_create dt0 128
	wr 0 8
	wr $((5 * 128)) 8
	run_dirtyctl --separate-stderr 0 checkpoint dt0
	# stdout is the frozen set's id, nothing else; stderr is empty
	[[ $output =~ ^[0-9a-f]{16}$ ]] || { echo "checkpoint printed: $output"; false; }
	eq "$stderr" ""
	eq "$(dmsetup status dt0 | cut -d' ' -f6,7,11,12)" "0 2 0 $output"
	wr $((7 * 128)) 8
	eq "$(dt_clusters dt0 live | dt_ranges)" 7
	eq "$(dt_clusters dt0 frozen | dt_ranges)" "0 5"
}

@test "commit drops the frozen set and advances the sequence, keeping writes made since the checkpoint" {
	dt_create dt0 128
	wr 0 8
	run_dirtyctl 0 checkpoint dt0
	wr $((4 * 128)) 8
	run_dirtyctl --separate-stderr 0 commit dt0
	no_stdout_and_stderr ""
	eq "$(dmsetup status dt0 | cut -d' ' -f6,7,11)" "1 - 1"
	eq "$(dt_clusters dt0 live | dt_ranges)" 4
}

@test "rollback merges the frozen set back into the live set, sequence unchanged" {
	dt_create dt0 128
	wr 0 200
	run_dirtyctl 0 checkpoint dt0
	wr $((1 * 128)) 8
	wr $((5 * 128)) 8
	run_dirtyctl --separate-stderr 0 rollback dt0
	no_stdout_and_stderr ""
	eq "$(dmsetup status dt0 | cut -d' ' -f6,7,11)" "3 - 0"
	eq "$(dt_clusters dt0 | dt_ranges)" "0-1 5"
	# the merged set is frozen again by the next checkpoint
	run_dirtyctl 0 checkpoint dt0
	eq "$(dt_clusters dt0 frozen | dt_ranges)" "0-1 5"
}

@test "mark sets the clusters of a sector extent, with size suffixes, sequence unchanged" {
	dt_create dt0 128
	run_dirtyctl --separate-stderr 0 mark dt0 130 300
	no_stdout_and_stderr ""
	# 1 MiB = sector 2048 = cluster 16; 64 KiB = 128 sectors: cluster 16 only
	run_dirtyctl 0 mark dt0 1M 64KiB
	# 4096 KB = 4096000 bytes = sector 8000, in cluster 62
	run_dirtyctl 0 mark dt0 4096KB 1s
	run_dirtyctl 0 mark /dev/mapper/dt0 $((131072 - 1)) 1
	eq "$(dt_clusters dt0 | dt_ranges)" "1-3 16 62 1023"
	eq "$(dmsetup status dt0 | cut -d' ' -f6,7,11)" "6 - 0"
}

# ---------------------------------------------------------------- inspect

@test "inspect of a removed target's metadata: valid, the uuid and sequence status said, the changed clusters" {
	local uuid seq
	dt_create dt0 128
	wr 0 8
	dmsetup message dt0 0 clear
	wr $((3 * 128)) 8
	wr $((4 * 128)) 8
	wr $((1000 * 128)) 8
	read -r _ _ _ _ _ _ _ _ _ uuid seq _ <<<"$(dmsetup status dt0)"
	eq "$seq" 1
	dmsetup remove dt0
	run_dirtyctl --separate-stderr 0 inspect "$MD_DEV"
	eq "$stderr" ""
	eq "${lines[0]}" "$MD_DEV: dirtytrack metadata, format version 1"
	line_is 1 valid: yes
	line_is 2 uuid: "$uuid"
	line_is 3 sequence: "$seq"
	[[ ${lines[4]} =~ ^generation:\ +[0-9]+$ ]]
	line_is 5 "data size:" "64 MiB (131072 sectors)"
	line_is 6 "cluster size:" "64 KiB (128 sectors)"
	line_is 7 clusters: 1024
	line_is 8 bitmaps: "1 blocks each, live at block 1, frozen at block 2"
	line_is 9 "dirty clusters:" 3
	line_is 10 "frozen clusters:" none
	line_is 11 flags: "valid "
	eq "${#lines[@]}" 12
	run_dirtyctl --separate-stderr 0 inspect -b "$MD_DEV"
	line_is 5 "data size:" "67108864 bytes (131072 sectors)"
}

@test "inspect --json of a removed target's metadata with a frozen set" {
	local uuid
	dt_create dt0 128
	dmsetup message dt0 0 clear
	wr $((3 * 128)) 8
	wr $((9 * 128)) 8
	dmsetup message dt0 0 checkpoint
	wr $((20 * 128)) 8
	uuid=$(dt_status dt0 uuid)
	dmsetup remove dt0
	run_dirtyctl --separate-stderr 0 inspect --json "$MD_DEV"
	eq "$stderr" ""
	eq "$(jq -c '[.device, .valid, .uuid, .sequence, .version, .data_sectors,
		.cluster_sectors, .clusters, .bitmap_blocks, .dirty_clusters, .frozen_clusters,
		.frozen_sequence, .flags, .superblock_dirty_clusters,
		.superblock_frozen_clusters, .stray_bits, .in_use]' <<<"$output")" \
		"[\"$MD_DEV\",true,\"$uuid\",1,1,131072,128,1024,1,1,2,1,[\"valid\",\"frozen\"],1,2,0,false]"
	# the metadata activates with what inspect said
	dt_create dt0 128
	eq "$(dt_status dt0 uuid)" "$uuid"
	eq "$(dt_clusters dt0 frozen | dt_ranges)" "3 9"
	eq "$(dt_clusters dt0 live | dt_ranges)" 20
}

@test "inspect of metadata an active table holds warns that it may be stale" {
	dt_create dt0 128
	wr 0 8
	if dt_sb_valid "$MD_DEV"; then
		echo "FAIL: the valid flag is still set on disk after a write"
		return 1
	fi
	run_dirtyctl --separate-stderr 0 inspect "$MD_DEV"
	eq "$stderr" "dirtyctl: $MD_DEV: in use (an active table owns it?); what it holds may be stale"
	[[ ${lines[1]} =~ ^valid:\ +no\  ]]
	run_dirtyctl --separate-stderr 0 inspect --json "$MD_DEV"
	[[ $output == *'"valid": false,'* && $output == *'"in_use": true'* ]]
}

@test "inspect of an all-zero metadata device exits 1 and says it is unformatted" {
	run_dirtyctl --separate-stderr 1 inspect "$MD_DEV"
	no_stdout_and_stderr "dirtyctl: $MD_DEV: unformatted (all zero)"
	run_dirtyctl --separate-stderr 1 inspect --json "$MD_DEV"
	no_stdout_and_stderr "dirtyctl: $MD_DEV: unformatted (all zero)"
}

@test "inspect of a corrupt superblock exits 1 and names the problem: bad checksum, bad magic" {
	local sb=$BATS_TEST_TMPDIR/sb
	dt_create dt0 128
	dmsetup remove dt0
	run_dirtyctl 0 inspect "$MD_DEV"
	# a bit set in the reserved bytes: the checksum is checked first
	dd if="$MD_DEV" of="$sb" bs=4096 count=1 iflag=direct status=none
	eq "$(od -An -tx1 -j300 -N1 "$sb")" " 00"
	printf '\x01' | dd of="$sb" bs=1 seek=300 conv=notrunc status=none
	dd if="$sb" of="$MD_DEV" bs=4096 count=1 oflag=direct conv=notrunc status=none
	run_dirtyctl --separate-stderr 1 inspect "$MD_DEV"
	no_stdout_and_stderr "dirtyctl: $MD_DEV: bad checksum"
	run_dirtyctl --separate-stderr 1 inspect --json "$MD_DEV"
	no_stdout_and_stderr "dirtyctl: $MD_DEV: bad checksum"
	printf 'XXXX' | dd of="$sb" bs=1 seek=4 conv=notrunc status=none
	dd if="$sb" of="$MD_DEV" bs=4096 count=1 oflag=direct conv=notrunc status=none
	run_dirtyctl --separate-stderr 1 inspect "$MD_DEV"
	no_stdout_and_stderr "dirtyctl: $MD_DEV: bad magic: not a dirtytrack superblock"
}

# ---------------------------------------------------------------- errors

@test "every command on a device that does not exist exits 1 with 'no such device'" {
	local args
	for args in "status nosuch" "dump nosuch" "clear nosuch" "checkpoint nosuch" \
		"commit nosuch" "rollback nosuch" "mark nosuch 0 8"; do
		run_dirtyctl --separate-stderr 1 $args
		no_stdout_and_stderr "dirtyctl: nosuch: no such device"
	done
	run_dirtyctl --separate-stderr 1 status /dev/mapper/nosuch
	no_stdout_and_stderr "dirtyctl: /dev/mapper/nosuch: no such device"
	run_dirtyctl --separate-stderr 1 inspect /dev/nosuch
	no_stdout_and_stderr "dirtyctl: /dev/nosuch: No such file or directory"
}

@test "every command on a dm-linear device exits 1 with 'not a dirtytrack device', naming the target type" {
	local args
	dmsetup create lin0 --table "0 2048 linear $DATA_DEV 0"
	for args in "status lin0" "dump lin0" "clear lin0" "checkpoint lin0" \
		"commit lin0" "rollback lin0" "mark lin0 0 8"; do
		run_dirtyctl --separate-stderr 1 $args
		no_stdout_and_stderr "dirtyctl: lin0: not a dirtytrack device (target type linear)"
	done
	dmsetup create empty0 --notable
	run_dirtyctl --separate-stderr 1 status empty0
	no_stdout_and_stderr "dirtyctl: empty0: not a dirtytrack device (no table loaded)"
	# a block device of another driver
	run_dirtyctl --separate-stderr 1 status "$DATA_DEV"
	no_stdout_and_stderr "dirtyctl: $DATA_DEV: not a device-mapper device"
}

@test "state-changing commands on a suspended device exit 1 with 'resume it first' and change nothing" {
	local args
	dt_create dt0 128
	wr 0 8
	dmsetup message dt0 0 checkpoint
	wr $((3 * 128)) 8
	dmsetup suspend dt0
	for args in "clear dt0" "checkpoint dt0" "commit dt0" "rollback dt0" "mark dt0 1024 8"; do
		run_dirtyctl --separate-stderr 1 $args
		no_stdout_and_stderr "dirtyctl: dt0: device is suspended; resume it first"
	done
	dmsetup resume dt0
	eq "$(dmsetup status dt0 | cut -d' ' -f6,7,11)" "1 1 0"
	eq "$(dt_clusters dt0 frozen | dt_ranges)" 0
	eq "$(dt_clusters dt0 live | dt_ranges)" 3
}

@test "checkpoint while a checkpoint is frozen exits 1 and keeps the frozen set" {
	dt_create dt0 128
	wr 0 8
	run_dirtyctl 0 checkpoint dt0
	wr $((2 * 128)) 8
	run_dirtyctl --separate-stderr 1 checkpoint dt0
	no_stdout_and_stderr "dirtyctl: dt0: a checkpoint is already frozen; commit or roll it back first"
	eq "$(dt_clusters dt0 frozen | dt_ranges)" 0
	eq "$(dt_clusters dt0 live | dt_ranges)" 2
}

@test "commit, rollback and dump --frozen with nothing frozen exit 1 with 'nothing is frozen'" {
	local args
	dt_create dt0 128
	wr 0 8
	for args in "commit dt0" "rollback dt0" "dump dt0 --frozen --format ddrescue"; do
		run_dirtyctl --separate-stderr 1 $args
		no_stdout_and_stderr "dirtyctl: dt0: nothing is frozen"
	done
	# -o FILE is left as it was
	echo keep >"$BATS_TEST_TMPDIR/f"
	run_dirtyctl --separate-stderr 1 dump dt0 --frozen -o "$BATS_TEST_TMPDIR/f"
	no_stdout_and_stderr "dirtyctl: dt0: nothing is frozen"
	eq "$(<"$BATS_TEST_TMPDIR/f")" keep
	eq "$(dmsetup status dt0 | cut -d' ' -f6,7,11)" "1 - 0"
}

@test "mark with a bad number is a usage error (exit 2, the hint) and sends nothing" {
	dt_create dt0 128
	run_dirtyctl --separate-stderr 2 mark dt0 12x 8
	no_stdout_and_stderr "dirtyctl: invalid START_SECTOR '12x': has an unknown suffix (use s, K, M, G, T, P, E, KiB, KB, ...)
$HINT"
	run_dirtyctl --separate-stderr 2 mark dt0 abc 8
	no_stdout_and_stderr "dirtyctl: invalid START_SECTOR 'abc': is not a number
$HINT"
	run_dirtyctl --separate-stderr 2 mark dt0 0 1KB
	no_stdout_and_stderr "dirtyctl: invalid NR_SECTORS '1KB': is not a multiple of 512 bytes
$HINT"
	run_dirtyctl --separate-stderr 2 mark dt0 0 0
	no_stdout_and_stderr "dirtyctl: invalid NR_SECTORS '0': must be greater than 0
$HINT"
	run_dirtyctl --separate-stderr 2 mark dt0 0 99999999999999999999
	no_stdout_and_stderr "dirtyctl: invalid NR_SECTORS '99999999999999999999': is too large
$HINT"
	run_dirtyctl --separate-stderr 2 -- mark dt0 -5 8
	no_stdout_and_stderr "dirtyctl: invalid START_SECTOR '-5': must not be negative
$HINT"
	eq "$(dt_status dt0 dirty)" 0
}

@test "unknown commands, options a command does not take and missing arguments are usage errors" {
	dt_create dt0 128
	run_dirtyctl --separate-stderr 2 frobnicate dt0
	no_stdout_and_stderr "dirtyctl: unknown command 'frobnicate'
$HINT"
	run_dirtyctl --separate-stderr 2 clear --json dt0
	no_stdout_and_stderr "dirtyctl: option --json is not valid with clear
$HINT"
	run_dirtyctl --separate-stderr 2 dump dt0 --format csv
	no_stdout_and_stderr "dirtyctl: unknown format 'csv' (ranges, bytes, json, ddrescue)
$HINT"
	run_dirtyctl --separate-stderr 2 mark dt0 8
	no_stdout_and_stderr "dirtyctl: mark: missing argument: mark DEV START_SECTOR NR_SECTORS
$HINT"
	run_dirtyctl --separate-stderr 2 checkpoint dt0 dt0
	no_stdout_and_stderr "dirtyctl: checkpoint: too many arguments: checkpoint DEV
$HINT"
	eq "$(dt_status dt0 frozen)" -
}

@test "mark of an extent beyond the device exits 1 naming the target's sectors and marks nothing" {
	dt_create dt0 128
	run_dirtyctl --separate-stderr 1 mark dt0 131064 16
	no_stdout_and_stderr "dirtyctl: dt0: extent 131064+16 lies outside the dirtytrack target (sectors 0 to 131071)"
	run_dirtyctl --separate-stderr 1 mark dt0 131072 1
	no_stdout_and_stderr "dirtyctl: dt0: extent 131072+1 lies outside the dirtytrack target (sectors 0 to 131071)"
	run_dirtyctl --separate-stderr 1 mark dt0 0 1G
	no_stdout_and_stderr "dirtyctl: dt0: extent 0+2097152 lies outside the dirtytrack target (sectors 0 to 131071)"
	run_dirtyctl 0 mark dt0 131064 8
	eq "$(dt_clusters dt0 | dt_ranges)" 1023
}

@test "dirtyctl run as an unprivileged user exits 1 with 'needs root'" {
	local args
	dt_create dt0 128
	for args in "status dt0" "checkpoint dt0"; do
		echo "\$ setpriv --reuid=65534 --regid=65534 --clear-groups dirtyctl $args"
		run --separate-stderr timeout 60 setpriv --reuid=65534 --regid=65534 --clear-groups \
			dirtyctl $args
		echo "status $status, stdout '$output', stderr '$stderr'"
		eq "$status" 1
		no_stdout_and_stderr "dirtyctl: needs root (cannot open /dev/mapper/control)"
	done
	eq "$(dt_status dt0 frozen)" -
}

# ---------------------------------------------------------------- list, --export, JSON names

# status_fields: dmsetup's status of dt0 into cs clusters dirty frozen mode
# health uuid seq, and fid: the 9th field (frozen set id) or "" for '-' or
# a target without it.
status_fields() {
	local rest
	read -r _ _ _ cs clusters dirty frozen mode health uuid seq rest <<<"$(dmsetup status dt0)"
	fid=${rest%% *}
	[ "$fid" != - ] || fid=
}

@test "list shows every dirtytrack device with dmsetup's values and leaves other dm devices out" {
	local cs clusters dirty frozen mode health uuid seq fid
	dt_create dt0 128
	wr 0 8
	wr $((5 * 128)) 300
	dmsetup message dt0 0 checkpoint
	wr $((9 * 128)) 1
	dmsetup create lin0 --table "0 2048 linear $DATA_DEV 0"
	dt_loop_device MD1_DEV "$BATS_TEST_TMPDIR/md1.img" 1M
	dt_loop_device DATA1_DEV "$BATS_TEST_TMPDIR/data1.img" 2M
	dmsetup create dt1 --table "0 4096 dirtytrack $MD1_DEV $DATA1_DEV 8"
	status_fields
	run_dirtyctl --separate-stderr 0 list -r -b \
		-o NAME,SIZE,CLUSTER,CLUSTERS,DIRTY,FROZEN,FROZEN-ID,MODE,HEALTH,SEQUENCE,UUID
	eq "$stderr" ""
	eq "${lines[0]}" "NAME SIZE CLUSTER CLUSTERS DIRTY FROZEN FROZEN-ID MODE HEALTH SEQUENCE UUID"
	eq "$(grep '^dt0 ' <<<"$output")" \
		"dt0 67108864 65536 1024 65536 262144 $fid $mode $health $seq $uuid"
	[ "$dirty $frozen" = "1 4" ]
	run_dirtyctl --separate-stderr 0 list -n -r
	eq "$(sort <<<"$output")" "dt0 64M 64K 64K 256K $fid $mode $health
dt1 2M 4K 0B   default ok"
	dmsetup remove dt1
	run_dirtyctl --separate-stderr 0 list -J -b -o NAME,SIZE,DIRTY,FROZEN,SEQUENCE
	eq "$(jq -c '.dirtytrack' <<<"$output")" \
		"[{\"name\":\"dt0\",\"size\":67108864,\"dirty\":65536,\"frozen\":262144,\"sequence\":$seq}]"
	dmsetup message dt0 0 commit
	run_dirtyctl --separate-stderr 0 list -J -o NAME,FROZEN,FROZEN-ID
	eq "$(jq -c '.dirtytrack' <<<"$output")" '[{"name":"dt0","frozen":null,"frozen-id":null}]'
	dmsetup remove dt0
	run_dirtyctl --separate-stderr 0 list -n
	no_stdout_and_stderr ""
}

@test "status --export has dmsetup's values as KEY=value lines that bash's eval reads back" {
	local cs clusters dirty frozen mode health uuid seq fid
	dt_create dt0 128
	wr 0 8
	run_dirtyctl --separate-stderr 0 status dt0 --export
	eq "$stderr" ""
	status_fields
	eq "$output" "DEVICE=dt0
UUID=$uuid
SEQUENCE=$seq
CLUSTER_SECTORS=128
CLUSTERS=1024
DIRTY_CLUSTERS=1
FROZEN_CLUSTERS=
FROZEN_ID=
MODE=default
HEALTH=ok
SNAPSHOT=-
STORE_USED_SECTORS=
STORE_SECTORS="
	dmsetup message dt0 0 checkpoint
	wr $((7 * 128)) 8
	wr $((8 * 128)) 8
	run_dirtyctl --separate-stderr 0 status dt0 --export
	status_fields
	eval "$output"
	eq "$DEVICE $UUID $SEQUENCE $CLUSTER_SECTORS $CLUSTERS $DIRTY_CLUSTERS $FROZEN_CLUSTERS $MODE $HEALTH" \
		"dt0 $uuid $seq $cs $clusters 2 1 $mode $health"
	eq "$FROZEN_ID" "$fid"
}

@test "status --json, list -J and dump --json are valid JSON for a dm name with invalid UTF-8 and a control byte" {
	local node fffd=$'\xef\xbf\xbd'
	ODD_NAME=$(printf 'dt\377\001x')
	dmsetup --manglename none create "$ODD_NAME" \
		--table "0 131072 dirtytrack $MD_DEV $DATA_DEV 128"
	node=/dev/$(dmsetup --manglename none info -c --noheadings -o blkdevname "$ODD_NAME")
	dd if=/dev/urandom of="$node" bs=4096 count=1 oflag=direct status=none
	run_dirtyctl --separate-stderr 0 status "$node" --json
	eq "$(jq -c .device <<<"$output")" "\"dt$fffd\\u0001x\""
	run_dirtyctl --separate-stderr 0 list -J -o NAME,DIRTY
	eq "$(jq -c .dirtytrack <<<"$output")" "[{\"name\":\"dt$fffd\\u0001x\",\"dirty\":\"64K\"}]"
	run_dirtyctl --separate-stderr 0 dump "$node" --json
	eq "$(jq -c '[.device, .extents]' <<<"$output")" \
		"[\"dt$fffd\\u0001x\",[{\"offset\":0,\"length\":65536}]]"
	run_dirtyctl --separate-stderr 0 status "$node" --export
	eval "$(grep ^DEVICE= <<<"$output")"
	eq "$DEVICE" $'dt\377\\x01x'
}

# ---------------------------------------------------------------- frozen set ids
# These need the target with frozen set ids (issue 15: status field 9,
# checkpoint's reply, commit/rollback <id>); they fail on a module without.

@test "checkpoint prints the frozen set's id, the one status shows in field 9 and --export as FROZEN_ID" {
	local id
	dt_create dt0 128
	wr 0 8
	run_dirtyctl --separate-stderr 0 checkpoint dt0
	eq "$stderr" ""
	id=$output
	[[ $id =~ ^[0-9a-f]{16}$ ]]
	eq "$(dmsetup status dt0 | cut -d' ' -f12)" "$id"
	run_dirtyctl --separate-stderr 0 status dt0 --export
	[[ $output == *$'\nFROZEN_ID='"$id"$'\n'* ]]
	run_dirtyctl --separate-stderr 0 status dt0 --json
	eq "$(jq -r .frozen_id <<<"$output")" "$id"
	run_dirtyctl --separate-stderr 0 list -n -r -o NAME,FROZEN-ID
	eq "$output" "dt0 $id"
	run_dirtyctl --separate-stderr 0 commit dt0 --id "$id"
	eq "$(dt_status dt0 frozen) $(dmsetup status dt0 | cut -d' ' -f12)" "- -"
	run_dirtyctl --separate-stderr 0 status dt0 --json
	eq "$(jq -r .frozen_id <<<"$output")" null
}

@test "commit and rollback --id of a set another checkpoint replaced exit 1, say so, and change nothing" {
	local old new
	dt_create dt0 128
	wr 0 8
	run_dirtyctl 0 checkpoint dt0
	old=$output
	dmsetup message dt0 0 rollback
	wr $((4 * 128)) 8
	run_dirtyctl 0 checkpoint dt0
	new=$output
	[ "$old" != "$new" ]
	run_dirtyctl --separate-stderr 1 commit dt0 --id "$old"
	no_stdout_and_stderr "dirtyctl: dt0: the frozen set is not $old (another checkpoint took its place); nothing committed"
	run_dirtyctl --separate-stderr 1 rollback dt0 --id "$old"
	no_stdout_and_stderr "dirtyctl: dt0: the frozen set is not $old (another checkpoint took its place); nothing rolled back"
	eq "$(dt_clusters dt0 frozen | dt_ranges)" "0 4"
	eq "$(dt_status dt0 sequence)" 0
	run_dirtyctl --separate-stderr 0 rollback dt0 --id "${new^^}"
	eq "$(dt_status dt0 frozen)" -
	eq "$(dt_clusters dt0 live | dt_ranges)" "0 4"
	run_dirtyctl --separate-stderr 1 commit dt0 --id "$new"
	no_stdout_and_stderr "dirtyctl: dt0: nothing is frozen"
}

@test "inspect shows the frozen set's id the metadata stores" {
	local id
	dt_create dt0 128
	wr 0 8
	run_dirtyctl 0 checkpoint dt0
	id=$output
	dmsetup remove dt0
	run_dirtyctl --separate-stderr 0 inspect --json "$MD_DEV"
	eq "$(jq -r .frozen_id <<<"$output")" "$id"
	run_dirtyctl --separate-stderr 0 inspect "$MD_DEV"
	[[ $output == *$'\nfrozen id:       '"$id"$'\n'* ]]
}
