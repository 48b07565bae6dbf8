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

use super::auth::SessionUser;
use crate::api::error::ApiError;
use crate::api::state::AppState;
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
        ("format" = Option<String>, Query, description = "格式 / format: json (default) or csv"),
        ("limit" = Option<i64>, Query, description = "行数 1–10000(默认 1000) / Rows, 1–10000 (default 1000)", minimum = 1, maximum = 10000),
    ),
    responses(
        (status = 200, description = "账本记录,最新的在前 / Entries, newest first", content(
            (super::schema::LedgerPage = "application/json"), (String = "text/csv"))),
        (status = 400, description = "格式或条数有误 / Bad format or limit", body = super::schema::ErrorBody),
    ),
    security(("session" = [])))]
/// `GET /api/finance/ledger`: one row per call (its hold and settlement as one amount) and
/// one per other balance change, newest first, each with what the user reads for it.
pub async fn ledger(
    State(state): State<AppState>,
    who: SessionUser,
    ApiQuery(q): ApiQuery<FinanceQuery>,
) -> Result<Response, ApiError> {
    let rows = consumption_rows(&state, who.user.id, q.limit()?).await?;
    if q.csv()? {
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    r.created_at.to_string(),
                    r.kind.to_owned(),
                    crate::billing::credits_text(r.amount),
                    crate::billing::credits_text(r.balance_after),
                    r.status.to_owned(),
                    r.description.clone(),
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
                "status",
                "description",
            ],
            &rows,
        );
    }
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "created_at": r.created_at, "kind": r.kind,
                "amount": crate::billing::credits_json(r.amount),
                "balance_after": crate::billing::credits_json(r.balance_after),
                "status": r.status, "description": r.description,
            })
        })
        .collect();
    let balance = crate::billing::credits_json(who.user.balance);
    Ok(Json(json!({"object": "list", "balance": balance, "data": data})).into_response())
}

/// One line of the finance ledger.
struct Consumption {
    /// The id of its first ledger row.
    id: i64,
    created_at: i64,
    /// `chat`, `task`, or the ledger kind of a change that is not a call.
    kind: &'static str,
    /// Units, the sum of its rows.
    amount: i64,
    /// Units, after its last row.
    balance_after: i64,
    /// `done`, or `pending` while a call still holds credits.
    status: &'static str,
    description: String,
}

/// The rows of one hold (or one change that is not a call), as [`consumption_rows`] reads them:
/// the sums, the last row's balance, and the first row's kind, reason, label and hold.
#[derive(sqlx::FromRow)]
struct LedgerGroup {
    first_id: i64,
    /// Units.
    amount: i64,
    created_at: i64,
    balance_after: i64,
    kind: Option<String>,
    reason: Option<String>,
    label: Option<String>,
    /// The hold's purpose, `None` for a change that is not a call.
    purpose: Option<String>,
    hold_status: Option<String>,
    model: Option<String>,
}

/// A user's ledger grouped by call: the rows of one hold (reserve, settle or release) become
/// one line with their sum, dated and numbered by the first and showing the balance after the
/// last.
async fn consumption_rows(
    state: &AppState,
    user_id: i64,
    limit: i64,
) -> Result<Vec<Consumption>, ApiError> {
    let groups: Vec<LedgerGroup> = sqlx::query_as(
        "SELECT g.first_id, g.amount, g.created_at, l.balance_after, f.kind, f.reason, f.label, \
         r.purpose, r.status AS hold_status, r.model \
         FROM (SELECT MIN(id) AS first_id, MAX(id) AS last_id, CAST(SUM(amount) AS BIGINT) AS amount, \
               MIN(created_at) AS created_at \
               FROM ledger WHERE user_id = $1 \
               GROUP BY COALESCE(reservation_id, CAST(id AS TEXT))) g \
         JOIN ledger l ON l.id = g.last_id \
         JOIN ledger f ON f.id = g.first_id \
         LEFT JOIN reservations r ON r.id = f.reservation_id \
         ORDER BY g.first_id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(state.db.reader())
    .await
    .map_err(StoreError::from)?;
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let model = g.model.unwrap_or_default();
        let (kind, description) = match g.purpose.as_deref() {
            Some(p) if p.starts_with("chat") => {
                ("chat", g.label.unwrap_or_else(|| format!("对话 {model}")))
            }
            Some(p) if p == crate::api::embeddings::EMBEDDING_PURPOSE => (
                "embedding",
                g.label.unwrap_or_else(|| format!("向量 {model}")),
            ),
            Some(_) => ("task", g.label.unwrap_or_else(|| format!("任务 {model}"))),
            None => {
                let kind = change_kind(g.kind.as_deref().unwrap_or_default());
                let reason = g.reason.unwrap_or_default();
                let description = g.label.unwrap_or_else(|| change_words(kind, &reason));
                (kind, description)
            }
        };
        let pending = g.hold_status.as_deref() == Some("open");
        out.push(Consumption {
            id: g.first_id,
            created_at: g.created_at / 1000,
            kind,
            amount: g.amount,
            balance_after: g.balance_after,
            status: if pending { "pending" } else { "done" },
            description,
        });
    }
    Ok(out)
}

/// The ledger kind of a change that is not a call, as a static word.
fn change_kind(kind: &str) -> &'static str {
    match kind {
        "grant" => "grant",
        "adjust" => "adjust",
        "redeem" => "redeem",
        "recharge" => "recharge",
        "release" => "release",
        "settle" => "settle",
        // A chat call paid from its process's credit lease: one row per call.
        "charge" => "chat",
        _ => "reserve",
    }
}

/// What a user reads for a change written before rows had labels (the internal reason of an
/// admin change names the admin and is not shown).
fn change_words(kind: &str, reason: &str) -> String {
    match kind {
        "grant" if reason == "initial credits" || reason.starts_with("demo") => "赠送积分".into(),
        "grant" | "adjust" => match reason.split_once(": ") {
            Some((_, why)) if reason.starts_with("admin") => format!("管理员调整: {why}"),
            _ => "管理员调整".into(),
        },
        "redeem" => "兑换码".into(),
        "recharge" => "支付宝充值".into(),
        "chat" => "对话".into(),
        _ => "余额变动".into(),
    }
}

#[utoipa::path(get, path = "/api/finance/usage", tag = "finance",
    summary = "财务 · 用量 / calls and credits per day and model",
    params(
        ("format" = Option<String>, Query, description = "格式 / format: json (default) or csv"),
        ("limit" = Option<i64>, Query, description = "行数 1–10000(默认 1000) / Rows, 1–10000 (default 1000)", minimum = 1, maximum = 10000),
    ),
    responses(
        (status = 200, description = "按天汇总的行,最近的日期在前 / Rows, newest day first", content(
            (super::schema::UsagePage = "application/json"), (String = "text/csv"))),
        (status = 400, description = "格式或条数有误 / Bad format or limit", body = super::schema::ErrorBody),
    ),
    security(("session" = [])))]
/// `GET /api/finance/usage`: per day (UTC) and model.
pub async fn usage(
    State(state): State<AppState>,
    who: SessionUser,
    ApiQuery(q): ApiQuery<FinanceQuery>,
) -> Result<Response, ApiError> {
    let items: Vec<UsageRow> = sqlx::query_as(
        "SELECT CAST(created_at / 86400000 AS BIGINT) AS day, model, CAST(COUNT(*) AS BIGINT) AS calls, \
         CAST(COALESCE(SUM(credits), 0) AS BIGINT) AS credits, 'chat' AS kind FROM chat_usage WHERE user_id = $1 \
         GROUP BY CAST(created_at / 86400000 AS BIGINT), model \
         UNION ALL \
         SELECT CAST(created_at / 86400000 AS BIGINT) AS day, model, CAST(COUNT(*) AS BIGINT) AS calls, \
         CAST(COALESCE(SUM(credits), 0) * 10000 AS BIGINT) AS credits, 'task' AS kind FROM tasks WHERE user_id = $1 AND status = 'SUCCEEDED' \
         GROUP BY CAST(created_at / 86400000 AS BIGINT), model \
         ORDER BY day DESC, model LIMIT $2",
    )
    .bind(who.user.id)
    .bind(q.limit()?)
    .fetch_all(state.db.reader())
    .await
    .map_err(StoreError::from)?;
    if q.csv()? {
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|u| {
                vec![
                    chrono_day(u.day),
                    u.model.clone(),
                    u.kind.clone(),
                    u.calls.to_string(),
                    crate::billing::credits_text(u.credits),
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
        .map(|u| {
            json!({"date": chrono_day(u.day), "model": u.model, "kind": u.kind, "calls": u.calls, "credits": crate::billing::credits_json(u.credits)})
        })
        .collect();
    Ok(Json(json!({"object": "list", "data": data})).into_response())
}

/// One line of the usage view: a day, model and kind.
#[derive(sqlx::FromRow)]
struct UsageRow {
    /// Days since the epoch (UTC).
    day: i64,
    model: String,
    /// `chat` or `task`.
    kind: String,
    calls: i64,
    /// Units.
    credits: i64,
}

/// `YYYY-MM-DD` of a day number since the epoch (UTC).
fn chrono_day(days: i64) -> String {
    let (y, m, d) = crate::util::clock::civil_date(days);
    format!("{y:04}-{m:02}-{d:02}")
}

#[utoipa::path(post, path = "/api/redeem", tag = "finance",
    summary = "兑换码 / redeem a code",
    request_body = super::schema::RedeemBody,
    responses(
        (status = 200, description = "已到账 / Credited", body = super::schema::Redeemed),
        (status = 400, description = "兑换码不存在或已使用 / Unknown or used code", body = super::schema::ErrorBody),
        (status = 403, description = "X-CSRF-Token 缺失或错误 / Missing or wrong X-CSRF-Token", body = super::schema::ErrorBody),
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
        Ok((credits, balance)) => Ok(Json(
            json!({"credits": credits, "balance": crate::billing::credits_json(balance)}),
        )),
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
            crate::util::clock::utc_timestamp(1_795_584_863_000),
            "2026-11-25T05:34:23Z"
        );
    }
}
