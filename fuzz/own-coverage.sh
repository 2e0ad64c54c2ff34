#!/usr/bin/env bash
# Edges of Meridian's own code (src/) that a fuzz target's corpus reaches, per file: the
# measure of whether longer fuzzing still explores Meridian rather than the parsers it drives.
#   fuzz/own-coverage.sh TARGET [CORPUS_DIR]     (default corpus: fuzz/corpus/TARGET)
#   FUNCTIONS=1 fuzz/own-coverage.sh TARGET      also list each function with edges left
# Runs every corpus input once with libFuzzer's -print_coverage=1 (no fuzzing) and sums the
# "edges: covered/total" of every function whose source is under src/. Only code linked into
# the target counts, by function (inlined code counts in the function it is inlined into), and
# paths with spaces are not supported.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd -P)
target=${1:?usage: own-coverage.sh TARGET [CORPUS_DIR]}
corpus=$(realpath -- "${2:-$here/corpus/$target}")
src=$(cd "$here/.." && pwd -P)/src/
cd "$here"
cargo +nightly fuzz build -O "$target" >&2
bin=$(find target -path "*/release/$target" -type f | head -1)
[[ -x $bin ]] || { echo "own-coverage.sh: no binary for target $target" >&2; exit 1; }
"$bin" "$corpus" -runs=0 -print_coverage=1 -rss_limit_mb=4096 -timeout=60 2>&1 |
  { grep -E '^(UN)?COVERED_FUNC' || true; } | { grep -F "$src" || true; } |
  awk -v src="$src" 'function line(at) { sub(/^.*:/, "", at); return at }
    {
      split($5, e, "/"); f = $NF; sub(/:[0-9]+$/, "", f)
      if (index(f, src) == 1) f = "src/" substr(f, length(src) + 1)
      c[f] += e[1]; t[f] += e[2]; C += e[1]; T += e[2]
      if (ENVIRON["FUNCTIONS"] == "1" && e[1] < e[2]) {
        name = $0; sub(/^[^<]*edges: [0-9]+\/[0-9]+ /, "", name); sub(/ [^ ]+$/, "", name)
        printf "  %-30s %5d left  %s\n", f ":" line($NF), e[2] - e[1], substr(name, 1, 120)
      }
    } END {
      if (T == 0) {
        print "own-coverage.sh: no function of src/ in the coverage report (symbolizer?)" > "/dev/stderr"
        exit 1
      }
      for (f in c) printf "%-32s %6d / %6d\n", f, c[f], t[f]
      printf "%-32s %6d / %6d\n", "total", C, T
    }' | sort -b -k1,1V
