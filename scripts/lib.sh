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

# The kernel image directory of an extracted matrix kernel.
kernel_dir() {
	printf '%s/kernels/%s\n' "$DT_CACHE" "$1"
}

# resolve_kernel PREFIX: print the matrix kernel release that starts with
# PREFIX at a version-component boundary ("6.1" is 6.1.0-..., not 6.12.x).
# Fails when none matches.
resolve_kernel() {
	local prefix=$1 k match=
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
