//! Money: prices, the one money engine (every balance change), its two front doors (the ledger
//! API and the chat path's group commit), holds tied to their owner process, and how amounts
//! are shown.
//!
//! Amounts in the database are integer **units** of 1/10,000 credit ([`UNITS_PER_CREDIT`]): a
//! chat call pays its token counts × list price, rounded up once to a unit, instead of a whole
//! credit. Image and video prices are whole credits (the seed shows them so) and enter the
//! ledger as `credits × UNITS_PER_CREDIT`. Amounts are shown as decimals with up to 4 places.

pub mod chat_holds;
pub mod engine;
pub mod group_commit;
pub mod holds;
pub mod ledger;
pub mod media;
pub mod redeem;
pub mod tokens;

use serde_json::Value;

use crate::catalog::{Model, Price};

/// Ledger units per credit.
pub const UNITS_PER_CREDIT: i64 = 10_000;

/// Whole credits in units.
pub fn units(credits: i64) -> i64 {
    credits.saturating_mul(UNITS_PER_CREDIT)
}

/// The price of a chat call in units: tokens × price per million credits, rounded up once.
/// A credit per million tokens is 1/100 unit per token.
pub fn chat_price(model: &Model, prompt_tokens: u64, completion_tokens: u64) -> i64 {
    let (input, output) = token_prices(model);
    let hundredths = u128::from(prompt_tokens) * u128::from(input)
        + u128::from(completion_tokens) * u128::from(output);
    i64::try_from(hundredths.div_ceil(100)).unwrap_or(i64::MAX)
}

/// The most completion tokens `budget` units pay for after `prompt_tokens`, or `None` when the
/// output is free (any number).
pub fn affordable_completion(model: &Model, prompt_tokens: u64, budget: i64) -> Option<u64> {
    let (input, output) = token_prices(model);
    if output == 0 {
        return None;
    }
    let left = u128::try_from(budget.max(0))
        .unwrap_or(0)
        .saturating_mul(100)
        .saturating_sub(u128::from(prompt_tokens) * u128::from(input));
    Some(u64::try_from(left / u128::from(output)).unwrap_or(u64::MAX))
}

/// Credits per million input and output tokens (0 for a model that is not priced by tokens).
fn token_prices(model: &Model) -> (u64, u64) {
    match &model.price {
        Price::Tokens {
            input_per_million,
            output_per_million,
        } => (
            u64::try_from(*input_per_million).unwrap_or(0),
            u64::try_from(*output_per_million).unwrap_or(0),
        ),
        Price::Image { .. } | Price::VideoSecond { .. } => (0, 0),
    }
}

/// An amount as a JSON number of credits: an integer when whole, else a decimal with up to 4
/// places (`2.802`).
pub fn credits_json(units: i64) -> Value {
    if units % UNITS_PER_CREDIT == 0 {
        Value::from(units / UNITS_PER_CREDIT)
    } else {
        // Every unit count below 2^53 is exact in an f64, and its shortest decimal form has at
        // most four places.
        Value::from(units as f64 / UNITS_PER_CREDIT as f64)
    }
}

/// An amount as text in credits, trailing zeros dropped (`2.802`, `-0.5`, `100`).
pub fn credits_text(units: i64) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    let per = UNITS_PER_CREDIT.unsigned_abs();
    let (whole, frac) = (abs / per, abs % per);
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let digits = format!("{frac:04}");
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

/// A decimal amount of credits (`"2.5"`, `3`) in units; `None` when it has more than 4 places
/// or does not fit.
pub fn units_from_credits(value: &Value) -> Option<i64> {
    if let Some(whole) = value.as_i64() {
        return whole.checked_mul(UNITS_PER_CREDIT);
    }
    let number = value.as_f64()?;
    let scaled = number * UNITS_PER_CREDIT as f64;
    let rounded = scaled.round();
    if (scaled - rounded).abs() > 1e-6 || !rounded.is_finite() || rounded.abs() > 9.0e15 {
        return None;
    }
    Some(rounded as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_price_is_exact_to_a_unit_and_rounded_once() {
        let m = Model::custom_chat("m", 600, 2400);
        assert_eq!(chat_price(&m, 0, 0), 0);
        assert_eq!(chat_price(&m, 1, 0), 6);
        assert_eq!(chat_price(&m, 47, 105), 2802);
        assert_eq!(chat_price(&m, 1_000_000, 1_000_000), units(3000));
        let odd = Model::custom_chat("o", 1, 1);
        assert_eq!(chat_price(&odd, 1, 0), 1, "a hundredth of a unit rounds up");
        assert_eq!(chat_price(&odd, 100, 100), 2);
        let free = Model::custom_chat("f", 0, 0);
        assert_eq!(chat_price(&free, 10_000, 10_000), 0);
    }

    #[test]
    fn affordable_completion_fits_the_budget() {
        let m = Model::custom_chat("m", 600, 2400);
        let n = affordable_completion(&m, 47, 2802).unwrap();
        assert_eq!(n, 105);
        assert!(chat_price(&m, 47, n) <= 2802);
        assert!(chat_price(&m, 47, n + 1) > 2802);
        assert_eq!(affordable_completion(&m, 10_000, 5), Some(0));
        assert_eq!(
            affordable_completion(&Model::custom_chat("f", 5, 0), 1, 0),
            None
        );
    }

    #[test]
    fn amounts_are_shown_as_decimal_credits() {
        assert_eq!(credits_json(units(100)), serde_json::json!(100));
        assert_eq!(credits_json(2802).to_string(), "0.2802");
        assert_eq!(credits_json(28_020).to_string(), "2.802");
        assert_eq!(credits_text(-5000), "-0.5");
        assert_eq!(credits_text(1_000_001), "100.0001");
        assert_eq!(credits_text(0), "0");
        assert_eq!(units_from_credits(&serde_json::json!(2.5)), Some(25_000));
        assert_eq!(units_from_credits(&serde_json::json!(-3)), Some(-30_000));
        assert_eq!(units_from_credits(&serde_json::json!(0.00001)), None);
    }
}
