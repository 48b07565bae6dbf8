//! `llmage admin …`: operator commands that work on the same data as a running server
//! (a server picks up their changes within a second).

use anyhow::{Context, bail};

use crate::accounts::keys::Keys;
use crate::accounts::users::{Users, normalize_phone};
use crate::billing::ledger::{Applied, EntryKind, Ledger};
use crate::channels::{ModelRoute, NewChannel};
use crate::state::Core;
use crate::vendor::Vendor;

/// `admin user create`: make a user (or reuse the phone's) and print a new API key.
pub async fn user_create(
    core: &Core,
    phone: &str,
    credits: i64,
    key_name: &str,
) -> anyhow::Result<()> {
    let phone = normalize_phone(phone)?;
    if credits < 0 {
        bail!("--credits must not be negative");
    }
    let grant_key = format!(
        "admin:user-create:{phone}:{}",
        crate::util::ids::random_id()
    );
    let user = Users::new(core.db.clone())
        .ensure(&phone, credits, &grant_key)
        .await?;
    let key = Keys::new(core.db.clone())
        .create(user.id, key_name, None, None)
        .await?;
    eprintln!(
        "user {} (id {}), balance {} credits",
        user.phone, user.id, user.balance
    );
    println!("{}", key.key);
    Ok(())
}

/// `admin credits add`: a manual adjustment in the ledger (negative amounts take credits).
pub async fn credits_add(
    core: &Core,
    phone: &str,
    amount: i64,
    reason: &str,
    idem: Option<&str>,
) -> anyhow::Result<()> {
    let phone = normalize_phone(phone)?;
    if reason.trim().is_empty() {
        bail!("--reason must say why");
    }
    let user = Users::new(core.db.clone())
        .by_phone(&phone)
        .await?
        .with_context(|| format!("no user with phone {phone}"))?;
    // Scoped to the target user: the same key used for another user is another adjustment.
    let idem = match idem {
        Some(k) => format!("admin:adjust:{}:{k}", user.id),
        None => format!("admin:adjust:{}", crate::util::ids::random_id()),
    };
    let kind = if amount >= 0 {
        EntryKind::Grant
    } else {
        EntryKind::Adjust
    };
    match Ledger::new(core.db.clone())
        .apply_labelled(
            user.id,
            crate::billing::units(amount),
            kind,
            &format!("admin (command line): {reason}"),
            Some(&format!("管理员调整: {reason}")),
            &idem,
        )
        .await?
    {
        Applied::Now { balance } => {
            println!(
                "user {phone}: {amount:+} credits, balance now {}",
                crate::billing::credits_text(balance)
            )
        }
        Applied::Before => {
            println!("user {phone}: this adjustment was already applied; nothing changed")
        }
    }
    Ok(())
}

/// What `admin channel add` was given.
pub struct ChannelArgs {
    pub name: Option<String>,
    pub vendor: String,
    pub base_url: String,
    pub api_key: String,
    pub models: String,
    pub priority: i64,
    pub weight: i64,
    pub price_in: Option<i64>,
    pub price_out: Option<i64>,
    pub max_concurrency: Option<i64>,
    pub rpm: Option<i64>,
}

/// `admin channel add`.
pub async fn channel_add(core: &Core, args: ChannelArgs) -> anyhow::Result<()> {
    let channel = checked_channel(core, args)?;
    let id = core.channel_store.add(&channel).await?;
    println!("channel {id} added");
    Ok(())
}

/// Check a channel definition (from the CLI or the config file) against the catalog.
pub fn checked_channel(core: &Core, args: ChannelArgs) -> anyhow::Result<NewChannel> {
    checked_channel_in(&core.catalog, args)
}

/// Check a channel definition (from the CLI, the config file or the console) against a catalog.
pub fn checked_channel_in(
    catalog: &crate::catalog::Catalog,
    args: ChannelArgs,
) -> anyhow::Result<NewChannel> {
    let vendor = Vendor::parse_channel(&args.vendor).with_context(|| {
        format!(
            "unknown vendor `{}` (supported: {})",
            args.vendor,
            Vendor::channel_names()
        )
    })?;
    if !(args.base_url.starts_with("http://") || args.base_url.starts_with("https://")) {
        bail!("--base-url must start with http:// or https://");
    }
    if args.weight < 1 {
        bail!("--weight must be at least 1");
    }
    if args.rpm.is_some_and(|n| n < 1) {
        bail!("--rpm must be at least 1");
    }
    if args.max_concurrency.is_some_and(|n| n < 1) {
        bail!("--max-concurrency must be at least 1");
    }
    if args.price_in.is_some_and(|p| p < 0) || args.price_out.is_some_and(|p| p < 0) {
        bail!("--price-in/--price-out must not be negative");
    }
    let models: Vec<ModelRoute> = args
        .models
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(ModelRoute::parse)
        .collect::<Option<_>>()
        .context("--models: use `model` or `model=upstream-name` (`embedding:` before an embedding model), comma-separated")?;
    if models.is_empty() {
        bail!("--models must name at least one model");
    }
    for route in &models {
        if route.embedding && vendor != Vendor::OpenAi {
            bail!(
                "model {}: embedding models are served by openai channels only",
                route.model
            );
        }
        match catalog.get(&route.model) {
            Some(model) if model.is_chat() && !vendor.serves_chat() => bail!(
                "model {} is a chat model; {} channels do not serve chat (use {})",
                route.model,
                vendor.as_str(),
                Vendor::channel_vendors()
                    .filter(|v| v.serves_chat())
                    .map(Vendor::as_str)
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            Some(model) if !model.is_chat() && model.vendor != vendor => bail!(
                "model {} is served by {} channels, not {}",
                route.model,
                model.vendor,
                vendor.as_str()
            ),
            None if vendor != Vendor::OpenAi => bail!(
                "model {} is not in the catalog; only openai channels may add their own models",
                route.model
            ),
            _ => {}
        }
    }
    let name = args
        .name
        .unwrap_or_else(|| format!("{}-{}", vendor.as_str(), models[0].model));
    Ok(NewChannel {
        name,
        vendor,
        base_url: args.base_url,
        api_key: args.api_key,
        models,
        priority: args.priority,
        weight: args.weight,
        price_in: args.price_in,
        price_out: args.price_out,
        max_concurrency: args.max_concurrency,
        rpm: args.rpm,
    })
}

/// Make the database hold the channels of the config file (`[[channels]]`, matched by name):
/// new ones are added, existing ones updated; channels managed with the CLI are left alone.
pub async fn sync_config_channels(
    core: &Core,
    channels: &[crate::config::ChannelConfig],
) -> anyhow::Result<()> {
    for c in channels {
        let args = ChannelArgs {
            name: Some(c.name.clone()),
            vendor: c.vendor.clone(),
            base_url: c.base_url.clone(),
            api_key: c.api_key.clone(),
            models: c.models.join(","),
            priority: c.priority,
            weight: c.weight,
            price_in: c.price_in,
            price_out: c.price_out,
            max_concurrency: c.max_concurrency,
            rpm: c.rpm,
        };
        let channel =
            checked_channel(core, args).with_context(|| format!("config channel `{}`", c.name))?;
        let id = core
            .channel_store
            .upsert_by_name(&channel, c.enabled)
            .await?;
        tracing::info!(channel = id, name = %c.name, "channel from the config file");
    }
    Ok(())
}

/// `admin channel list`: keys masked.
pub async fn channel_list(core: &Core) -> anyhow::Result<()> {
    let channels = core.channel_store.load_all().await?;
    println!(
        "{:<4} {:<24} {:<10} {:<8} {:<4} {:<4} {:<14} {:<40} models",
        "id", "name", "vendor", "enabled", "prio", "wt", "key", "base_url"
    );
    for c in channels {
        let models: Vec<String> = c
            .models
            .iter()
            .map(|m| {
                if m.model == m.upstream {
                    m.model.clone()
                } else {
                    format!("{}={}", m.model, m.upstream)
                }
            })
            .collect();
        println!(
            "{:<4} {:<24} {:<10} {:<8} {:<4} {:<4} {:<14} {:<40} {}",
            c.id,
            c.name,
            c.vendor.as_str(),
            if c.enabled { "yes" } else { "no" },
            c.priority,
            c.weight,
            c.api_key.masked(),
            c.base_url,
            models.join(",")
        );
        if let (Some(until), Some(reason)) = (c.cooling_until, &c.cooling_reason)
            && until > crate::util::clock::now_ms()
        {
            println!(
                "     ↳ cooling off for {} s more: {reason}",
                (until - crate::util::clock::now_ms()) / 1000 + 1
            );
        }
    }
    Ok(())
}

/// `admin channel disable|enable ID`.
pub async fn channel_set_enabled(core: &Core, id: i64, enabled: bool) -> anyhow::Result<()> {
    if !core.channel_store.set_enabled(id, enabled).await? {
        bail!("no channel with id {id}");
    }
    println!(
        "channel {id} {}",
        if enabled { "enabled" } else { "disabled" }
    );
    Ok(())
}

/// `admin key list --phone P`.
pub async fn key_list(core: &Core, phone: &str) -> anyhow::Result<()> {
    let phone = normalize_phone(phone)?;
    let user = Users::new(core.db.clone())
        .by_phone(&phone)
        .await?
        .with_context(|| format!("no user with phone {phone}"))?;
    println!("{:<6} {:<20} {:<16} {:<8}", "id", "name", "key", "state");
    for k in Keys::new(core.db.clone()).list(user.id).await? {
        let state = if k.revoked {
            "revoked"
        } else if k.expired {
            "expired"
        } else {
            "active"
        };
        println!("{:<6} {:<20} {:<16} {:<8}", k.id, k.name, k.masked, state);
    }
    Ok(())
}

/// `admin key revoke ID`.
pub async fn key_revoke(core: &Core, id: i64) -> anyhow::Result<()> {
    if !Keys::new(core.db.clone()).revoke(id).await? {
        bail!("no active key with id {id}");
    }
    println!("key {id} revoked");
    Ok(())
}

/// `admin redeem create`: print a batch of new codes.
pub async fn redeem_create(
    core: &Core,
    credits: i64,
    count: usize,
    note: &str,
) -> anyhow::Result<()> {
    if credits < 1 {
        bail!("--credits must be at least 1");
    }
    if !(1..=10_000).contains(&count) {
        bail!("--count must be between 1 and 10000");
    }
    let (_, codes) = crate::billing::redeem::Redeem::new(core.db.clone())
        .create_batch(credits, count, note)
        .await?;
    for code in codes {
        println!("{code}");
    }
    Ok(())
}

/// `admin user set-role`.
pub async fn user_set_role(core: &Core, phone: &str, role: &str) -> anyhow::Result<()> {
    let phone = normalize_phone(phone)?;
    let users = Users::new(core.db.clone());
    let user = users
        .by_phone(&phone)
        .await?
        .with_context(|| format!("no user with phone {phone}"))?;
    users.set_role(user.id, role).await?;
    println!("user {} is now {role}", user.id);
    Ok(())
}
