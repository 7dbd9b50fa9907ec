#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only OR MIT
#
# man-recipes.sh DIRTYCTL_8 RECIPE SCENARIO: run a recipe of dirtyctl(8)'s
# EXAMPLES exactly as the man page prints it, against a simulated target
# (tests/recipe-dirtyctl) whose device is a file, and check what a user
# relies on.  Exit 0 when the scenario behaves, 1 (with the reason on
# stderr) when not, 77 when a tool it needs is missing.
#
# RECIPE: dd or ddrescue (the ".\" recipe: NAME" comment before its .nf)
# SCENARIO:
#   copies       the changed extents reach the image; committed with the id
#   two-runs     a second run copies its extents too, also one the first
#                run copied
#   copy-fails   a dd that fails mid-way, or a ddrescue that could not
#                read an extent: rolled back with the id, exit 1
#   dump-fails   dump fails: nothing copied, rolled back, exit 1
set -u

man=$1 recipe=$2 scenario=$3
here=$(cd "$(dirname "$0")" && pwd)
command -v ddrescue >/dev/null 2>&1 || [ "$recipe" != ddrescue ] || exit 77

fail() {
	echo "man-recipes: $recipe/$scenario: $*" >&2
	exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/man-recipes.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin" "$tmp/mapper" "$tmp/state"

# The recipe's text: from its marker to .fi, groff escapes undone, the
# device and image paths pointed into $tmp.
sed -n "/^\.\\\\\" recipe: $recipe /,/^\.fi/p" "$man" |
	sed -e '1,2d' -e '$d' -e 's/\\-/-/g' -e 's/\\e/\\/g' \
	    -e "s|^image=.*|image=$tmp/image|" \
	    -e "s|/dev/mapper/|$tmp/mapper/|g" >"$tmp/recipe.sh"
[ -s "$tmp/recipe.sh" ] || fail "no recipe '$recipe' in $man"

ln -s "$here/recipe-dirtyctl" "$tmp/bin/dirtyctl"
# dd that fails at call $RECIPE_DD_FAIL_AT, the real one otherwise.
cat >"$tmp/bin/dd" <<'DD'
#!/bin/sh
n=$(($(cat "$RECIPE_STATE/dd-calls" 2>/dev/null || echo 0) + 1))
echo "$n" >"$RECIPE_STATE/dd-calls"
if [ "$n" = "${RECIPE_DD_FAIL_AT:-0}" ]; then
	echo "dd: error reading: Input/output error" >&2
	exit 1
fi
exec /bin/dd "$@"
DD
chmod +x "$tmp/bin/dd"
# ddrescue that, with $RECIPE_DDRESCUE_BAD, finishes as when a changed
# extent could not be read: its first finished block marked bad, exit 0.
cat >"$tmp/bin/ddrescue" <<'DDRESCUE'
#!/bin/sh
/usr/bin/ddrescue "$@" || exit
[ -n "${RECIPE_DDRESCUE_BAD:-}" ] || exit 0
for map; do :; done
sed -i '0,/^0x[0-9A-Fa-f]* *0x[0-9A-Fa-f]* *+/s/+$/-/' "$map"
exit 0
DDRESCUE
chmod +x "$tmp/bin/ddrescue"

export RECIPE_STATE="$tmp/state"
disk=$tmp/mapper/vm-disk
# 4 MiB of 64 KiB clusters; the image is the disk as of the last run.
head -c 4194304 /dev/urandom >"$disk" || exit 1
cp "$disk" "$tmp/image"
echo 4194304 >"$RECIPE_STATE/size"

# change OFFSET LENGTH...: write new data there and freeze those extents.
change() {
	: >"$RECIPE_STATE/frozen"
	while [ $# -gt 0 ]; do
		head -c "$2" /dev/urandom |
			/bin/dd of="$disk" bs=65536 seek="$1" oflag=seek_bytes conv=notrunc \
				status=none || exit 1
		echo "$1 $2" >>"$RECIPE_STATE/frozen"
		shift 2
	done
}

run() {
	(cd "$tmp" && PATH="$tmp/bin:$PATH" sh "$tmp/recipe.sh") >"$tmp/out" 2>"$tmp/err"
}

log() { cat "$RECIPE_STATE/log" 2>/dev/null; }

id=0123456789abcdef
echo $id >"$RECIPE_STATE/id"
case $scenario in
copies)
	change 0 65536 1048576 131072 4128768 65536
	run || fail "exit $?: $(cat "$tmp/err")"
	cmp -s "$disk" "$tmp/image" || fail "the image differs from the device"
	[ "$(log)" = "checkpoint
dump
commit --id $id" ] || fail "unexpected messages: $(log)"
	;;
two-runs)
	change 65536 65536
	run || fail "first run: exit $?: $(cat "$tmp/err")"
	echo fedcba9876543210 >"$RECIPE_STATE/id"
	change 65536 65536 2097152 196608	# the first run's extent again
	run || fail "second run: exit $?: $(cat "$tmp/err")"
	cmp -s "$disk" "$tmp/image" || fail "the second run did not copy its extents"
	;;
copy-fails)
	change 0 65536 1048576 65536 2097152 65536
	RECIPE_DD_FAIL_AT=2 RECIPE_DDRESCUE_BAD=1 run && fail "exit 0 after a failed copy"
	[ "$(log)" = "checkpoint
dump
rollback --id $id" ] || fail "unexpected messages: $(log)"
	;;
dump-fails)
	change 0 65536
	echo "0 4194304" >"$tmp/yesterday.extents"
	RECIPE_FAIL=dump run && fail "exit 0 after a failed dump"
	[ ! -e "$RECIPE_STATE/dd-calls" ] || fail "dd ran after a failed dump"
	cmp -s "$disk" "$tmp/image" && fail "the image changed after a failed dump"
	[ "$(log)" = "checkpoint
dump
rollback --id $id" ] || fail "unexpected messages: $(log)"
	;;
*)
	fail "unknown scenario"
	;;
esac
exit 0
