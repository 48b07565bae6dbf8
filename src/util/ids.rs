//! Random ids and the shape of an API key.

use rand::Rng;

/// A random, unguessable id (128 bits, hex).
pub fn random_id() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

/// Whether a string has the shape of one of our keys (`sk-` + URL-safe characters).
pub fn is_well_formed_key(key: &str) -> bool {
    key.strip_prefix("sk-").is_some_and(|rest| {
        (16..=128).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}
