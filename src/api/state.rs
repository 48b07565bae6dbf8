//! [`AppState`]: everything a request handler needs, cheap to clone. Built by the server at
//! start-up (`crate::server::build_state`) from [`crate::state::Core`].

use std::ops::Deref;
use std::sync::Arc;

use tokio_util::task::TaskTracker;

use crate::accounts::keys::Keys;
use crate::billing::ledger::Ledger;
use crate::channels::Channels;
use crate::config::Config;
use crate::relay::ChatRelay;
use crate::storage::Db;
use crate::tasks::service::TaskService;

/// Everything a request handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The shared parts behind [`AppState`].
pub struct Inner {
    pub config: Config,
    pub db: Db,
    pub keys: Keys,
    pub ledger: Ledger,
    /// This process's lease on its chat holds.
    pub lease: crate::billing::holds::ProcessLease,
    pub channels: Arc<Channels>,
    pub relay: ChatRelay,
    pub files: crate::storage::files::FileStore,
    pub tasks: TaskService,
    /// Shared outbound HTTP client (vendors, downloads, callbacks).
    pub http: reqwest::Client,
    /// Background work that must finish before exit (task steps, callbacks, the periodic jobs,
    /// which end at the stop signal).
    pub background: TaskTracker,
    pub limits: super::limits::RateLimits,
    pub links: crate::secrets::LinkSigner,
    pub users: crate::accounts::users::Users,
    pub codes: crate::accounts::codes::Codes,
    pub sessions: crate::accounts::sessions::Sessions,
    pub sms: crate::accounts::sms::SmsSender,
    pub orders: crate::payments::orders::Orders,
    /// The Alipay application when `[alipay]` is configured (recharge is off without it).
    pub alipay: Option<Arc<crate::payments::alipay::Alipay>>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// The state over its parts.
    pub fn new(inner: Inner) -> AppState {
        AppState(Arc::new(inner))
    }
}
