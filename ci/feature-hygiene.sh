#!/usr/bin/env bash
# What a user's build pulls in. Prints the dependency counts a user of one
# adapter and of the facade without defaults gets, and fails when the facade
# without defaults reaches an HTTP stack, when an adapter reaches the file
# store or Redis, or when a library turns on tokio features it does not use.
set -euo pipefail

crates() { cargo tree --locked -e normal,build --prefix none --format '{p}' "$@" | awk '{print $1}' | sort -u; }
failed=0
fail() { echo "FAIL: $*"; failed=1; }

echo "tasktrack-proxmox alone:         $(crates -p tasktrack-proxmox | wc -l) crates"
echo "tasktrack --no-default-features: $(crates -p tasktrack --no-default-features | wc -l) crates"
echo "tasktrack (default features):    $(crates -p tasktrack | wc -l) crates"

http=$(crates -p tasktrack --no-default-features | grep -xE 'reqwest|hyper|hyper-util|hyper-rustls|h2|rustls|tokio-rustls|url' || true)
[ -z "$http" ] || fail "the facade without default features pulls HTTP crates: $(echo $http)"

for adapter in tasktrack-proxmox tasktrack-huaweicloud tasktrack-kps tasktrack-dcs tasktrack-ocp; do
    stores=$(crates -p "$adapter" | grep -xE 'redb|redis|tasktrack-redis|tasktrack-sim|axum' || true)
    [ -z "$stores" ] || fail "$adapter pulls $(echo $stores) into its users' builds"
done

# Runtime features are the application's choice: no library turns on the
# multi-threaded runtime, processes or signals for its users.
for library in tasktrack tasktrack-core tasktrack-proxmox tasktrack-huaweicloud tasktrack-kps \
    tasktrack-dcs tasktrack-ocp tasktrack-redis tasktrack-testkit; do
    extra=$(cargo tree --locked -p "$library" -e normal,build,features -i tokio --prefix none 2>/dev/null \
        | grep -oE 'tokio feature "(rt-multi-thread|process|signal|fs)"' | sort -u || true)
    [ -z "$extra" ] || fail "$library turns on $(echo $extra | tr '\n' ' ')"
done

exit $failed
