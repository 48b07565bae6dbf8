//! Yuan amounts: the text a person or Alipay writes (`"10.50"`) and the integer fen (分) the
//! code counts in.

/// `"10"`, `"10.5"`, `"10.00"` → fen; `None` for anything else (signs, exponents, 3 decimals,
/// more than 12 integer digits).
pub fn yuan_to_fen(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty()
        || whole.len() > 12
        || frac.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (text.contains('.') && frac.is_empty())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    whole.checked_mul(100)?.checked_add(frac)
}

/// Fen → `"10.00"` (the form Alipay's `total_amount` takes).
pub fn fen_to_yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_strings_round_trip_through_fen() {
        assert_eq!(yuan_to_fen("10"), Some(1000));
        assert_eq!(yuan_to_fen("10.5"), Some(1050));
        assert_eq!(yuan_to_fen("0.01"), Some(1));
        assert_eq!(yuan_to_fen("10.00"), Some(1000));
        for bad in [
            "",
            "-1",
            "1.234",
            "1e3",
            "1.",
            ".5",
            "abc",
            "1 0",
            "9999999999999",
        ] {
            assert_eq!(yuan_to_fen(bad), None, "{bad}");
        }
        assert_eq!(fen_to_yuan(1), "0.01");
        assert_eq!(fen_to_yuan(123456), "1234.56");
    }
}
