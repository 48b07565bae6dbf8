//! The repository's copy of the seed API document (`docs/seed/api_zh.md`, which the tests run
//! the curls of) is the workplace's original, byte for byte: its SHA-256 is the one recorded
//! here when it was copied, and where the original is present beside the checkout it is also
//! compared directly.

use sha2::{Digest, Sha256};

/// SHA-256 of `../shared/seed/api_zh.md` as copied.
const ORIGINAL_SHA256: &str = "5f40d78132ebb99e54109ed3cd3179dbebdc1504c33d2214f724befc592ac72b";

#[test]
fn the_seed_copy_matches_the_original() {
    let copy = include_str!("../docs/seed/api_zh.md");
    assert_eq!(
        hex::encode(Sha256::digest(copy.as_bytes())),
        ORIGINAL_SHA256,
        "docs/seed/api_zh.md is not the original seed document"
    );
    let original =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seed/api_zh.md");
    if let Ok(text) = std::fs::read_to_string(&original) {
        assert_eq!(
            copy,
            text,
            "docs/seed/api_zh.md differs from {}",
            original.display()
        );
    }
}
