//! Leaf helpers every layer may use and which use no other module of the crate: the clock and
//! UTC dates ([`clock`]), random ids and the shape of an API key ([`ids`]), yuan amounts as text
//! and integer fen ([`yuan`]).

pub mod clock;
pub mod ids;
pub mod yuan;
