//! Users, their API keys, and phone login (SMS codes, sessions).

pub mod codes;
pub mod keys;
pub mod low_balance;
pub mod sessions;
pub mod sms;
pub mod spend;
pub mod streams;
pub mod users;
