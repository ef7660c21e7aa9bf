#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, clippy, a short bounded fuzz pass over
# every decoder, then the full test suite (unit, property, end-to-end). The README's test command.
#
# Environment:
#   FUZZ_SECONDS   seconds per fuzz target (default 4; 0 skips fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# CI builds from scratch: incremental caches only cost disk (tens of GB across the workspace's configurations).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

FUZZ_SECONDS="${FUZZ_SECONDS:-4}"
if [ "$FUZZ_SECONDS" != "0" ]; then
    if command -v cargo-fuzz >/dev/null 2>&1; then
        step "fuzz smoke: every target for ${FUZZ_SECONDS}s"
        # cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
        export RUSTC_BOOTSTRAP=1
        (cd fuzz && cargo fuzz build -s none -O 2>&1 | tail -1)
        for t in $(cd fuzz && cargo fuzz list); do
            mkdir -p "fuzz/corpus/$t"
            seeds=""; [ -d "fuzz/seeds/$t" ] && seeds="seeds/$t"
            log="fuzz/artifacts/$t.log"
            mkdir -p fuzz/artifacts
            if (cd fuzz && cargo fuzz run -s none -O "$t" "corpus/$t" $seeds -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048) >"$log" 2>&1; then
                echo "fuzz $t: $(grep -E '^Done [0-9]+ runs' "$log" | tail -1)"
            else
                tail -40 "$log"; echo "fuzz target $t FAILED (log: $log)"; exit 1
            fi
        done
        unset RUSTC_BOOTSTRAP
    else
        echo "cargo-fuzz not installed: skipping the fuzz smoke (install: cargo install cargo-fuzz --locked)"
    fi
fi

step "cargo test --workspace"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --all-targets 2>&1 | tee "$log"
cargo test --workspace --doc 2>&1 | tee -a "$log"
# Raw public keys (RFC 7250) need OpenSSL >= 3.2: the `vendored` feature builds it (about 1.5 min once).
step "cargo test -p lwm2m-dtls --features vendored (RPK)"
cargo clippy -p lwm2m-dtls --features vendored --all-targets --quiet -- -D warnings
cargo test -p lwm2m-dtls --features vendored 2>&1 | tee -a "$log"
# ... and the client runtime registering with a raw public key over that build.
cargo test -p lwm2m-client --features lwm2m-dtls/vendored --test runtime_x509 2>&1 | tee -a "$log"
# One closing line over every test binary and the doc tests.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "\nall tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
