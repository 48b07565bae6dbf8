//! One [`Config`] for the server and the `admin` commands, layered as
//! defaults < TOML file (`--config`) < `LLMAGE_*` environment (nested keys with `__`, e.g.
//! `LLMAGE_SANDBOX__CHAT_CHUNK_DELAY_MS`; `DATABASE_URL` is read too) < command-line flags,
//! then validated with a message that names the bad key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The whole configuration.
/// Credits a new phone gets in demo mode unless `signup_credits` says otherwise.
pub const DEMO_SIGNUP_CREDITS: i64 = 1_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// Directory for the SQLite file, the secret key and (later) stored files.
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL; empty for SQLite in the data dir.
    pub database_url: Option<String>,
    /// Demo mode: the sandbox serves every model without a channel; a demo user exists.
    pub demo: bool,
    /// Fixed API key for the demo user (else one is generated once and kept).
    pub demo_key: Option<String>,
    /// Credits the demo user starts with.
    pub demo_credits: i64,
    /// Credits a new phone gets at its first login (a ledger entry); unset: 0, or 1,000 in demo
    /// mode.
    pub signup_credits: Option<i64>,
    /// Base URL for links we hand out (result files); else taken from the request's Host.
    pub public_base_url: Option<String>,
    /// Largest JSON request body in bytes.
    pub max_body_bytes: usize,
    /// Largest uploaded file (multipart part or `data:` URI) in bytes.
    pub max_upload_bytes: usize,
    /// Largest multipart/form-data body in bytes (all files of one submission).
    pub max_multipart_bytes: usize,
    /// An image task not finished after this many seconds fails and is refunded.
    pub task_image_deadline_secs: u64,
    /// A video task not finished after this many seconds fails and is refunded.
    pub task_video_deadline_secs: u64,
    /// How long `POST /v1/images/generations` waits for its tasks before answering 504 (the
    /// tasks go on and stay visible).
    pub images_wait_secs: u64,
    /// An off-peak task (`off_peak = "Y"`, e.g. Vidu 错峰: done within 48 h) not finished after
    /// this many seconds fails and is refunded.
    pub task_off_peak_deadline_secs: u64,
    /// Seconds a process owns a task it works on; after a crash another process (or the restarted
    /// one) takes the task over once this has passed.
    pub task_lease_secs: u64,
    /// Delays in seconds before each retry of an undelivered task callback; then it is given up.
    pub callback_retry_secs: Vec<u64>,
    /// Hosts, IPs or CIDR networks that callback and input-file URLs may point at although they
    /// are not public (by default every loopback/private/link-local address is refused).
    pub outbound_allow: Vec<String>,
    /// Bearer token that may read `/metrics` (else only loopback clients may).
    pub metrics_token: Option<String>,
    /// `text` or `json` log lines.
    pub log_format: String,
    /// Base64 32-byte key that encrypts vendor keys at rest (else `<data-dir>/secret.key`).
    pub secret_key: Option<String>,
    /// Catalog file replacing the built-in one.
    pub catalog_file: Option<PathBuf>,
    /// Price (credits per million tokens) of chat models only a channel knows.
    pub default_price_in: i64,
    pub default_price_out: i64,
    /// Largest completion assumed for a reservation when neither request nor catalog bound it.
    pub default_max_output_tokens: u64,
    /// Seconds a request's head may take once its first byte arrived (slowloris); silent and
    /// idle connections are closed after `security.connection_idle_secs`.
    pub header_read_timeout_secs: u64,
    /// Seconds a streamed answer waits for a client that stopped reading before it is cut (the
    /// call is billed for what was produced).
    pub client_write_timeout_secs: u64,
    /// Seconds to wait for in-flight requests on SIGTERM/Ctrl-C.
    pub shutdown_grace_secs: u64,
    /// Upstream timeouts in seconds.
    pub upstream_connect_timeout_secs: u64,
    pub upstream_first_byte_timeout_secs: u64,
    pub upstream_total_timeout_secs: u64,
    pub upstream_idle_timeout_secs: u64,
    pub sandbox: SandboxConfig,
    pub limits: LimitsConfig,
    pub storage: StorageConfig,
    pub redis: RedisConfig,
    pub vendors: VendorsConfig,
    pub auth: AuthConfig,
    /// `[sms] provider = "log" | "aliyun"`: the documented place for the SMS sender (overrides
    /// `auth.sms_provider` when given).
    pub sms: SmsConfig,
    pub alipay: AlipayConfig,
    pub billing: BillingConfig,
    /// `[security]`: connection deadlines, trusted proxies, per-user caps (docs/security.md).
    pub security: SecurityConfig,
    /// Channels declared in the config file (`[[channels]]`), synced into the database at start.
    pub channels: Vec<ChannelConfig>,
}

/// A channel in the config file; the same fields as `llmage admin channel add`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    pub vendor: String,
    pub base_url: String,
    pub api_key: String,
    /// Our model ids, each optionally `model=upstream-name`.
    pub models: Vec<String>,
    #[serde(default)]
    pub priority: i64,
    #[serde(default = "one")]
    pub weight: i64,
    #[serde(default)]
    pub price_in: Option<i64>,
    #[serde(default)]
    pub price_out: Option<i64>,
    #[serde(default)]
    pub max_concurrency: Option<i64>,
    #[serde(default)]
    pub rpm: Option<i64>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn one() -> i64 {
    1
}

fn yes() -> bool {
    true
}

/// Phone login rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Where codes go: `log` (writes `SMS <phone> <code>` to the server log) or `aliyun`.
    pub sms_provider: String,
    /// Aliyun SMS (`sms_provider = "aliyun"`): endpoint, AccessKey, approved signature and template.
    pub aliyun_endpoint: String,
    pub aliyun_access_key_id: Option<String>,
    pub aliyun_access_key_secret: Option<String>,
    pub aliyun_sign_name: Option<String>,
    pub aliyun_template_code: Option<String>,
    /// The approved template of the opt-in low-balance SMS (params `balance`, `threshold`);
    /// without it no such SMS is sent through Aliyun.
    pub aliyun_low_balance_template: Option<String>,
    pub code_ttl_secs: u64,
    pub resend_secs: u64,
    /// Codes per phone per day.
    pub daily_cap: u32,
    /// Codes per client address per hour.
    pub ip_hourly_cap: u32,
    /// Codes for one phone from one client address per day (below `daily_cap`, so one stranger
    /// cannot use up a phone's codes).
    pub requester_daily_cap: u32,
    /// Codes per device (the `llmage_device` cookie) per hour.
    pub device_hourly_cap: u32,
    /// Wrong tries that lock a code.
    pub max_attempts: u32,
    pub session_ttl_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            sms_provider: "log".into(),
            aliyun_endpoint: "https://dysmsapi.aliyuncs.com".into(),
            aliyun_access_key_id: None,
            aliyun_access_key_secret: None,
            aliyun_sign_name: None,
            aliyun_template_code: None,
            aliyun_low_balance_template: None,
            code_ttl_secs: 300,
            resend_secs: 60,
            daily_cap: 10,
            ip_hourly_cap: 20,
            requester_daily_cap: 3,
            device_hourly_cap: 10,
            max_attempts: 5,
            session_ttl_secs: 7 * 24 * 3600,
        }
    }
}

/// `[sms]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    pub provider: Option<String>,
}

/// `[alipay]`: recharge through Alipay (支付宝). Without `app_id` recharge is switched off.
/// Key files hold PEM or the bare base64 that Alipay's console shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlipayConfig {
    /// Numeric ids: an `LLMAGE_ALIPAY__APP_ID=2021…` environment value arrives as a number.
    #[serde(deserialize_with = "text_or_number")]
    pub app_id: Option<String>,
    /// Our application private key (signs requests).
    pub app_private_key_file: Option<PathBuf>,
    /// Alipay's public key (verifies notifications and responses).
    pub alipay_public_key_file: Option<PathBuf>,
    pub gateway_url: String,
    /// Where Alipay posts payment notifications (`…/api/payments/alipay/notify`); else derived
    /// from `public_base_url`.
    pub notify_url: Option<String>,
    /// Where the buyer's browser returns after paying (the console's recharge page).
    pub return_url: Option<String>,
    /// Our merchant PID (`seller_id` in notifications); checked when given.
    #[serde(deserialize_with = "text_or_number")]
    pub seller_id: Option<String>,
    /// Minutes an order stays payable (`timeout_express`).
    pub order_timeout_mins: u64,
    /// Seconds between reconciliation runs (trade.query for still-open orders).
    pub reconcile_secs: u64,
    /// Seconds allowed for one call to Alipay.
    pub request_timeout_secs: u64,
}

impl Default for AlipayConfig {
    fn default() -> Self {
        AlipayConfig {
            app_id: None,
            app_private_key_file: None,
            alipay_public_key_file: None,
            gateway_url: "https://openapi.alipay.com/gateway.do".into(),
            notify_url: None,
            return_url: None,
            seller_id: None,
            order_timeout_mins: 30,
            reconcile_secs: 60,
            request_timeout_secs: 10,
        }
    }
}

/// An optional text value that may also be written (or read from the environment) as a number.
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Unsigned(u64),
        Signed(i64),
    }
    Ok(Option::<Written>::deserialize(d)?.map(|t| match t {
        Written::Text(s) => s,
        Written::Unsigned(n) => n.to_string(),
        Written::Signed(n) => n.to_string(),
    }))
}

/// A yuan amount written as text ("10.00") or as a number (10, 10.5).
fn yuan_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Yuan {
        Text(String),
        Whole(u64),
        Fraction(f64),
    }
    Ok(match Yuan::deserialize(d)? {
        Yuan::Text(s) => s,
        Yuan::Whole(n) => n.to_string(),
        Yuan::Fraction(f) => format!("{f:.2}"),
    })
}

/// `[billing]`: recharge rate and limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    /// Credits one yuan buys.
    pub credits_per_yuan: i64,
    /// Smallest and largest single recharge, in yuan ("10.00").
    #[serde(deserialize_with = "yuan_text")]
    pub recharge_min_yuan: String,
    #[serde(deserialize_with = "yuan_text")]
    pub recharge_max_yuan: String,
    /// Seconds a process's claim on its chat holds lasts without a heartbeat (renewed every
    /// third of it): the holds of a process that died are released this long after its last
    /// heartbeat, and never while it lives.
    pub hold_lease_secs: u64,
}

impl Default for BillingConfig {
    fn default() -> Self {
        BillingConfig {
            credits_per_yuan: 100,
            recharge_min_yuan: "1.00".into(),
            recharge_max_yuan: "50000.00".into(),
            hold_lease_secs: 30,
        }
    }
}

/// How real vendors are driven.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VendorsConfig {
    /// First poll of a vendor task after this many milliseconds; later polls back off (×1.5)
    /// up to `poll_max_ms`.
    pub poll_first_ms: u64,
    pub poll_max_ms: u64,
    /// Calls in flight to one vendor from this process.
    pub max_concurrent_calls: usize,
    /// Seconds a vendor may take to accept a task before it goes to the next channel.
    pub submit_timeout_secs: u64,
    /// Retryable failures in a row (chat calls, task submissions) after which a channel cools
    /// off for `cool_secs` (0 = never).
    pub failures_to_cool: u32,
    pub cool_secs: u64,
}

impl Default for VendorsConfig {
    fn default() -> Self {
        VendorsConfig {
            poll_first_ms: 5_000,
            poll_max_ms: 30_000,
            max_concurrent_calls: 64,
            submit_timeout_secs: 60,
            failures_to_cool: 5,
            cool_secs: 60,
        }
    }
}

/// Optional Redis, for rate-limit counters shared by every gateway process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:6379/0`; empty for per-process counters.
    pub url: Option<String>,
    /// Prefix of our keys (several deployments may share one Redis).
    pub prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            prefix: "llmage".into(),
        }
    }
}

/// Where stored files (inputs, archived results) live.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `s3://bucket/prefix` for S3 or an S3-compatible service; empty for `<data_dir>/files`.
    pub url: Option<String>,
    /// Endpoint of an S3-compatible service (MinIO, OSS, R2, …); empty for AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Credentials; else the usual `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` environment.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// Rate limits of one process (0 turns a limit off).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per second from one client IP, on every route, and the burst allowed.
    pub per_ip_per_sec: u32,
    pub per_ip_burst: u32,
    /// Requests per second with one API key, and the burst allowed.
    pub per_key_per_sec: u32,
    pub per_key_burst: u32,
    /// Failed authentications per minute from one IP before it must wait.
    pub auth_failures_per_ip_per_minute: u32,
    /// Multipart task submissions one user may be uploading at once (429 beyond; 0 = no cap).
    pub concurrent_uploads_per_user: u32,
    /// Unfinished (CREATED/PENDING/RUNNING) tasks one user may have (429 beyond; 0 = no cap).
    pub unfinished_tasks_per_user: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            per_ip_per_sec: 200,
            per_ip_burst: 400,
            per_key_per_sec: 100,
            per_key_burst: 200,
            auth_failures_per_ip_per_minute: 30,
            concurrent_uploads_per_user: 8,
            unfinished_tasks_per_user: 1_000,
        }
    }
}

/// `[security]`: protections against slow or abusive clients (each is described in
/// `docs/security.md`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Reverse proxies (CIDR networks or addresses) whose `X-Forwarded-For` / `Forwarded` header
    /// is believed; from anyone else the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Seconds a connection without a request in flight stays open: silent since accept, or
    /// idle after its last response (keep-alive). Longer than HTTP clients' pool idle time
    /// (90 s for reqwest and Go) so none reuses a connection that is being closed.
    pub connection_idle_secs: u64,
    /// A request body must arrive at least this fast on average (bytes per second), measured
    /// after `body_rate_grace_secs`; 0 turns the check off.
    pub min_body_bytes_per_sec: u64,
    pub body_rate_grace_secs: u64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            trusted_proxies: Vec::new(),
            connection_idle_secs: 120,
            min_body_bytes_per_sec: 1024,
            body_rate_grace_secs: 10,
        }
    }
}

/// Timing of the offline sandbox vendor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Pause between streamed chat chunks, in milliseconds.
    pub chat_chunk_delay_ms: u64,
    /// Total time of a sandbox image task, in milliseconds.
    pub image_ms: u64,
    /// Total time of a sandbox video task, in milliseconds.
    pub video_ms: u64,
    /// Demo mode without Alipay: recharge through the built-in sandbox cashier (its button pays
    /// without money). Turn it off on a demo server that also has real channels.
    pub cashier: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            chat_chunk_delay_ms: 30,
            image_ms: 1_000,
            video_ms: 6_000,
            cashier: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            demo: false,
            demo_key: None,
            demo_credits: 1_000_000,
            signup_credits: None,
            public_base_url: None,
            max_body_bytes: 16 * 1024 * 1024,
            max_upload_bytes: 20 * 1024 * 1024,
            max_multipart_bytes: 200 * 1024 * 1024,
            task_image_deadline_secs: 1_800,
            task_video_deadline_secs: 7_200,
            images_wait_secs: 120,
            task_off_peak_deadline_secs: 50 * 3_600,
            task_lease_secs: 60,
            callback_retry_secs: vec![10, 60, 300, 1_800, 7_200],
            outbound_allow: Vec::new(),
            metrics_token: None,
            log_format: "text".into(),
            secret_key: None,
            catalog_file: None,
            default_price_in: 100,
            default_price_out: 200,
            default_max_output_tokens: 8192,
            header_read_timeout_secs: 10,
            client_write_timeout_secs: 60,
            shutdown_grace_secs: 30,
            upstream_connect_timeout_secs: 10,
            upstream_first_byte_timeout_secs: 60,
            upstream_total_timeout_secs: 600,
            upstream_idle_timeout_secs: 120,
            sandbox: SandboxConfig::default(),
            limits: LimitsConfig::default(),
            storage: StorageConfig::default(),
            redis: RedisConfig::default(),
            vendors: VendorsConfig::default(),
            auth: AuthConfig::default(),
            sms: SmsConfig::default(),
            alipay: AlipayConfig::default(),
            billing: BillingConfig::default(),
            security: SecurityConfig::default(),
            channels: Vec::new(),
        }
    }
}

/// Values given on the command line (only the ones present override).
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_base_url: Option<String>,
}

/// A configuration that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration: `{key}` {problem}")]
    Invalid { key: &'static str, problem: String },
}

impl Config {
    /// Credits a new phone gets at its first login: `signup_credits`, else 1,000 in demo mode
    /// (so a newcomer can try the playground) and 0 otherwise.
    pub fn signup_credits(&self) -> i64 {
        self.signup_credits
            .unwrap_or(if self.demo { DEMO_SIGNUP_CREDITS } else { 0 })
    }

    /// Layer the sources and validate.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        Self::load_with_env(file, overrides, Env::prefixed("LLMAGE_"))
    }

    fn load_with_env(
        file: Option<&Path>,
        overrides: &Overrides,
        env: Env,
    ) -> Result<Config, ConfigError> {
        let known = known_keys();
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Load(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment
            .merge(Env::raw().only(&["DATABASE_URL"]))
            // Client variables (LLMAGE_API_KEY, LLMAGE_BASE_URL) share the prefix; keep ours only.
            .merge(
                env.split("__")
                    .filter(move |k| known.iter().any(|n| n.eq_ignore_ascii_case(k.as_str()))),
            )
            .merge(Serialized::defaults(overrides));
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        if let Some(provider) = config.sms.provider.take() {
            config.auth.sms_provider = provider;
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_owned(),
            })
        };
        if self.listen.parse::<SocketAddr>().is_err() {
            return invalid("listen", "must be an address like 127.0.0.1:8080");
        }
        if let Some(url) = self.database_url.as_deref().filter(|u| !u.is_empty())
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return invalid(
                "database_url",
                "must start with postgres://, postgresql:// or sqlite:",
            );
        }
        if let Some(url) = &self.storage.url
            && !url.starts_with("s3://")
        {
            return invalid(
                "storage.url",
                "must be s3://bucket/prefix (or empty for local files)",
            );
        }
        if self.vendors.poll_first_ms == 0
            || self.vendors.poll_max_ms < self.vendors.poll_first_ms
            || self.vendors.max_concurrent_calls == 0
            || self.vendors.submit_timeout_secs == 0
        {
            return invalid(
                "vendors",
                "need 0 < poll_first_ms <= poll_max_ms and max_concurrent_calls >= 1",
            );
        }
        match self.auth.sms_provider.as_str() {
            "log" => {}
            "aliyun" => {
                let a = &self.auth;
                if [
                    &a.aliyun_access_key_id,
                    &a.aliyun_access_key_secret,
                    &a.aliyun_sign_name,
                    &a.aliyun_template_code,
                ]
                .iter()
                .any(|v| v.as_deref().is_none_or(str::is_empty))
                {
                    return invalid(
                        "auth.aliyun_*",
                        "sms_provider = \"aliyun\" needs aliyun_access_key_id, aliyun_access_key_secret, aliyun_sign_name and aliyun_template_code",
                    );
                }
            }
            _ => return invalid("auth.sms_provider", "must be `log` or `aliyun`"),
        }
        if self.auth.code_ttl_secs == 0
            || self.auth.session_ttl_secs == 0
            || self.auth.max_attempts == 0
        {
            return invalid(
                "auth",
                "code_ttl_secs, session_ttl_secs and max_attempts must be at least 1",
            );
        }
        if self.task_lease_secs == 0 {
            return invalid("task_lease_secs", "must be at least 1");
        }
        if self.header_read_timeout_secs == 0 {
            return invalid("header_read_timeout_secs", "must be at least 1");
        }
        if self.security.connection_idle_secs == 0 {
            return invalid("security.connection_idle_secs", "must be at least 1");
        }
        if let Err(e) = crate::net::TrustedProxies::new(&self.security.trusted_proxies) {
            return invalid("security.trusted_proxies", &e.to_string());
        }
        if self.max_body_bytes < 1024 {
            return invalid("max_body_bytes", "must be at least 1024");
        }
        if self.max_upload_bytes < 1024 || self.max_multipart_bytes < self.max_upload_bytes {
            return invalid(
                "max_upload_bytes/max_multipart_bytes",
                "need max_multipart_bytes >= max_upload_bytes >= 1024",
            );
        }
        if self.images_wait_secs == 0
            || self.task_image_deadline_secs == 0
            || self.task_video_deadline_secs == 0
            || self.task_off_peak_deadline_secs == 0
        {
            return invalid(
                "task_*_deadline_secs/images_wait_secs",
                "must be at least 1",
            );
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return invalid("log_format", "must be \"text\" or \"json\"");
        }
        if let Err(e) = crate::net::OutboundGuard::new(&self.outbound_allow) {
            return invalid("outbound_allow", &e.to_string());
        }
        if let Some(url) = &self.public_base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid("public_base_url", "must start with http:// or https://");
        }
        if let Some(key) = &self.demo_key
            && !crate::util::ids::is_well_formed_key(key)
        {
            return invalid(
                "demo_key",
                "must look like sk-<16 to 128 letters, digits, - or _>",
            );
        }
        if self
            .signup_credits
            .is_some_and(|c| !(0..=1_000_000_000).contains(&c))
        {
            return invalid("signup_credits", "must be from 0 to 1000000000");
        }
        if self.demo_credits < 0 || self.default_price_in < 0 || self.default_price_out < 0 {
            return invalid("demo_credits/default_price_*", "must not be negative");
        }
        if self.client_write_timeout_secs == 0 || self.billing.hold_lease_secs < 3 {
            return invalid(
                "client_write_timeout_secs/billing.hold_lease_secs",
                "must be at least 1 and 3 seconds",
            );
        }
        if self.upstream_first_byte_timeout_secs == 0
            || self.upstream_idle_timeout_secs == 0
            || self.upstream_total_timeout_secs == 0
        {
            return invalid("upstream_*_timeout_secs", "must be at least 1");
        }
        if let Some(key) = &self.secret_key
            && crate::secrets::SecretBox::load(Some(key), &self.data_dir).is_err()
        {
            return invalid(
                "secret_key",
                "must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)",
            );
        }
        if self.billing.credits_per_yuan <= 0 {
            return invalid("billing.credits_per_yuan", "must be at least 1");
        }
        let min = crate::util::yuan::yuan_to_fen(&self.billing.recharge_min_yuan);
        let max = crate::util::yuan::yuan_to_fen(&self.billing.recharge_max_yuan);
        match (min, max) {
            (Some(min), Some(max)) if min >= 1 && min <= max => {}
            _ => {
                return invalid(
                    "billing.recharge_min_yuan/recharge_max_yuan",
                    "must be amounts like \"1.00\" with 0.01 <= min <= max",
                );
            }
        }
        if self.alipay.app_id.is_some()
            && (self.alipay.app_private_key_file.is_none()
                || self.alipay.alipay_public_key_file.is_none())
        {
            return invalid(
                "alipay",
                "app_id needs app_private_key_file and alipay_public_key_file",
            );
        }
        if self.alipay.reconcile_secs == 0 || self.alipay.order_timeout_mins == 0 {
            return invalid(
                "alipay.reconcile_secs/order_timeout_mins",
                "must be at least 1",
            );
        }
        Ok(())
    }
}

/// Lower-case key paths the environment may set (`listen`, `sandbox.chat_chunk_delay_ms`, …),
/// derived from the defaults so it never drifts from the struct.
fn known_keys() -> Vec<String> {
    let mut out = Vec::new();
    let Ok(serde_json::Value::Object(top)) = serde_json::to_value(Config::default()) else {
        return out;
    };
    for (key, value) in top {
        if let serde_json::Value::Object(inner) = &value {
            out.extend(inner.keys().map(|k| format!("{key}.{k}")));
        }
        out.push(key);
    }
    out
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail closures return figment::Error"
)]
mod tests {
    use super::*;

    #[test]
    fn signup_credits_default_to_1000_in_demo_mode_only() {
        figment::Jail::expect_with(|jail| {
            let off = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(off.signup_credits(), 0);
            assert!(off.sandbox.cashier);
            let demo = Overrides {
                demo: Some(true),
                ..Overrides::default()
            };
            let on = Config::load(None, &demo).map_err(|e| e.to_string())?;
            assert_eq!(on.signup_credits(), DEMO_SIGNUP_CREDITS);
            jail.set_env("LLMAGE_SIGNUP_CREDITS", "0");
            let zero = Config::load(None, &demo).map_err(|e| e.to_string())?;
            assert_eq!(zero.signup_credits(), 0);
            jail.set_env("LLMAGE_SIGNUP_CREDITS", "-5");
            assert!(Config::load(None, &demo).is_err());
            Ok(())
        });
    }

    #[test]
    fn layers_file_env_flags_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "listen = \"127.0.0.1:9000\"\nmax_body_bytes = 4096\n[sandbox]\nchat_chunk_delay_ms = 5\n")?;
            jail.set_env("LLMAGE_MAX_BODY_BYTES", "8192");
            jail.set_env("LLMAGE_SANDBOX__CHAT_CHUNK_DELAY_MS", "7");
            jail.set_env("LLMAGE_API_KEY", "sk-client-side-variable-ignored");
            let flags = Overrides {
                listen: Some("127.0.0.1:9100".into()),
                ..Default::default()
            };
            let c = Config::load(Some(Path::new("c.toml")), &flags).map_err(|e| e.to_string())?;
            assert_eq!(c.listen, "127.0.0.1:9100");
            assert_eq!(c.max_body_bytes, 8192);
            assert_eq!(c.sandbox.chat_chunk_delay_ms, 7);
            let c = Config::load(Some(Path::new("c.toml")), &Overrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(c.listen, "127.0.0.1:9000");
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_named() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "listen = \"nowhere\"\n")?;
            let e = Config::load(Some(Path::new("bad.toml")), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("listen"), "{e}");
            jail.create_file("typo.toml", "lisen = \"127.0.0.1:1\"\n")?;
            let e = Config::load(Some(Path::new("typo.toml")), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("lisen"), "{e}");
            jail.set_env("LLMAGE_MAX_BODY_BYTES", "lots");
            let e = Config::load(None, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.to_lowercase().contains("max_body_bytes"), "{e}");
            Ok(())
        });
    }
}
