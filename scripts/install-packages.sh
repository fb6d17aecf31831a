#!/usr/bin/env bash
# Installs the Debian packages that the named steps need (scripts/packages.txt), when any is
# missing, then checks that everything they provide is there; a missing command stops the step
# with the package that provides it.
#
#   scripts/install-packages.sh STEP...      STEP: run, test, compose, bench, postgres
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || { echo "usage: install-packages.sh run|test|compose|bench..." >&2; exit 2; }

# Prints the lines of packages.txt (package, steps, checks) that any of the given steps needs.
needed() {
    local package steps checks step
    while read -r package steps checks; do
        case "$package" in ''|'#'*) continue ;; esac
        for step in "$@"; do
            if [[ ",$steps," == *",$step,"* ]]; then
                echo "$package $checks"
                break
            fi
        done
    done <"$here/packages.txt"
}

lines=$(needed "$@")
[ -n "$lines" ] || { echo "install-packages.sh: no package is listed for step(s) $*" >&2; exit 2; }

missing=()
while read -r package _; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done <<<"$lines"

if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    # Through env: sudo does not pass the caller's environment on.
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Programs in sbin (rabbitmqctl, iptables) are found for users whose PATH lacks it, too.
export PATH="$PATH:/usr/sbin:/sbin"
failed=0
while read -r package checks; do
    for check in $checks; do
        case "$check" in
            pc:*) pkg-config --exists "${check#pc:}" 2>/dev/null && continue
                  what="the library ${check#pc:} (pkg-config)" ;;
            py:*) python3 -c "import ${check#py:}" 2>/dev/null && continue
                  what="python3's module ${check#py:}" ;;
            /*)   [ -e "$check" ] && continue
                  what="$check" ;;
            *)    command -v "$check" >/dev/null 2>&1 && continue
                  what="the command $check" ;;
        esac
        echo "install-packages.sh: $what is missing after the install step; it comes with the Debian package $package" >&2
        failed=1
    done
done <<<"$lines"
exit "$failed"
