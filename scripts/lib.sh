# shellcheck shell=bash
# Common helpers for the dm-dirtytrack scripts. Source it; do not run it.

DT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DT_CACHE=${DT_CACHE:-$DT_ROOT/.cache}
DT_BUILD=${DT_BUILD:-$DT_ROOT/.build}
export DT_ROOT DT_CACHE DT_BUILD

die() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
	exit 1
}

note() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
}

# The debug kernel of the matrix (scripts/debug-kernel) calls itself
# <version>-dtdebug; the cloud kernels never do.
is_debug_kernel() {
	[[ $1 == *-dtdebug ]]
}

# The kernel image directory of an extracted matrix kernel (boot/vmlinuz-KVER,
# lib/modules/KVER/); the debug kernel's is its build cache directory.
kernel_dir() {
	if is_debug_kernel "$1"; then
		"$DT_ROOT/scripts/debug-kernel" dir
	else
		printf '%s/kernels/%s\n' "$DT_CACHE" "$1"
	fi
}

# kernel_build_dir KVER: the tree modules for KVER build against.
kernel_build_dir() {
	if is_debug_kernel "$1"; then
		printf '%s/build\n' "$(kernel_dir "$1")"
	else
		printf '/lib/modules/%s/build\n' "$1"
	fi
}

# resolve_kernel PREFIX: print the matrix kernel release that starts with
# PREFIX at a version-component boundary ("6.1" is 6.1.0-..., not 6.12.x).
# "debug" (or the full release) names the debug kernel; a prefix matches
# only the cloud kernels. Fails when none matches.
resolve_kernel() {
	local prefix=$1 k match=
	if [[ $prefix == debug || $prefix == *-dtdebug ]]; then
		"$DT_ROOT/scripts/debug-kernel" kver
		return
	fi
	for k in $("$DT_ROOT/scripts/kernels" list); do
		case $k in "$prefix" | "$prefix"[!0-9]*) match=$k ;; esac
	done
	[[ -n $match ]] || die "no matrix kernel matches '$prefix' (have: $("$DT_ROOT/scripts/kernels" list | tr '\n' ' '))"
	printf '%s\n' "$match"
}

# Print the newest 6.12 kernel of the matrix (the default VM kernel).
default_kernel() {
	resolve_kernel 6.12
}
