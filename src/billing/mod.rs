//! Money: prices in integer credits, the ledger (every balance change is a row), and
//! reservations (reserve the worst case before work, settle on actual usage, release on failure).

pub mod group_commit;
pub mod ledger;
pub mod media;
pub mod redeem;
pub mod tokens;

use crate::catalog::{Model, Price};

/// Credits for a chat call: tokens × price per million, rounded up to a whole credit.
pub fn chat_cost(model: &Model, prompt_tokens: u64, completion_tokens: u64) -> i64 {
    match &model.price {
        Price::Tokens {
            input_per_million,
            output_per_million,
        } => {
            let micro = u128::from(prompt_tokens) * (*input_per_million).max(0) as u128
                + u128::from(completion_tokens) * (*output_per_million).max(0) as u128;
            i64::try_from(micro.div_ceil(1_000_000)).unwrap_or(i64::MAX)
        }
        Price::Image { .. } | Price::VideoSecond { .. } => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_cost_rounds_up_and_is_exact_for_whole_millions() {
        let m = Model::custom_chat("m", 600, 2400);
        assert_eq!(chat_cost(&m, 0, 0), 0);
        assert_eq!(chat_cost(&m, 1, 0), 1);
        assert_eq!(chat_cost(&m, 1_000_000, 1_000_000), 3000);
        assert_eq!(chat_cost(&m, 1000, 500), 2); // 0.6 + 1.2 = 1.8 → 2
        let free = Model::custom_chat("f", 0, 0);
        assert_eq!(chat_cost(&free, 10_000, 10_000), 0);
    }
}
