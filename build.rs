//! Build script: rebuild when a migration is added or changed. `sqlx::migrate!` embeds the
//! migration files at compile time, and on stable Rust it cannot ask cargo to watch their
//! directory itself (the fix sqlx documents: `sqlx migrate build-script`).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
