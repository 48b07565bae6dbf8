//! [`Core`]: what `llmage serve` and the `admin` commands both open first: the data dir, the
//! database (with migrations), the secret box and the catalog. The server builds the request
//! handlers' state ([`crate::api::state::AppState`]) on top of it.

use std::sync::Arc;

use anyhow::Context;

use crate::catalog::Catalog;
use crate::channels::ChannelStore;
use crate::config::Config;
use crate::secrets::SecretBox;
use crate::storage::Db;

/// The pieces shared by `serve` and the `admin` commands.
pub struct Core {
    pub db: Db,
    /// Signs short-lived links to uploaded input files.
    pub links: crate::secrets::LinkSigner,
    pub catalog: Arc<Catalog>,
    pub channel_store: ChannelStore,
}

impl Core {
    /// Open the data dir, database (with migrations), secret box and catalog.
    pub async fn open(config: &Config) -> anyhow::Result<Core> {
        crate::storage::private_files(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        let db = Db::connect(&crate::storage::database_url(config))
            .await
            .context("cannot open the database")?;
        crate::storage::tighten_database_files(&db);
        let secrets = SecretBox::load(config.secret_key.as_deref(), &config.data_dir)?;
        let catalog = match &config.catalog_file {
            Some(path) => Catalog::from_file(path)?,
            None => Catalog::builtin()?,
        };
        Ok(Core {
            links: secrets.links(),
            channel_store: ChannelStore::new(db.clone(), secrets),
            db,
            catalog: Arc::new(catalog),
        })
    }
}
