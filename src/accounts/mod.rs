//! Users and their API keys.

pub mod keys;
pub mod users;
