//! The repository's copy of the seed API document (`docs/seed/api_zh.md`, which the tests run
//! the curls of) is the workplace's original, byte for byte, where the original is present.

#[test]
fn the_seed_copy_matches_the_original() {
    let copy = include_str!("../docs/seed/api_zh.md");
    let original =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seed/api_zh.md");
    match std::fs::read_to_string(&original) {
        Ok(text) => assert_eq!(
            copy,
            text,
            "docs/seed/api_zh.md differs from {}",
            original.display()
        ),
        // A checkout without the workplace beside it: the copy is all there is.
        Err(_) => assert!(copy.contains("/llmage/v1/chat/completions")),
    }
}
