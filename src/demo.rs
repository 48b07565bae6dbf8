//! Demo mode (`serve --demo`): a demo user with credits and a key that survives restarts
//! (`--demo-key`, else the key kept in `<data-dir>/demo-api-key`), printed at start.
//! The sandbox vendor answering models without channels is wired in the relay.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::accounts::keys::Keys;
use crate::accounts::users::Users;
use crate::config::Config;
use crate::state::Core;

/// The demo user's phone number.
pub const DEMO_PHONE: &str = "13800000000";

/// Create the demo user and key if needed and print the key.
pub async fn prepare(config: &Config, core: &Core) -> anyhow::Result<String> {
    let user = Users::new(core.db.clone())
        .ensure(DEMO_PHONE, config.demo_credits, "demo:initial-credits")
        .await
        .context("cannot create the demo user")?;
    let keys = Keys::new(core.db.clone());
    let key_file = config.data_dir.join("demo-api-key");
    let key = match &config.demo_key {
        Some(key) => {
            if !keys.exists(key).await? {
                keys.create(user.id, "demo", Some(key), None).await?;
            }
            key.clone()
        }
        None => match read_key(&key_file) {
            Some(key) if keys.exists(&key).await? => key,
            _ => keys.create(user.id, "demo", None, None).await?.key,
        },
    };
    write_private(&key_file, &key)
        .with_context(|| format!("cannot write {}", key_file.display()))?;
    println!(
        "演示模式 / demo mode: 所有未配置渠道的模型由离线沙盒回答 (sandbox answers every model without a channel)"
    );
    println!(
        "演示用户 / demo user: {DEMO_PHONE}, 余额 / balance: {} credits",
        crate::billing::credits_text(user.balance)
    );
    println!(
        "演示 API Key / demo API key: {key}   (also in {})",
        key_file.display()
    );
    Ok(key)
}

fn read_key(path: &Path) -> Option<String> {
    let key = std::fs::read_to_string(path).ok()?.trim().to_owned();
    crate::util::ids::is_well_formed_key(&key).then_some(key)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}
