//! Network policy for requests the server makes on users' behalf.

pub mod outbound;

pub use outbound::OutboundGuard;
