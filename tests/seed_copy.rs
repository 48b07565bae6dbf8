//! The repository's copy of the seed API document (`docs/seed/api_zh.md`, which the tests run
//! the curls of) is the workplace's original, byte for byte. The original's SHA-256 is recorded
//! here, so the check runs on any checkout: the copy must hash to it always, and where the
//! original is present beside the checkout (`../shared/seed/api_zh.md`) it must hash to it too —
//! a change on either side fails. Only a missing original is tolerated (a checkout elsewhere);
//! any other error reading it fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

use sha2::{Digest, Sha256};

/// SHA-256 of `../shared/seed/api_zh.md` as copied.
const ORIGINAL_SHA256: &str = "5f40d78132ebb99e54109ed3cd3179dbebdc1504c33d2214f724befc592ac72b";

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn the_seed_copy_matches_the_original() {
    let copy = include_bytes!("../docs/seed/api_zh.md");
    assert!(!copy.is_empty(), "docs/seed/api_zh.md is empty");
    assert_eq!(
        sha256(copy),
        ORIGINAL_SHA256,
        "docs/seed/api_zh.md is not the original seed document"
    );
    let original =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seed/api_zh.md");
    match std::fs::read(&original) {
        Ok(text) => assert_eq!(
            sha256(&text),
            ORIGINAL_SHA256,
            "{} changed since it was copied: copy it to docs/seed/api_zh.md again and record \
             its SHA-256 here",
            original.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!(
                "{} is not beside this checkout: checked the copy against the recorded SHA-256",
                original.display()
            );
        }
        Err(e) => panic!("cannot read {}: {e}", original.display()),
    }
}
