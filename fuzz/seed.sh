#!/bin/sh
# Copies every Compose file of the repository's examples/ and testdata/ (when present) into
# fuzz/seeds/load/, named after its path, next to the hand-written seeds.
set -eu
fuzz=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$fuzz")
for dir in examples testdata crates/wharf-model/testdata crates/wharf/testdata; do
    [ -d "$root/$dir" ] || continue
    find "$root/$dir" -type f \( -name '*.yaml' -o -name '*.yml' \) | while read -r f; do
        rel=${f#"$root"/}
        cp "$f" "$fuzz/seeds/load/$(printf '%s' "$rel" | tr '/' '-')"
    done
done
