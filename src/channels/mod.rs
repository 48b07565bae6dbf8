//! Channels: the upstream accounts we route to (vendor protocol, base URL, encrypted key, models
//! served, priority, weight, enabled), stored in the database and held in memory as one
//! immutable [`ChannelTable`] snapshot that also carries the catalog merged with channel-only
//! chat models. A background refresher reloads the snapshot within a second of any change made
//! by another process (the `admin` CLI); changes made here reload at once. `GET /healthz` shows
//! how many snapshots were built (`generation`) and whether the live one matches the database
//! (`synced`), so operators and tests can see a change arrive instead of waiting for the period.

pub mod health;
pub mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use rand::Rng;

use crate::catalog::{Catalog, Model};
use crate::secrets::Secret;
use crate::vendor::Vendor;

pub use health::ChannelHealth;
pub use store::{ChannelStore, NewChannel};

/// One of a channel's models: our model id and the name the upstream knows it by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelRoute {
    pub model: String,
    pub upstream: String,
    /// An embedding model (`POST /v1/embeddings`) rather than a chat model.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub embedding: bool,
}

/// The prefix that marks a channel model as an embedding model: `embedding:ours[=upstream]`.
pub const EMBEDDING_PREFIX: &str = "embedding:";

impl ModelRoute {
    /// Parse `ours`, `ours=upstream`, or either behind `embedding:`.
    pub fn parse(spec: &str) -> Option<ModelRoute> {
        let spec = spec.trim();
        let (embedding, spec) = match spec.strip_prefix(EMBEDDING_PREFIX) {
            Some(rest) => (true, rest),
            None => (false, spec),
        };
        let (model, upstream) = match spec.split_once('=') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (spec.trim(), spec.trim()),
        };
        (!model.is_empty() && !upstream.is_empty()).then(|| ModelRoute {
            model: model.to_owned(),
            upstream: upstream.to_owned(),
            embedding,
        })
    }
}

/// A channel as the router uses it (key decrypted, in memory only).
#[derive(Debug, Clone)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub vendor: Vendor,
    pub base_url: String,
    pub api_key: Secret,
    pub models: Vec<ModelRoute>,
    pub priority: i64,
    pub weight: i64,
    pub enabled: bool,
    /// Price for models only this channel knows (credits per million tokens).
    pub price_in: Option<i64>,
    pub price_out: Option<i64>,
    /// Cooling off after repeated failures until this time (unix ms), and why.
    pub cooling_until: Option<i64>,
    pub cooling_reason: Option<String>,
    /// Most calls in flight through this channel from one process.
    pub max_concurrency: Option<i64>,
    /// Most calls per minute through this channel from one process.
    pub rpm: Option<i64>,
}

impl Channel {
    /// Whether the channel is cooling off now.
    pub fn cooling(&self, now: i64) -> bool {
        self.cooling_until.is_some_and(|t| t > now)
    }
}

/// A routing choice: a channel and the upstream's name for the model.
#[derive(Debug, Clone)]
pub struct Route {
    pub channel: Arc<Channel>,
    pub upstream_model: String,
}

/// An immutable snapshot: enabled channels by model, and the catalog they extend.
#[derive(Debug)]
pub struct ChannelTable {
    pub catalog: Arc<Catalog>,
    by_model: HashMap<String, Vec<Route>>,
    /// Every channel by id, disabled ones included (tasks already sent there are still polled).
    by_id: HashMap<i64, Arc<Channel>>,
    pub stamp: (i64, i64),
}

impl ChannelTable {
    /// Build a snapshot; channel-only chat models get the channel's price or the default.
    pub fn build(
        base: &Catalog,
        channels: Vec<Channel>,
        default_price: (i64, i64),
        stamp: (i64, i64),
    ) -> ChannelTable {
        let mut by_model: HashMap<String, Vec<Route>> = HashMap::new();
        let mut extra = Vec::new();
        let all: Vec<Arc<Channel>> = channels.into_iter().map(Arc::new).collect();
        let by_id = all.iter().map(|c| (c.id, c.clone())).collect();
        for channel in all.into_iter().filter(|c| c.enabled) {
            for route in &channel.models {
                if base.get(&route.model).is_none() && channel.vendor == Vendor::OpenAi {
                    extra.push(if route.embedding {
                        Model::custom_embedding(
                            &route.model,
                            channel.price_in.unwrap_or(default_price.0),
                        )
                    } else {
                        Model::custom_chat(
                            &route.model,
                            channel.price_in.unwrap_or(default_price.0),
                            channel.price_out.unwrap_or(default_price.1),
                        )
                    });
                }
                by_model
                    .entry(route.model.clone())
                    .or_default()
                    .push(Route {
                        channel: channel.clone(),
                        upstream_model: route.upstream.clone(),
                    });
            }
        }
        for routes in by_model.values_mut() {
            routes.sort_by(|a, b| {
                b.channel
                    .priority
                    .cmp(&a.channel.priority)
                    .then(a.channel.id.cmp(&b.channel.id))
            });
        }
        ChannelTable {
            catalog: Arc::new(base.with_extra_chat_models(extra)),
            by_model,
            by_id,
            stamp,
        }
    }

    /// Every channel, enabled or not.
    pub fn all_channels(&self) -> impl Iterator<Item = &Arc<Channel>> {
        self.by_id.values()
    }

    /// A channel by id, enabled or not.
    pub fn channel(&self, id: i64) -> Option<&Arc<Channel>> {
        self.by_id.get(&id)
    }

    /// The routes of a model in fixed order (priority, then id; cooling channels last): the
    /// order a task fails over in.
    pub fn ordered_routes(&self, model: &str) -> Vec<Route> {
        let now = crate::util::clock::now_ms();
        let routes = self.by_model.get(model).map_or(&[][..], Vec::as_slice);
        let (cooling, ready): (Vec<&Route>, Vec<&Route>) =
            routes.iter().partition(|r| r.channel.cooling(now));
        ready.into_iter().chain(cooling).cloned().collect()
    }

    /// Whether any enabled channel serves the model.
    pub fn has_channel(&self, model: &str) -> bool {
        self.by_model.contains_key(model)
    }

    /// Routes to try for a model, in order: higher priority first; inside one priority,
    /// a weighted random order.
    pub fn routes(&self, model: &str) -> Vec<Route> {
        let Some(routes) = self.by_model.get(model) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(routes.len());
        let mut cooling = Vec::new();
        let now = crate::util::clock::now_ms();
        let mut rng = rand::rng();
        for group in routes.chunk_by(|a, b| a.channel.priority == b.channel.priority) {
            let mut pool: Vec<&Route> = group.iter().collect();
            while !pool.is_empty() {
                let total: i64 = pool.iter().map(|r| r.channel.weight.max(1)).sum();
                let mut pick = rng.random_range(0..total);
                let mut index = 0;
                for (i, r) in pool.iter().enumerate() {
                    let w = r.channel.weight.max(1);
                    if pick < w {
                        index = i;
                        break;
                    }
                    pick -= w;
                }
                let route = pool.remove(index).clone();
                if route.channel.cooling(now) {
                    cooling.push(route);
                } else {
                    out.push(route);
                }
            }
        }
        // Cooling channels only when nothing else is left.
        out.extend(cooling);
        out
    }
}

/// The live snapshot, swapped on reload.
#[derive(Debug)]
pub struct Channels {
    store: ChannelStore,
    base: Arc<Catalog>,
    default_price: (i64, i64),
    current: RwLock<Arc<ChannelTable>>,
    /// Snapshots built so far (1 after [`Channels::load`]).
    generation: AtomicU64,
}

impl Channels {
    pub async fn load(
        store: ChannelStore,
        base: Arc<Catalog>,
        default_price: (i64, i64),
    ) -> Result<Channels, store::ChannelError> {
        let stamp = store.stamp().await?;
        let table = ChannelTable::build(&base, store.load_all().await?, default_price, stamp);
        Ok(Channels {
            store,
            base,
            default_price,
            current: RwLock::new(Arc::new(table)),
            generation: AtomicU64::new(1),
        })
    }

    /// How many snapshots were built since start (the first load included).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Whether the live snapshot was built from the database's current channels: the stored
    /// stamp (last change time, row count) equals the snapshot's. One aggregate query over the
    /// channels table; a change made before this call shows as `false` until the reload.
    pub async fn synced(&self) -> Result<bool, store::ChannelError> {
        Ok(self.store.stamp().await? == self.table().stamp)
    }

    /// The current snapshot.
    pub fn table(&self) -> Arc<ChannelTable> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reload when the stored channels changed since the snapshot (cheap check first).
    pub async fn refresh(&self) -> Result<bool, store::ChannelError> {
        let stamp = self.store.stamp().await?;
        if stamp == self.table().stamp {
            return Ok(false);
        }
        self.rebuild(stamp).await?;
        Ok(true)
    }

    /// Reload now, whatever the stamp says (after a change made by this process: two changes
    /// within the same millisecond leave the stamp as it was).
    pub async fn reload(&self) -> Result<(), store::ChannelError> {
        let stamp = self.store.stamp().await?;
        self.rebuild(stamp).await
    }

    async fn rebuild(&self, stamp: (i64, i64)) -> Result<(), store::ChannelError> {
        let table = Arc::new(ChannelTable::build(
            &self.base,
            self.store.load_all().await?,
            self.default_price,
            stamp,
        ));
        match self.current.write() {
            Ok(mut guard) => *guard = table,
            Err(poisoned) => *poisoned.into_inner() = table,
        }
        self.generation.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub fn store(&self) -> &ChannelStore {
        &self.store
    }

    /// The catalog without channel-only models (what channel definitions are checked against).
    pub fn base_catalog(&self) -> &Catalog {
        &self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(id: i64, priority: i64, weight: i64, models: &[&str]) -> Channel {
        Channel {
            id,
            name: format!("c{id}"),
            vendor: Vendor::OpenAi,
            base_url: "http://x".into(),
            api_key: Secret::new("k"),
            models: models.iter().filter_map(|m| ModelRoute::parse(m)).collect(),
            priority,
            weight,
            enabled: true,
            price_in: None,
            price_out: None,
            cooling_until: None,
            cooling_reason: None,
            max_concurrency: None,
            rpm: None,
        }
    }

    #[test]
    fn routes_follow_priority_then_weight() {
        let catalog = Catalog::builtin().unwrap();
        let table = ChannelTable::build(
            &catalog,
            vec![
                channel(1, 0, 1, &["qwen3-max"]),
                channel(2, 10, 1, &["qwen3-max=qwen-max-latest"]),
                channel(3, 0, 1000, &["qwen3-max"]),
            ],
            (1, 2),
            (0, 0),
        );
        let mut third_first = 0;
        for _ in 0..200 {
            let routes = table.routes("qwen3-max");
            assert_eq!(routes[0].channel.id, 2);
            assert_eq!(routes[0].upstream_model, "qwen-max-latest");
            assert_eq!(routes.len(), 3);
            if routes[1].channel.id == 3 {
                third_first += 1;
            }
        }
        assert!(
            third_first > 180,
            "weight 1000 vs 1 should nearly always come first: {third_first}"
        );
        assert!(table.routes("nope").is_empty());
    }

    #[test]
    fn channel_only_models_join_the_catalog_as_chat() {
        let catalog = Catalog::builtin().unwrap();
        let mut c = channel(1, 0, 1, &["my-llama"]);
        c.price_in = Some(11);
        let table = ChannelTable::build(
            &catalog,
            vec![c, channel(2, 0, 1, &["other"])],
            (3, 4),
            (0, 0),
        );
        let m = table.catalog.get("my-llama").unwrap();
        assert!(m.is_chat());
        assert_eq!(
            m.price,
            crate::catalog::Price::Tokens {
                input_per_million: 11,
                output_per_million: 4
            }
        );
        assert!(table.catalog.get("other").is_some());
    }

    #[test]
    fn model_route_parse() {
        assert_eq!(ModelRoute::parse("a=b").unwrap().upstream, "b");
        assert_eq!(ModelRoute::parse(" a ").unwrap().upstream, "a");
        assert!(ModelRoute::parse("=b").is_none());
    }
}
