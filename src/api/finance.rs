//! The finance views of the logged-in user (用户菜单 → 财务): `GET /api/finance/ledger` (every balance
//! change, newest first) and `GET /api/finance/usage` (credits and calls per model and day, chat
//! and tasks), as JSON or `?format=csv` (UTF-8 with a BOM so spreadsheet programs read Chinese);
//! and `POST /api/redeem` for redemption codes. Recharge orders are listed by `recharge`.

use super::extract::ApiQuery;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use super::auth::SessionUser;
use crate::error::ApiError;
use crate::server::AppState;
use crate::storage::StoreError;

#[derive(Deserialize)]
pub struct FinanceQuery {
    format: Option<String>,
    /// Most rows (default 1000, at most 10000).
    limit: Option<i64>,
}

impl FinanceQuery {
    pub(super) fn csv(&self) -> Result<bool, ApiError> {
        match self.format.as_deref() {
            None | Some("json") => Ok(false),
            Some("csv") => Ok(true),
            Some(other) => Err(ApiError::InvalidParameter(format!(
                "format must be json or csv (got {other})"
            ))),
        }
    }

    pub(super) fn limit(&self) -> Result<i64, ApiError> {
        let limit = self.limit.unwrap_or(1000);
        if (1..=10_000).contains(&limit) {
            Ok(limit)
        } else {
            Err(ApiError::InvalidParameter(
                "limit must be between 1 and 10000".into(),
            ))
        }
    }
}

pub(super) fn csv_response(
    name: &str,
    header_row: &[&str],
    rows: &[Vec<String>],
) -> Result<Response, ApiError> {
    let mut writer = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let bad = |_| ApiError::Internal;
    writer.write_record(header_row).map_err(bad)?;
    for row in rows {
        writer.write_record(row).map_err(bad)?;
    }
    let bytes = writer.into_inner().map_err(|_| ApiError::Internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/finance/ledger", tag = "finance",
    summary = "财务 · 账本 / every balance change",
    params(
        ("format" = Option<String>, Query, description = "json (default) or csv"),
        ("limit" = Option<i64>, Query, description = "Rows, 1–10000 (default 1000)", minimum = 1, maximum = 10000),
    ),
    responses(
        (status = 200, description = "Entries, newest first", content(
            (super::schema::LedgerPage = "application/json"), (String = "text/csv"))),
        (status = 400, description = "Bad format or limit", body = super::schema::ErrorBody),
    ),
    security(("session" = [])))]
/// `GET /api/finance/ledger`.
pub async fn ledger(
    State(state): State<AppState>,
    who: SessionUser,
    ApiQuery(q): ApiQuery<FinanceQuery>,
) -> Result<Response, ApiError> {
    let rows = sqlx::query(
        "SELECT id, amount, balance_after, kind, reason, created_at FROM ledger WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(who.user.id)
    .bind(q.limit()?)
    .fetch_all(state.db.reader())
    .await
    .map_err(StoreError::from)?;
    let mut entries = Vec::with_capacity(rows.len());
    for r in &rows {
        let get = |c: &str| r.try_get::<i64, _>(c).map_err(StoreError::from);
        entries.push((
            get("id")?,
            get("amount")?,
            get("balance_after")?,
            r.try_get::<String, _>("kind").map_err(StoreError::from)?,
            r.try_get::<String, _>("reason").map_err(StoreError::from)?,
            get("created_at")? / 1000,
        ));
    }
    if q.csv()? {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|(id, amount, after, kind, reason, at)| {
                vec![
                    id.to_string(),
                    at.to_string(),
                    kind.clone(),
                    amount.to_string(),
                    after.to_string(),
                    reason.clone(),
                ]
            })
            .collect();
        return csv_response(
            "ledger",
            &[
                "id",
                "created_at",
                "kind",
                "amount",
                "balance_after",
                "reason",
            ],
            &rows,
        );
    }
    let data: Vec<Value> = entries
        .iter()
        .map(|(id, amount, after, kind, reason, at)| {
            json!({"id": id, "created_at": at, "kind": kind, "amount": amount, "balance_after": after, "reason": reason})
        })
        .collect();
    Ok(Json(json!({"object": "list", "balance": who.user.balance, "data": data})).into_response())
}

#[utoipa::path(get, path = "/api/finance/usage", tag = "finance",
    summary = "财务 · 用量 / calls and credits per day and model",
    params(
        ("format" = Option<String>, Query, description = "json (default) or csv"),
        ("limit" = Option<i64>, Query, description = "Rows, 1–10000 (default 1000)", minimum = 1, maximum = 10000),
    ),
    responses(
        (status = 200, description = "Rows, newest day first", content(
            (super::schema::UsagePage = "application/json"), (String = "text/csv"))),
        (status = 400, description = "Bad format or limit", body = super::schema::ErrorBody),
    ),
    security(("session" = [])))]
/// `GET /api/finance/usage`: per day (UTC) and model.
pub async fn usage(
    State(state): State<AppState>,
    who: SessionUser,
    ApiQuery(q): ApiQuery<FinanceQuery>,
) -> Result<Response, ApiError> {
    let rows = sqlx::query(
        "SELECT CAST(created_at / 86400000 AS BIGINT) AS day, model, CAST(COUNT(*) AS BIGINT) AS calls, \
         CAST(COALESCE(SUM(credits), 0) AS BIGINT) AS credits, 'chat' AS kind FROM chat_usage WHERE user_id = $1 \
         GROUP BY CAST(created_at / 86400000 AS BIGINT), model \
         UNION ALL \
         SELECT CAST(created_at / 86400000 AS BIGINT) AS day, model, CAST(COUNT(*) AS BIGINT) AS calls, \
         CAST(COALESCE(SUM(credits), 0) AS BIGINT) AS credits, 'task' AS kind FROM tasks WHERE user_id = $1 AND status = 'SUCCEEDED' \
         GROUP BY CAST(created_at / 86400000 AS BIGINT), model \
         ORDER BY day DESC, model LIMIT $2",
    )
    .bind(who.user.id)
    .bind(q.limit()?)
    .fetch_all(state.db.reader())
    .await
    .map_err(StoreError::from)?;
    let mut items = Vec::with_capacity(rows.len());
    for r in &rows {
        let day: i64 = r.try_get("day").map_err(StoreError::from)?;
        let date = chrono_day(day);
        items.push((
            date,
            r.try_get::<String, _>("model").map_err(StoreError::from)?,
            r.try_get::<String, _>("kind").map_err(StoreError::from)?,
            r.try_get::<i64, _>("calls").map_err(StoreError::from)?,
            r.try_get::<i64, _>("credits").map_err(StoreError::from)?,
        ));
    }
    if q.csv()? {
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|(d, m, k, c, cr)| {
                vec![
                    d.clone(),
                    m.clone(),
                    k.clone(),
                    c.to_string(),
                    cr.to_string(),
                ]
            })
            .collect();
        return csv_response(
            "usage",
            &["date", "model", "kind", "calls", "credits"],
            &rows,
        );
    }
    let data: Vec<Value> = items
        .iter()
        .map(
            |(d, m, k, c, cr)| json!({"date": d, "model": m, "kind": k, "calls": c, "credits": cr}),
        )
        .collect();
    Ok(Json(json!({"object": "list", "data": data})).into_response())
}

/// `YYYY-MM-DD` of a day number since the epoch (UTC).
fn chrono_day(days: i64) -> String {
    let (y, m, d) = crate::storage::civil_date(days);
    format!("{y:04}-{m:02}-{d:02}")
}

#[utoipa::path(post, path = "/api/redeem", tag = "finance",
    summary = "兑换码 / redeem a code",
    request_body = super::schema::RedeemBody,
    responses(
        (status = 200, description = "Credited", body = super::schema::Redeemed),
        (status = 400, description = "Unknown or used code", body = super::schema::ErrorBody),
        (status = 403, description = "Missing or wrong X-CSRF-Token", body = super::schema::ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
/// `POST /api/redeem {"code"}`: credits once per code.
pub async fn redeem(
    State(state): State<AppState>,
    who: SessionUser,
    super::extract::JsonBody(body): super::extract::JsonBody,
) -> Result<Json<Value>, ApiError> {
    use crate::billing::redeem::RedeemError;
    let code = body
        .get("code")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::MissingParameter("code".into()))?;
    match crate::billing::redeem::Redeem::new(state.db.clone())
        .redeem(who.user.id, code)
        .await
    {
        Ok((credits, balance)) => Ok(Json(json!({"credits": credits, "balance": balance}))),
        Err(e @ (RedeemError::Unknown | RedeemError::Used)) => {
            Err(ApiError::BadCode(e.to_string()))
        }
        Err(RedeemError::Ledger(e)) => Err(e.into()),
        Err(RedeemError::Store(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn days_are_dates() {
        assert_eq!(super::chrono_day(0), "1970-01-01");
        assert_eq!(super::chrono_day(20_782), "2026-11-25");
        assert_eq!(super::chrono_day(11_016), "2000-02-29");
        assert_eq!(
            crate::storage::utc_timestamp(1_795_584_863_000),
            "2026-11-25T05:34:23Z"
        );
    }
}
