//! Log setup: `RUST_LOG` wins; otherwise the given default level. Lines go to stderr, as text or
//! JSON. Nothing logs secrets: keys, prompts and vendor keys are never fields at `info`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(format: &str, default_level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},sqlx=warn,hyper=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
