//! What a chat call may cost before it is sent: the hold covers everything the upstream can
//! bill — the whole forwarded input by its token bound, and every one of the `n` choices up to
//! the output bound — and when the balance cannot cover that, the output bound sent upstream is
//! lowered to what the balance affords (the answer then ends with `finish_reason: "length"`, as
//! any capped call does) instead of refusing the call.
//!
//! A streamed choice is metered as it is relayed and cut once it has relayed more than
//! [`metered`] of its bound (our token estimate can read more tokens than the vendor's tokenizer
//! does: a Qwen token is about 1.5 CJK characters), and the hold covers that much.

use serde_json::Value;

use super::ChatRequest;
use crate::billing::{affordable_completion, chat_price};
use crate::catalog::Model;

/// The smallest output bound per choice a call goes ahead with.
pub const MIN_CHOICE_TOKENS: u64 = 16;

/// Most `n` a call may ask for.
pub const MAX_CHOICES: u64 = 128;

/// The tokens a choice with output bound `cap` may relay (by our estimate) before it is cut.
pub fn metered(cap: u64) -> u64 {
    cap.saturating_add(cap / 2).saturating_add(16)
}

/// The money side of one chat call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Most input tokens the upstream can bill.
    pub input_bound: u64,
    /// Choices asked for.
    pub n: u64,
    /// Output bound per choice, as sent upstream.
    pub cap: u64,
}

impl Budget {
    /// The budget of a request: its own bound, else the model's, else the server default.
    pub fn of(req: &ChatRequest, model: &Model, default_max_output: u64) -> Budget {
        let cap = req
            .max_tokens
            .or(model.max_output_tokens)
            .unwrap_or(default_max_output)
            .max(1);
        Budget {
            input_bound: crate::billing::tokens::input_bound(&req.upstream_body),
            n: req.n,
            cap,
        }
    }

    /// The hold that covers the call at `cap` (units).
    pub fn hold_at(&self, model: &Model, cap: u64) -> i64 {
        chat_price(model, self.input_bound, self.n.saturating_mul(metered(cap)))
    }

    /// The hold at the call's own bound.
    pub fn max_hold(&self, model: &Model) -> i64 {
        self.hold_at(model, self.cap)
    }

    /// The smallest hold the call goes ahead with.
    pub fn min_hold(&self, model: &Model) -> i64 {
        self.hold_at(model, self.cap.min(MIN_CHOICE_TOKENS))
    }

    /// Lower the output bound to what `granted` units pay for (never raise it).
    pub fn fit(&mut self, model: &Model, granted: i64) {
        let Some(total) = affordable_completion(model, self.input_bound, granted) else {
            return;
        };
        let per_choice = total / self.n.max(1);
        // Invert `metered`: cap + cap/2 + 16 <= per_choice.
        let mut cap = per_choice.saturating_sub(16).saturating_mul(2) / 3;
        cap = cap.min(self.cap);
        while cap > 1 && self.hold_at(model, cap) > granted {
            cap -= 1;
        }
        while cap < self.cap && self.hold_at(model, cap + 1) <= granted {
            cap += 1;
        }
        self.cap = cap.max(1);
    }

    /// Write the output bound into the upstream body: in the field the client used
    /// (`max_completion_tokens` for the newer OpenAI models), else `max_tokens`, so the upstream
    /// can never produce more than the hold covers.
    pub fn apply_to(&self, body: &mut serde_json::Map<String, Value>) {
        let field = if body.contains_key("max_completion_tokens") {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body.insert(field.into(), Value::from(self.cap));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: Value) -> ChatRequest {
        super::super::request::parse(body).unwrap()
    }

    #[test]
    fn the_hold_covers_every_choice_and_the_whole_input() {
        let model = Model::custom_chat("m", 600, 2400);
        let one = Budget::of(
            &request(json!({"model": "m", "prompt": "hi", "max_tokens": 1000})),
            &model,
            8192,
        );
        let fifty = Budget::of(
            &request(json!({"model": "m", "prompt": "hi", "max_tokens": 1000, "n": 50})),
            &model,
            8192,
        );
        assert_eq!(fifty.n, 50);
        assert!(fifty.max_hold(&model) >= 50 * chat_price(&model, 0, 1000));
        assert!(fifty.max_hold(&model) > 40 * one.max_hold(&model));
        let tools = "x".repeat(10_000);
        let with_tools = Budget::of(
            &request(json!({"model": "m", "prompt": "hi", "max_tokens": 1000,
                "tools": [{"type": "function", "function": {"name": "f", "description": tools}}]})),
            &model,
            8192,
        );
        assert!(with_tools.input_bound >= 5_000);
    }

    #[test]
    fn a_small_balance_lowers_the_bound_instead_of_refusing() {
        let model = Model::custom_chat("m", 600, 2400);
        let mut budget = Budget::of(
            &request(json!({"model": "m", "prompt": "你的问题", "n": 2})),
            &model,
            65_536,
        );
        let granted = 20_000; // 2 credits
        assert!(budget.min_hold(&model) <= granted && budget.max_hold(&model) > granted);
        budget.fit(&model, granted);
        assert!(budget.cap >= MIN_CHOICE_TOKENS && budget.cap < 65_536);
        assert!(budget.max_hold(&model) <= granted);
        assert!(budget.hold_at(&model, budget.cap + 1) > granted);
        let mut body = serde_json::Map::new();
        budget.apply_to(&mut body);
        assert_eq!(body["max_tokens"], json!(budget.cap));
    }
}
