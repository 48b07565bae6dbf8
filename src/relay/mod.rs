//! The chat relay: hold what the call can cost (lowering the output bound to what the balance
//! affords, see [`budget`]), try the model's routes in order (channels by priority and weight;
//! the sandbox in demo mode), fail over on errors that happen before the first byte reaches the
//! client, decorate the answer with the seed's fields, meter streams per choice and cut them at
//! their bound, and settle the hold at the price of the usage — also when the client
//! disconnects or stops reading mid-stream.

pub mod budget;
pub mod decorate;
pub mod error;
pub mod request;
pub mod rewrite;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounts::keys::KeyOwner;
use crate::billing::chat_holds::ChatHolds;
use crate::billing::engine::{Close, Hold, LedgerError, Reservation, UsageRow};
use crate::billing::group_commit::GroupCommit;
use crate::billing::{chat_price, credits_json, credits_text, tokens};
use crate::catalog::Model;
use crate::channels::{ChannelTable, Route};
use crate::providers::chat::ChatAdapters;
use crate::providers::{ChatReply, ChunkStream, ProviderError};
use budget::Budget;
use error::RelayError;
pub use request::ChatRequest;

/// Reservation purpose prefix of chat calls.
pub const CHAT_PURPOSE: &str = "chat";

/// Where a call goes.
#[derive(Debug, Clone)]
enum Target {
    Channel(Route),
    Sandbox,
}

impl Target {
    fn channel_id(&self) -> Option<i64> {
        match self {
            Target::Channel(r) => Some(r.channel.id),
            Target::Sandbox => None,
        }
    }
}

/// What the handler sends back.
pub enum RelayReply {
    /// A whole `chat.completion`, as JSON text.
    Json(Bytes),
    /// SSE body bytes (`data: …\n\n` events ending with `data: [DONE]`).
    Stream(tokio_stream::wrappers::ReceiverStream<Result<Bytes, Infallible>>),
}

/// Chat relay (shared, cheap to clone).
#[derive(Clone, Debug)]
pub struct ChatRelay {
    /// Chat upstreams by vendor (the sandbox included).
    pub chat: ChatAdapters,
    /// Demo mode: models without a channel are answered by the sandbox.
    pub demo: bool,
    /// Completion bound for the reservation when neither request nor catalog gives one.
    pub default_max_output: u64,
    /// Reservations and settlements of calls held in the database (embeddings), committed in
    /// batches with other calls'.
    pub ledger: GroupCommit,
    /// Chat holds, made in memory against this process's credit leases; their settlements go
    /// through the same group commit.
    pub holds: ChatHolds,
    /// Balance reads (for the amount a refused call needed).
    pub balances: crate::billing::ledger::Ledger,
    /// This process's id on its holds (see [`crate::billing::holds`]).
    pub owner: String,
    /// How long a stream waits for a client that stopped reading before it is cut.
    pub write_timeout: Duration,
    /// Consecutive failures per channel; repeated ones cool a channel off.
    pub health: Arc<crate::channels::ChannelHealth>,
    /// Stream pumps run here, so shutdown waits for their billing.
    pub tracker: TaskTracker,
    /// Fired when the shutdown grace period is over: streams end now.
    pub abort: CancellationToken,
}

/// What a finished call used.
#[derive(Debug, Clone, Copy)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    /// Whether the numbers came from the upstream (else estimated).
    reported: bool,
}

/// Context for billing one call.
struct Bill {
    ledger: ChatHolds,
    owner: Arc<KeyOwner>,
    model: Arc<Model>,
    reservation: Option<Reservation>,
    started: Instant,
    request_id: Option<String>,
}

impl ChatRelay {
    /// Serve one chat request for a key owner.
    pub async fn handle(
        &self,
        table: Arc<ChannelTable>,
        owner: Arc<KeyOwner>,
        mut req: ChatRequest,
    ) -> Result<RelayReply, RelayError> {
        let model = table
            .catalog
            .get(&req.model)
            .cloned()
            .ok_or_else(|| RelayError::ModelNotFound(req.model.clone()))?;
        if !model.is_chat() {
            return Err(RelayError::InvalidParameter(format!(
                "model {} does not serve t2t (serves {}); use /llmage/v1/image/generations or /llmage/v1/video/generations",
                model.id,
                model.category_list()
            )));
        }
        let targets: Vec<Target> = if table.has_channel(&model.id) {
            table
                .routes(&model.id)
                .into_iter()
                .map(Target::Channel)
                .collect()
        } else if self.demo {
            vec![Target::Sandbox]
        } else {
            return Err(RelayError::NoChannel(model.id.clone()));
        };

        let mut budget = Budget::of(&req, &model, self.default_max_output);
        let reservation = self.hold(&owner, &model, &mut budget).await?;
        // The body is needed once per target tried: moved into the last, copied for the others.
        let mut upstream_body = std::mem::take(&mut req.upstream_body);
        budget.apply_to(&mut upstream_body);
        let bill = Bill {
            ledger: self.holds.clone(),
            owner,
            model: model.clone(),
            reservation,
            started: Instant::now(),
            request_id: req.request_id.clone(),
        };

        let mut last_error = None;
        let last_target = targets.len().saturating_sub(1);
        for (i, target) in targets.into_iter().enumerate() {
            let mut body = if i == last_target {
                std::mem::take(&mut upstream_body)
            } else {
                upstream_body.clone()
            };
            let upstream_model = match &target {
                Target::Channel(r) => r.upstream_model.clone(),
                Target::Sandbox => model.id.clone(),
            };
            body.insert("model".into(), Value::String(upstream_model));
            let body = Value::Object(body);
            // A channel at its concurrency cap is skipped like a busy one.
            let permit = match &target {
                Target::Channel(r) => match self.health.try_acquire(&r.channel) {
                    Some(permit) => permit,
                    None => {
                        last_error = Some(ProviderError::Status {
                            status: 429,
                            message: "channel at its concurrency cap".into(),
                        });
                        continue;
                    }
                },
                Target::Sandbox => None,
            };
            let channel = match &target {
                Target::Channel(r) => Some(&*r.channel),
                Target::Sandbox => None,
            };
            let reply = self.chat.send(channel, &body, req.stream).await;
            let failed = match reply {
                Ok(ChatReply::Complete(raw)) => match rewrite::Answer::parse(&raw) {
                    Some(answer) => {
                        if let Some(id) = target.channel_id() {
                            self.health.success(id);
                        }
                        let size = raw.len();
                        return Ok(RelayReply::Json(
                            finish_complete(answer, size, &req, bill, target.channel_id()).await,
                        ));
                    }
                    None => not_json(),
                },
                Ok(ChatReply::Stream(mut stream)) => match stream.next().await {
                    Some(Ok(first)) if rewrite::Answer::parse(first.as_bytes()).is_none() => {
                        not_json()
                    }
                    Some(Ok(first)) => {
                        if let Some(id) = target.channel_id() {
                            self.health.success(id);
                        }
                        let (tx, rx) = tokio::sync::mpsc::channel(32);
                        // Shutdown, or the user disabled (accounts::streams).
                        let abort =
                            crate::accounts::streams::token_for(bill.owner.user_id, &self.abort);
                        let pump = Pump {
                            _permit: permit,
                            req: req.clone(),
                            bill,
                            budget,
                            channel_id: target.channel_id(),
                            abort,
                            write_timeout: self.write_timeout,
                        };
                        self.tracker.spawn(pump.run(first, stream, tx));
                        return Ok(RelayReply::Stream(
                            tokio_stream::wrappers::ReceiverStream::new(rx),
                        ));
                    }
                    Some(Err(e)) => e,
                    None => ProviderError::Decode("upstream stream ended before any data".into()),
                },
                Err(e) => e,
            };
            tracing::warn!(channel = ?target.channel_id(), model = %model.id, error = %failed, "upstream call failed");
            if let Some(id) = target.channel_id()
                && failed.retryable()
            {
                self.health.failure(id, &client_error_text(&failed)).await;
            }
            if !failed.retryable() {
                bill.close(None, target.channel_id(), "rejected").await;
                return Err(client_error(failed));
            }
            last_error = Some(failed);
        }
        bill.close(None, None, "failed").await;
        Err(last_error
            .map(client_error)
            .unwrap_or_else(|| RelayError::NoChannel(model.id.clone())))
    }
}

impl ChatRelay {
    /// The most a call can be held for (units): what a quote shows and a key's monthly limit is
    /// checked against. The hold itself may be lower when the balance cannot cover it.
    pub fn hold_bound(&self, model: &Model, req: &ChatRequest) -> i64 {
        Budget::of(req, model, self.default_max_output)
            .max_hold(model)
            .min(crate::billing::ledger::MAX_CHANGE)
    }

    /// Hold what the call can cost; when the balance cannot cover its own bound, lower the bound
    /// to what the balance affords (at least [`budget::MIN_CHOICE_TOKENS`] per choice), else
    /// refuse with the amount the call needs.
    async fn hold(
        &self,
        owner: &KeyOwner,
        model: &Model,
        budget: &mut Budget,
    ) -> Result<Option<Reservation>, RelayError> {
        // A bound beyond any balance (max_tokens = 10^12) is simply lowered to what fits.
        let max = budget
            .max_hold(model)
            .min(crate::billing::ledger::MAX_CHANGE);
        if max <= 0 {
            return Ok(None);
        }
        let min = budget.min_hold(model).min(max);
        let hold = Hold {
            user_id: owner.user_id,
            min,
            max,
            purpose: CHAT_PURPOSE,
            model: model.id.clone(),
            label: format!("对话 {}", model.id),
            owner: Some(self.owner.clone()),
        };
        match self.holds.hold(hold).await {
            Ok(reservation) => {
                if reservation.amount < max {
                    budget.fit(model, reservation.amount);
                }
                Ok(Some(reservation))
            }
            Err(LedgerError::InsufficientBalance) => {
                let balance = self.balances.balance(owner.user_id).await?;
                Err(RelayError::BalanceShort {
                    needed: credits_text(min),
                    balance: credits_text(balance),
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// What an operator reads about an upstream failure (never the vendor's words about our keys).
fn client_error_text(e: &ProviderError) -> String {
    match e {
        ProviderError::Status { status, .. } => format!("HTTP {status}"),
        ProviderError::Timeout => "timeout".into(),
        ProviderError::Connect(_) => "connection failed".into(),
        ProviderError::Decode(_) => "unreadable response".into(),
        ProviderError::Event(_) => "error event in the stream".into(),
        ProviderError::Throttled { .. } => "HTTP 429".into(),
    }
}

/// The client-facing error for an upstream failure; never the vendor's words about our keys.
fn client_error(e: ProviderError) -> RelayError {
    match e {
        ProviderError::Status {
            status: status @ (400 | 404 | 413 | 422),
            message,
        } => RelayError::UpstreamRejected { status, message },
        ProviderError::Status {
            status: 401 | 403, ..
        } => RelayError::UpstreamFailed(
            "upstream authentication failed (the channel's vendor key was refused)".into(),
        ),
        ProviderError::Status { status: 429, .. } => {
            RelayError::UpstreamFailed("upstream rate limit exceeded; retry later".into())
        }
        ProviderError::Status { status, .. } => {
            RelayError::UpstreamFailed(format!("upstream answered HTTP {status}"))
        }
        ProviderError::Timeout => RelayError::UpstreamTimeout,
        ProviderError::Connect(_) => {
            RelayError::UpstreamFailed("connection to the upstream failed or broke".into())
        }
        ProviderError::Decode(_) => {
            RelayError::UpstreamFailed("upstream sent an unreadable response".into())
        }
        ProviderError::Event(message) => RelayError::UpstreamFailed(message),
        // Every channel was throttled: busy, not broken; the client may retry when told.
        ProviderError::Throttled { retry_after_secs } => RelayError::UpstreamBusy {
            retry_after_secs: retry_after_secs.unwrap_or(1).clamp(1, 3600),
        },
    }
}

/// Usage from an upstream `usage` object.
fn usage_from(usage: &Value) -> Option<Usage> {
    let usage = Some(usage).filter(|u| u.is_object())?;
    let prompt = usage.get("prompt_tokens").and_then(Value::as_u64)?;
    let completion = usage
        .get("completion_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        reported: true,
    })
}

async fn finish_complete(
    answer: rewrite::Answer<'_>,
    size: usize,
    req: &ChatRequest,
    bill: Bill,
    channel_id: Option<i64>,
) -> Bytes {
    let usage = answer
        .usage()
        .and_then(usage_from)
        .unwrap_or_else(|| Usage {
            prompt_tokens: req.prompt_tokens,
            completion_tokens: tokens::estimate(&answer.produced_text()),
            reported: false,
        });
    let model = bill.model.clone();
    let credits = bill.close(Some(usage), channel_id, "ok").await;
    let usage_value = serde_json::json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    });
    let mut out = Vec::with_capacity(size + 128);
    let decoration = rewrite::Decoration {
        kind: rewrite::Kind::Completion,
        model: &model.id,
        credits: Some(credits_json(credits)),
        missing_usage: Some(usage_value),
        id: req.request_id.as_deref(),
    };
    answer.write_decorated(&mut out, decoration);
    Bytes::from(out)
}

impl Bill {
    /// The price of a usage (units).
    fn price_of(&self, u: Usage) -> i64 {
        chat_price(&self.model, u.prompt_tokens, u.completion_tokens)
    }

    /// Settle (or release, without usage) and record the call; returns the units charged.
    async fn close(
        self,
        usage: Option<Usage>,
        channel_id: Option<i64>,
        outcome: &'static str,
    ) -> i64 {
        let price = usage
            .map(|u| chat_price(&self.model, u.prompt_tokens, u.completion_tokens))
            .unwrap_or(0);
        let u = usage.unwrap_or(Usage {
            prompt_tokens: 0,
            completion_tokens: 0,
            reported: false,
        });
        let row = UsageRow {
            user_id: self.owner.user_id,
            key_id: self.owner.key_id,
            model: self.model.id.clone(),
            channel_id,
            prompt_tokens: i64::try_from(u.prompt_tokens).unwrap_or(i64::MAX),
            completion_tokens: i64::try_from(u.completion_tokens).unwrap_or(i64::MAX),
            usage_source: if u.reported { "upstream" } else { "estimated" },
            outcome,
            latency_ms: i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX),
            request_id: self.request_id.clone(),
        };
        let close = Close {
            reservation_id: self.reservation.as_ref().map(|r| r.id.clone()),
            price,
            usage: Some(row),
            orphaned: false,
        };
        // The hold stays ours while this process lives: a database hiccup is waited out rather
        // than leaving the call unbilled.
        let mut delay = Duration::from_millis(100);
        let mut tries = 0;
        let charged = loop {
            match self.ledger.close(close.clone()).await {
                Ok(s) => {
                    if s.uncovered > 0 {
                        tracing::warn!(
                            user_id = self.owner.user_id,
                            uncovered = s.uncovered,
                            "the upstream billed more than the hold covered"
                        );
                        metrics::counter!("llmage_chat_uncovered_units_total")
                            .increment(u64::try_from(s.uncovered).unwrap_or(0));
                    }
                    break s.charged;
                }
                Err(e) if tries < 8 => {
                    tracing::warn!(error = %e, reservation = ?close.reservation_id, "settling a chat call failed; retrying");
                    tries += 1;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::error!(error = %e, reservation = ?close.reservation_id, "settling a chat call failed; its hold is released when this process is gone");
                    break 0;
                }
            }
        };
        record_call(&self.model.id, channel_id, outcome, u, charged);
        charged
    }
}

/// Metrics of one finished call.
fn record_call(
    model: &str,
    channel_id: Option<i64>,
    outcome: &'static str,
    u: Usage,
    charged: i64,
) {
    let channel = channel_id.map_or_else(|| "sandbox".to_owned(), |id| id.to_string());
    metrics::counter!("llmage_upstream_calls_total", "channel" => channel, "outcome" => outcome)
        .increment(1);
    metrics::counter!("llmage_chat_tokens_total", "model" => model.to_owned(), "kind" => "prompt")
        .increment(u.prompt_tokens);
    metrics::counter!("llmage_chat_tokens_total", "model" => model.to_owned(), "kind" => "completion")
        .increment(u.completion_tokens);
    metrics::counter!("llmage_credit_units_charged_total", "kind" => "chat")
        .increment(u64::try_from(charged).unwrap_or(0));
}

/// Moves a stream from the upstream to the client, metering each choice as it goes.
struct Pump {
    /// The channel's concurrency permit, held until the stream ends.
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
    req: ChatRequest,
    bill: Bill,
    budget: Budget,
    channel_id: Option<i64>,
    abort: CancellationToken,
    write_timeout: Duration,
}

/// Why a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The upstream finished.
    Done,
    /// A choice outgrew its bound: cut with `finish_reason: "length"`.
    Capped,
    ClientClosed,
    /// The client stopped reading for longer than the write timeout.
    ClientStalled,
    Shutdown,
    UpstreamError,
}

impl End {
    fn outcome(self) -> &'static str {
        match self {
            End::Done => "ok",
            End::Capped => "capped",
            End::ClientClosed => "client_closed",
            End::ClientStalled => "client_stalled",
            End::Shutdown => "shutdown",
            End::UpstreamError => "upstream_error",
        }
    }
}

/// Tokens relayed per choice (by estimate), and which choices finished.
struct Meter {
    relayed: Vec<u64>,
    finished: Vec<bool>,
    /// Tokens a choice may relay before it is cut.
    limit: u64,
}

impl Meter {
    fn new(budget: &Budget) -> Meter {
        let n = usize::try_from(budget.n).unwrap_or(1).max(1);
        Meter {
            relayed: vec![0; n],
            finished: vec![false; n],
            limit: budget::metered(budget.cap),
        }
    }

    /// Count a chunk; whether a choice has now outgrown its bound.
    fn count(&mut self, chunk: &rewrite::Answer<'_>) -> bool {
        let mut over = false;
        for choice in chunk.produced_by_choice() {
            // An index beyond `n` (an upstream that ignores `n`) is metered on its own slot.
            if choice.index >= self.relayed.len() {
                self.relayed.resize(choice.index + 1, 0);
                self.finished.resize(choice.index + 1, false);
            }
            self.relayed[choice.index] += tokens::estimate(&choice.text);
            self.finished[choice.index] |= choice.finished;
            over |= self.relayed[choice.index] > self.limit;
        }
        over
    }

    fn total(&self) -> u64 {
        self.relayed.iter().sum()
    }
}

impl Pump {
    async fn run(
        self,
        first: String,
        mut upstream: ChunkStream,
        tx: tokio::sync::mpsc::Sender<Result<Bytes, Infallible>>,
    ) {
        let model_id = self.bill.model.id.clone();
        let mut reported: Option<Usage> = None;
        let mut meter = Meter::new(&self.budget);
        let mut answer_id: Option<String> = None;
        let mut end = End::Done;
        let mut next = Some(Ok(first));
        // Events that arrived together leave together: one write to the client instead of one
        // per event. An upstream that trickles still gets each event out as soon as it comes.
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let ready = match next.take() {
                Some(item) => Some(Some(item)),
                None => upstream.next().now_or_never(),
            };
            let item = match ready {
                Some(Some(item)) => item,
                Some(None) => break,
                None => {
                    if !pending.is_empty() {
                        let chunk = Bytes::from(std::mem::take(&mut pending));
                        if let Err(stop) = self.send(&tx, chunk).await {
                            end = stop;
                            break;
                        }
                    }
                    tokio::select! {
                        item = upstream.next() => match item {
                            Some(item) => item,
                            None => break,
                        },
                        () = self.abort.cancelled() => {
                            end = End::Shutdown;
                            pending.extend_from_slice(&error_event("server is shutting down; the answer was cut short"));
                            break;
                        }
                        () = tx.closed() => {
                            end = End::ClientClosed;
                            break;
                        }
                    }
                }
            };
            let raw = match item {
                Ok(raw) => raw,
                Err(e) => {
                    self.fail_mid_way(e, &mut pending);
                    end = End::UpstreamError;
                    break;
                }
            };
            let Some(chunk) = rewrite::Answer::parse(raw.as_bytes()) else {
                self.fail_mid_way(not_json(), &mut pending);
                end = End::UpstreamError;
                break;
            };
            if answer_id.is_none() {
                answer_id = chunk.id();
            }
            let over = meter.count(&chunk);
            let usage_only = chunk.usage_only();
            if let Some(u) = chunk.usage().and_then(usage_from) {
                reported = Some(u);
            }
            if !usage_only || self.req.include_usage {
                let credits = reported
                    .filter(|_| usage_only)
                    .map(|u| credits_json(self.bill.price_of(u)));
                pending.extend_from_slice(b"data: ");
                let decoration = rewrite::Decoration {
                    kind: rewrite::Kind::Chunk,
                    model: &model_id,
                    credits,
                    missing_usage: None,
                    id: self.req.request_id.as_deref(),
                };
                chunk.write_decorated(&mut pending, decoration);
                pending.extend_from_slice(b"\n\n");
            }
            if over {
                end = End::Capped;
                break;
            }
        }
        // Dropping the upstream stream here closes its connection (stops generation).
        drop(upstream);
        let usage = reported.unwrap_or(Usage {
            prompt_tokens: self.req.prompt_tokens,
            completion_tokens: meter.total(),
            reported: false,
        });
        if end == End::Capped {
            // The answer ends as any capped answer does: finish_reason "length", the usage the
            // client asked for, [DONE].
            let id = self
                .req
                .request_id
                .clone()
                .or(answer_id)
                .unwrap_or_else(|| "chatcmpl-capped".into());
            write_data_event(&mut pending, &capped_chunk(&id, &model_id, &meter));
            if self.req.include_usage {
                let usage_chunk = serde_json::json!({
                    "id": id, "object": "chat.completion.chunk", "model": model_id, "choices": [],
                    "usage": {
                        "prompt_tokens": usage.prompt_tokens,
                        "completion_tokens": usage.completion_tokens,
                        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
                        "credits": credits_json(self.bill.price_of(usage)),
                    },
                });
                write_data_event(&mut pending, &usage_chunk);
            }
        }
        if matches!(end, End::Done | End::Capped) {
            pending.extend_from_slice(b"data: [DONE]\n\n");
        }
        if !pending.is_empty() && !matches!(end, End::ClientClosed | End::ClientStalled) {
            let _ = self.send(&tx, Bytes::from(pending)).await;
        }
        self.bill
            .close(Some(usage), self.channel_id, end.outcome())
            .await;
    }

    /// Hand bytes to the client's connection, waiting at most the write timeout for a client
    /// that stopped reading.
    async fn send(
        &self,
        tx: &tokio::sync::mpsc::Sender<Result<Bytes, Infallible>>,
        bytes: Bytes,
    ) -> Result<(), End> {
        match tokio::time::timeout(self.write_timeout, tx.send(Ok(bytes))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::ClientClosed),
            Err(_) => {
                tracing::warn!(
                    user_id = self.bill.owner.user_id,
                    "client stopped reading; stream cut"
                );
                Err(End::ClientStalled)
            }
        }
    }

    /// The stream broke after its first byte reached the client: log it and end the answer with
    /// an error event.
    fn fail_mid_way(&self, e: ProviderError, pending: &mut Vec<u8>) {
        tracing::warn!(channel = ?self.channel_id, error = %e, "upstream stream failed mid-way");
        pending.extend_from_slice(&error_event(&client_error(e).to_string()));
    }
}

/// The last chunk of a stream cut at its bound: every unfinished choice ends with
/// `finish_reason: "length"`.
fn capped_chunk(id: &str, model: &str, meter: &Meter) -> Value {
    let choices: Vec<Value> = meter
        .finished
        .iter()
        .enumerate()
        .filter(|(_, done)| !**done)
        .map(|(index, _)| serde_json::json!({"index": index, "delta": {}, "finish_reason": "length"}))
        .collect();
    serde_json::json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": crate::util::clock::now_ms() / 1000,
        "model": model,
        "choices": choices,
        "reasoning_content": null,
        "content": "",
        "finish": "1",
    })
}

/// A chunk that is not JSON (the upstream is not speaking the protocol).
fn not_json() -> ProviderError {
    ProviderError::Decode("upstream sent a chunk that is not JSON".into())
}

fn data_event(value: &Value) -> Bytes {
    let mut out = Vec::with_capacity(256);
    write_data_event(&mut out, value);
    Bytes::from(out)
}

/// Append `data: <json>\n\n`.
fn write_data_event(out: &mut Vec<u8>, value: &Value) {
    out.extend_from_slice(b"data: ");
    // Serializing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(b"\n\n");
}

/// An SSE error event in the OpenAI shape (SDKs raise it as an API error).
fn error_event(message: &str) -> Bytes {
    data_event(&serde_json::json!({"error": {"message": message, "type": "upstream_error"}}))
}
