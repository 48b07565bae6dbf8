//! Start-up and shutdown of `llmage serve`: build the shared [`AppState`] on [`Core`], run
//! background jobs, serve HTTP with the router ([`crate::api::router`]), and on SIGTERM/Ctrl-C
//! let in-flight requests finish (streams get the grace period, then end with an SSE error event
//! and are billed for what they produced).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounts::keys::Keys;
use crate::api::state::{AppState, Inner};
use crate::billing::ledger::Ledger;
use crate::channels::Channels;
use crate::config::Config;
use crate::providers::chat::{ChatAdapters, ChatDeps};
use crate::providers::media::MediaBackend;
use crate::providers::openai::Timeouts;
use crate::providers::sandbox::SandboxMedia;
use crate::providers::transport::Transport;
use crate::relay::ChatRelay;
use crate::state::Core;
use crate::tasks::callback::Callbacks;
use crate::tasks::engine::Engine;
use crate::tasks::service::{Deadlines, TaskService};
use crate::tasks::store::TaskStore;
use crate::vendor::Vendor;

/// Build the state the router serves.
pub async fn build_state(config: Config, core: Core) -> anyhow::Result<AppState> {
    let channels = Channels::load(
        core.channel_store.clone(),
        core.catalog.clone(),
        (config.default_price_in, config.default_price_out),
    )
    .await?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(config.upstream_connect_timeout_secs))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .user_agent(concat!("llmage/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")?;
    let timeouts = Timeouts {
        first_byte: Duration::from_secs(config.upstream_first_byte_timeout_secs),
        total: Duration::from_secs(config.upstream_total_timeout_secs),
        idle: Duration::from_secs(config.upstream_idle_timeout_secs),
    };
    // Uploads and downloads are written here as they arrive, then copied into the store.
    let staging = crate::storage::staging::Staging::new(&config.data_dir.join("tmp"))
        .context("cannot open the staging directory")?;
    let files = match &config.storage.url {
        Some(_) => crate::storage::files::FileStore::s3(core.db.clone(), &config.storage, staging)
            .context("cannot open the S3 file store")?,
        None => crate::storage::files::FileStore::local(
            core.db.clone(),
            &config.data_dir.join("files"),
            staging,
        )
        .context("cannot open the file store")?,
    };
    let ledger = Ledger::new(core.db.clone());
    let lease = crate::billing::holds::ProcessLease::register(
        core.db.clone(),
        Duration::from_secs(config.billing.hold_lease_secs),
    )
    .await
    .context("cannot register the process lease")?;
    let outbound = crate::net::OutboundGuard::new(&config.outbound_allow)
        .map_err(|e| anyhow::anyhow!("outbound_allow: {e}"))?;
    let sms = crate::accounts::sms::SmsSender::from_config(&config.auth, http.clone());
    let alipay = crate::payments::alipay::Alipay::from_config(
        &config.alipay,
        config.public_base_url.as_deref(),
        http.clone(),
    )
    .context("[alipay]")?
    .map(Arc::new);
    let mut limits = crate::api::limits::RateLimits::new(&config.limits);
    if let Some(url) = &config.redis.url {
        limits = limits
            .with_redis(url, &config.redis.prefix)
            .await
            .map_err(|e| anyhow::anyhow!("redis.url: {e}"))?;
    }
    let tasks = TaskService {
        store: TaskStore::new(core.db.clone()),
        ledger: ledger.clone(),
        files: files.clone(),
        wake: Arc::new(tokio::sync::Notify::new()),
        demo: config.demo,
        deadlines: Deadlines {
            image: Duration::from_secs(config.task_image_deadline_secs),
            video: Duration::from_secs(config.task_video_deadline_secs),
            off_peak: Duration::from_secs(config.task_off_peak_deadline_secs),
        },
        outbound,
    };
    let health = Arc::new(crate::channels::ChannelHealth::new(
        core.channel_store.clone(),
        config.vendors.failures_to_cool,
        Duration::from_secs(config.vendors.cool_secs),
    ));
    // The writer ends with the last handle, i.e. with the state: on a tracker of its own,
    // which shutdown does not wait on (every call waits for its own commit before it ends).
    let commits =
        crate::billing::group_commit::GroupCommit::start(core.db.clone(), &TaskTracker::new())
            .context("cannot start the ledger writer")?;
    let relay = ChatRelay {
        health,
        chat: ChatAdapters::new(&ChatDeps {
            http: http.clone(),
            timeouts,
            sandbox_chunk_delay: Duration::from_millis(config.sandbox.chat_chunk_delay_ms),
        }),
        demo: config.demo,
        default_max_output: config.default_max_output_tokens,
        ledger: commits.clone(),
        holds: crate::billing::chat_holds::ChatHolds::new(
            commits,
            lease.owner().to_owned(),
            CHAT_LEASE_LINGER,
        ),
        balances: ledger.clone(),
        owner: lease.owner().to_owned(),
        write_timeout: Duration::from_secs(config.client_write_timeout_secs),
        tracker: TaskTracker::new(),
        abort: CancellationToken::new(),
    };
    Ok(AppState::new(Inner {
        keys: Keys::new(core.db.clone()),
        files,
        tasks,
        http,
        background: TaskTracker::new(),
        limits,
        links: core.links.clone(),
        users: crate::accounts::users::Users::new(core.db.clone()),
        codes: crate::accounts::codes::Codes::new(core.db.clone(), config.auth.clone()),
        sessions: crate::accounts::sessions::Sessions::new(
            core.db.clone(),
            config.auth.session_ttl_secs,
        ),
        sms,
        orders: crate::payments::orders::Orders::new(core.db.clone()),
        alipay,
        ledger,
        lease,
        db: core.db,
        channels: Arc::new(channels),
        relay,
        config,
    }))
}

/// Vendors that fetch uploaded videos/audio only by URL need our public base URL for the signed
/// `/idfile` links: refuse to start without one rather than fail their tasks later.
fn check_channels_need(state: &AppState) -> anyhow::Result<()> {
    if state.config.public_base_url.is_some() {
        return Ok(());
    }
    let table = state.channels.table();
    let url_only = table
        .all_channels()
        .filter(|c| {
            c.enabled
                && crate::providers::media_adapter(c.vendor)
                    .is_some_and(|a| a.fetches_inputs_by_url())
        })
        .map(|c| format!("{} (#{}, {})", c.name, c.id, c.vendor.as_str()))
        .collect::<Vec<_>>();
    if url_only.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "channel(s) {} fetch uploaded videos and audio by URL: set public_base_url (e.g. \
         --public-base-url https://api.example.com) to an address the vendor can reach, or \
         disable the channel(s) with `llmage admin channel disable ID`",
        url_only.join(", ")
    )
}

/// How long a chat credit lease with no call in flight is kept before it goes back to the
/// user's free balance (`billing::chat_holds`): long enough for the next wave of a busy user's
/// calls to find it, short enough that other uses of the balance barely notice.
const CHAT_LEASE_LINGER: Duration = Duration::from_millis(100);

/// Run the server until a shutdown signal.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    crate::metrics::install();
    let core = Core::open(&config).await?;
    if config.demo {
        crate::demo::prepare(&config, &core).await?;
    }
    crate::admin::sync_config_channels(&core, &config.channels).await?;
    let addr: SocketAddr = config.listen.parse().context("bad listen address")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let state = build_state(config, core).await?;
    check_channels_need(&state)?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, demo = state.config.demo, "llmage listening");
    println!("llmage listening on http://{local}");

    let stop = CancellationToken::new();
    spawn_background_jobs(&state, stop.clone());
    start_task_engine(&state, local, stop.clone());
    let app = crate::api::router(state.clone());
    let server = crate::http_server::serve(
        listener,
        app,
        crate::http_server::ConnectionLimits::from_config(&state.config),
        stop.clone(),
    );
    let abort = state.relay.abort.clone();
    // Watches for the signal (no task of its own: nothing to wait for at exit), then gives
    // in-flight requests the grace period.
    let grace_timer = async {
        tokio::select! {
            () = wait_for_signal() => {
                tracing::info!("shutdown requested; finishing in-flight requests");
                stop.cancel();
            }
            () = stop.cancelled() => {}
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = server => {}
        () = grace_timer => tracing::warn!("grace period over; ending remaining streams"),
    }
    abort.cancel();
    state.background.close();
    if tokio::time::timeout(grace.max(Duration::from_secs(5)), state.background.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "some task steps did not finish; their leases expire and another run resumes them"
        );
    }
    state.relay.tracker.close();
    if tokio::time::timeout(Duration::from_secs(10), state.relay.tracker.wait())
        .await
        .is_err()
    {
        tracing::error!(
            "some billing tasks did not finish; their reservations are released by the next start"
        );
    }
    // Every call of ours is settled (its last settlement gave its credit lease back; this
    // returns any left by a call that failed before it was held): give the process lease up so
    // nothing waits for it to expire.
    state.relay.holds.end_all().await;
    state.lease.end().await;
    state.db.close().await;
    tracing::info!("llmage stopped");
    Ok(())
}

/// The task engine and the callback sender.
fn start_task_engine(state: &AppState, local: SocketAddr, stop: CancellationToken) {
    let sandbox = SandboxMedia {
        image_time: Duration::from_millis(state.config.sandbox.image_ms),
        video_time: Duration::from_millis(state.config.sandbox.video_ms),
    };
    let vendors = &state.config.vendors;
    let transport = Transport::new(
        state.http.clone(),
        (
            Duration::from_millis(vendors.poll_first_ms),
            Duration::from_millis(vendors.poll_max_ms),
        ),
        Duration::from_secs(vendors.submit_timeout_secs),
    );
    let calls = vendors.max_concurrent_calls;
    let backends: HashMap<Vendor, MediaBackend> = Vendor::ALL
        .into_iter()
        .filter_map(|vendor| MediaBackend::of(vendor, &transport, &sandbox))
        .map(|backend| (backend.vendor(), backend))
        .collect();
    let engine = Arc::new(Engine {
        store: state.tasks.store.clone(),
        ledger: state.ledger.clone(),
        files: state.files.clone(),
        channels: state.channels.clone(),
        health: state.relay.health.clone(),
        limits: backends
            .keys()
            .map(|vendor| (*vendor, Arc::new(Semaphore::new(calls))))
            .collect(),
        backends,
        http: state.http.clone(),
        wake: state.tasks.wake.clone(),
        owner: format!("{}-{}", std::process::id(), crate::util::ids::random_id()),
        inflight: AtomicUsize::new(0),
        stepping: std::sync::Mutex::default(),
        lease: Duration::from_secs(state.config.task_lease_secs),
        public_base_url: state.config.public_base_url.clone(),
        links: state.links.clone(),
        tracker: state.background.clone(),
    });
    state.background.spawn(engine.run(stop.clone()));
    let outbound = state.tasks.outbound.clone();
    let http = match outbound.client(
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("llmage/", env!("CARGO_PKG_VERSION"))),
    ) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the callback client; callbacks are off");
            return;
        }
    };
    let callbacks = Arc::new(Callbacks {
        store: state.tasks.store.clone(),
        db: state.db.clone(),
        http,
        outbound,
        base_url: state
            .config
            .public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{local}")),
        retry_secs: state.config.callback_retry_secs.clone(),
    });
    state.background.spawn(callbacks.run(stop));
}

/// The periodic jobs, on [`Inner::background`]: each ends at `stop` (cancelled when shutdown
/// starts), so the wait for that tracker at exit does not wait on them.
fn spawn_background_jobs(state: &AppState, stop: CancellationToken) {
    state.background.spawn(crate::accounts::streams::watch(
        state.db.clone(),
        stop.clone(),
    ));
    if let Some(alipay) = &state.alipay {
        state.background.spawn(crate::payments::reconcile::run(
            alipay.clone(),
            state.orders.clone(),
            Duration::from_secs(state.config.alipay.reconcile_secs),
            Duration::from_secs(state.config.alipay.order_timeout_mins * 60 + 24 * 3600),
            stop.clone(),
        ));
    }
    let channels = state.channels.clone();
    let stop_channels = stop.clone();
    state.background.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop_channels.cancelled() => break,
            }
            if let Err(e) = channels.refresh().await {
                tracing::warn!(error = %e, "channel refresh failed");
            }
        }
    });
    // Unfinished tasks by status (over all processes) for /metrics.
    let store = state.tasks.store.clone();
    let stop_gauges = stop.clone();
    state.background.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop_gauges.cancelled() => break,
            }
            if let Ok(counts) = store.counts().await {
                for status in ["CREATED", "PENDING", "RUNNING"] {
                    let n = counts
                        .iter()
                        .find(|(s, _)| s == status)
                        .map_or(0, |(_, n)| *n);
                    metrics::gauge!("llmage_tasks", "status" => status).set(n as f64);
                }
            }
        }
    });
    // The opt-in low-balance SMS, one per downward crossing.
    state.background.spawn(crate::accounts::low_balance::watch(
        state.db.clone(),
        state.sms.clone(),
        stop.clone(),
    ));
    // Chat credit leases with no call in flight go back after their linger.
    let holds = state.relay.holds.clone();
    let stop_leases = stop.clone();
    state.background.spawn(async move {
        let mut tick = tokio::time::interval((holds.linger() / 2).max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop_leases.cancelled() => break,
            }
            holds.end_idle().await;
        }
    });
    // Holds live as long as their owner process: renew ours, release those of dead processes.
    state
        .background
        .spawn(state.lease.clone().keep(state.ledger.clone(), stop));
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
