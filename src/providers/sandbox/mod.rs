//! The `sandbox` vendor: offline, deterministic, real outputs for every catalog model, so demo
//! mode and tests need no vendor account. A product feature, not a test mock.

mod chat;
mod media;

pub use chat::SandboxChat;
pub use media::SandboxMedia;
