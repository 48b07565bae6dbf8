//! Network policy: requests the server makes on users' behalf, and which client a request
//! comes from behind reverse proxies.

pub mod outbound;
pub mod proxies;

pub use outbound::{OutboundGuard, is_public_unicast};
pub use proxies::TrustedProxies;
