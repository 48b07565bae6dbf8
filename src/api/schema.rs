//! The shapes of request and response bodies as the OpenAPI document describes them. Handlers
//! name these in their `#[utoipa::path]`; the simple console bodies are also what the handlers
//! deserialize. schemathesis (in CI) checks every answer of the server against these schemas,
//! so a handler that drifts from its documented shape fails the build.

#![allow(
    dead_code,
    reason = "fields are read by the OpenAPI derive, not by code"
)]

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// 所有错误:`{"error": "<message>"}`(种子的形式) / Every error: `{"error": "<message>"}`
/// (the seed's form).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "Invalid API Key")]
    pub error: String,
}

/// 分类(catelogid):t2t 文本生成、t2i 文生图、t2v 文生视频、i2v 图生视频、ref2v 参考生视频 / A category
/// (catelogid): t2t text generation, t2i text to image, t2v text to video, i2v image to video,
/// ref2v reference to video.
#[derive(Serialize, Deserialize, ToSchema)]
#[allow(non_camel_case_types, reason = "the seed's spelling")]
pub enum CatelogId {
    t2t,
    t2i,
    t2v,
    i2v,
    ref2v,
}

/// 对话消息(OpenAI 形式) / A chat message (OpenAI form).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ChatMessage {
    /// 角色:system、user、assistant 或 tool / role: system, user, assistant or tool
    #[schema(example = "user")]
    pub role: String,
    /// 文本,或 OpenAI 的内容分段 / Text, or OpenAI content parts
    pub content: Value,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// 最后发送一个带 `usage`(含 `usage.credits`)的分片 / Send a final chunk with `usage` (and `usage.credits`)
    pub include_usage: Option<bool>,
}

/// `POST /llmage/v1/chat/completions`:种子的 `prompt`/`sys_prompt` 形式或 OpenAI 的 `messages`
/// (二者必填其一);其他 OpenAI 字段(temperature、tools 等)原样转给上游。 / `POST /llmage/v1/chat/completions`: the seed's `prompt`/`sys_prompt` form or OpenAI's
/// `messages` (one of the two is required). Other OpenAI fields (temperature, tools, …) are passed
/// to the upstream unchanged.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"model": "qwen3-max", "catelogid": "t2t", "prompt": "你的问题", "sys_prompt": "", "stream": false}))]
pub struct ChatRequest {
    /// 文本模型 id,见 `GET /llmage/v1/models?catelogid=t2t` / A chat model id from `GET /llmage/v1/models?catelogid=t2t`
    pub model: String,
    /// 分类:此处只能是 `t2t` / Category: only `t2t` here
    #[schema(nullable = false)]
    pub catelogid: Option<String>,
    /// 提示词(与 `messages` 二选一必填) / The question (seed form; this or `messages` is required)
    #[schema(nullable = false, min_length = 1, pattern = "\\S")]
    pub prompt: Option<String>,
    /// 系统提示词 / System prompt (seed form)
    #[schema(nullable = false)]
    pub sys_prompt: Option<String>,
    /// 对话消息(OpenAI 形式,与 `prompt` 二选一必填) / The conversation (OpenAI form; this or `prompt` is required)
    #[schema(nullable = false, min_items = 1)]
    pub messages: Option<Vec<ChatMessage>>,
    /// 流式输出开关 / Answer as a text/event-stream
    #[schema(nullable = false)]
    pub stream: Option<bool>,
    /// 流式选项:`include_usage` 时最后一个分片带 `usage` / Stream options: `include_usage` sends a last chunk with `usage`
    #[schema(nullable = false)]
    pub stream_options: Option<StreamOptions>,
    /// 最多输出的 token 数 / Most tokens to generate
    #[schema(nullable = false, minimum = 1)]
    pub max_tokens: Option<u64>,
    /// 最多输出的 token 数(OpenAI 新字段名) / Most tokens to generate (OpenAI's newer name)
    #[schema(nullable = false, minimum = 1)]
    pub max_completion_tokens: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct ChatUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// 本次调用的积分(最多 4 位小数:token 数 × 标价) / Credits this call cost (a decimal with up
    /// to 4 places: tokens × list price).
    pub credits: f64,
}

#[derive(Serialize, ToSchema)]
pub struct AssistantMessage {
    pub role: String,
    pub content: Option<String>,
    #[schema(nullable = false)]
    pub reasoning_content: Option<String>,
    #[schema(nullable = false)]
    pub tool_calls: Option<Vec<Value>>,
}

#[derive(Serialize, ToSchema)]
pub struct ChatChoice {
    pub index: u32,
    pub message: AssistantMessage,
    pub finish_reason: Option<String>,
}

/// 对话补全:OpenAI 的对象加上种子的 `content`、`reasoning_content`、`finish`。`"stream": true`
/// 时回答为 `chat.completion.chunk` 对象的 `text/event-stream`(附加字段相同,最后一个之前 `finish`
/// 为 `"0"`),以 `data: [DONE]` 结束。 / A chat completion: OpenAI's object plus the seed's `content`, `reasoning_content`, `finish`.
/// With `"stream": true` the answer is `text/event-stream` of `chat.completion.chunk` objects
/// (same extra fields, `finish` `"0"` until the last) ending with `data: [DONE]`.
#[derive(Serialize, ToSchema)]
pub struct ChatCompletion {
    pub id: String,
    #[schema(example = "chat.completion")]
    pub object: String,
    pub created: i64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: ChatUsage,
    /// 回答文本(种子) / The answer text (seed).
    pub content: Option<String>,
    /// 推理文本,模型推理时给出(种子) / The reasoning text, when the model reasons (seed).
    pub reasoning_content: Option<String>,
    /// `"1"`:已结束(种子) / `"1"`: finished (seed).
    #[schema(example = "1")]
    pub finish: String,
}

/// 流式补全的一个服务器发送事件:`data` 为 `chat.completion.chunk`(ChatCompletion 的字段,以
/// `choices[].delta` 代替 `message`),最后为 `[DONE]`。 / One server-sent event of a streamed completion: `data` is a `chat.completion.chunk` (the
/// ChatCompletion fields, with `choices[].delta` in place of `message`) or, last, `[DONE]`.
#[derive(Serialize, ToSchema)]
pub struct SseEvent {
    pub data: String,
    #[schema(nullable = false)]
    pub event: Option<String>,
    #[schema(nullable = false)]
    pub id: Option<String>,
}

/// 模型广场中的一个模型 / A model of the catalog.
#[derive(Serialize, ToSchema)]
pub struct ModelEntry {
    pub id: String,
    pub object: String,
    pub created: i64,
    pub owned_by: String,
    /// 分类:t2t、t2i、t2v、i2v、ref2v / Categories: t2t, t2i, t2v, i2v, ref2v.
    pub catelogid: Vec<String>,
    pub vendor: String,
    pub vendor_label: String,
    /// 模型说明(中文) / The model's description in Chinese.
    pub description: String,
    /// 模型说明(英文,若有) / The model's description in English, when the catalog has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description_en: Option<String>,
    /// 价格(积分):按 token(`unit` 为 `tokens`)、按张(`image`)或按视频秒数(`video_second`,按分辨率) / Price: `{"unit":"tokens","input_per_million","output_per_million"}`, `{"unit":"image",
    /// "per_image"}` or `{"unit":"video_second","per_second":{"720p":…}}` (credits).
    pub price: Value,
    /// 每个分类的参数表 / Parameter table per category.
    pub parameters: Value,
    /// 当前是否有渠道(或沙盒)可以提供 / Whether a channel (or the sandbox) can serve it now.
    pub available: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<ModelEntry>,
}

/// 新建的任务 / A new task.
#[derive(Serialize, ToSchema)]
pub struct TaskCreated {
    pub taskid: String,
    #[schema(example = "CREATED")]
    pub status: String,
}

/// 任务状态。`SUCCEEDED` 后 `image`、`video` 为存档结果的链接。 / A task's state. `image` and
/// `video` are links to the archived results once `SUCCEEDED`.
#[derive(Serialize, ToSchema)]
pub struct Task {
    pub taskid: String,
    /// 状态:CREATED、PENDING、RUNNING、SUCCEEDED、FAILED / CREATED, PENDING, RUNNING, SUCCEEDED, FAILED.
    pub status: String,
    pub model: String,
    pub catelogid: String,
    pub created_at: i64,
    pub updated_at: i64,
    #[schema(nullable = false)]
    pub finished_at: Option<i64>,
    #[schema(nullable = false)]
    pub usage: Option<Value>,
    #[schema(nullable = false)]
    pub image: Option<String>,
    #[schema(nullable = false)]
    pub images: Option<Vec<String>>,
    #[schema(nullable = false)]
    pub video: Option<String>,
    #[schema(nullable = false)]
    pub error: Option<String>,
    /// 提交时返回的 X-Request-Id / The X-Request-Id answered for the submission.
    #[schema(nullable = false)]
    pub request_id: Option<String>,
    /// 提交的参数(已校验;上传的文件不重复列出) / The checked parameters of the submission
    /// (uploaded files not repeated).
    #[schema(nullable = false)]
    pub params: Option<Value>,
    /// 图片或视频封面的小 JPEG(作品集缩略图) / A small JPEG of the image or the video's cover
    /// (gallery thumbnail).
    #[schema(nullable = false)]
    pub thumbnail: Option<String>,
}

/// 任务列表的一页(新的在前),未给 `taskid` 时返回 / A page of tasks (newest first) when no
/// `taskid` is given.
#[derive(Serialize, ToSchema)]
pub struct TaskList {
    pub object: String,
    pub data: Vec<Task>,
    pub has_more: bool,
    pub next: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Balance {
    /// 积分(最多 4 位小数) / Credits (a decimal with up to 4 places).
    pub balance: f64,
    pub user_id: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
    /// 内存中的渠道快照(数据库无响应时缺省) / The in-memory channel snapshot (absent when the
    /// database does not answer).
    pub channels: Option<HealthChannels>,
}

#[derive(Serialize, ToSchema)]
pub struct HealthChannels {
    /// 进程启动以来构建的快照数 / Snapshots built since the process started (1 after the first
    /// load).
    #[schema(example = 3)]
    pub generation: u64,
    /// 快照与库中渠道一致 / The live snapshot matches the stored channels; `false` for up to one
    /// 500 ms reload after a change made by another process (the `admin` CLI, another node).
    pub synced: bool,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PhoneBody {
    /// 中国大陆手机号(11 位,可带 +86) / A mainland mobile number (11 digits, optionally +86)
    #[schema(example = "13912345678", pattern = "^(\\+86)?1[3-9][0-9]{9}$")]
    pub phone: String,
}

#[derive(Serialize, ToSchema)]
pub struct CodeSent {
    pub sent: bool,
    /// 多少秒后可再次获取验证码 / Seconds before another code may be requested.
    pub resend_after: u64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LoginBody {
    /// 手机号 / The phone number the code was sent to
    #[schema(example = "13912345678", pattern = "^(\\+86)?1[3-9][0-9]{9}$")]
    pub phone: String,
    /// 6 位短信验证码 / The 6-digit code
    #[schema(example = "123456", pattern = "^[0-9]{6}$")]
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserInfo {
    pub id: i64,
    pub phone: String,
    /// 角色:`user` 或 `admin` / `user` or `admin`.
    pub role: String,
    /// 积分(最多 4 位小数) / Credits (a decimal with up to 4 places).
    pub balance: f64,
}

/// 登录结果;会话为 `llmage_session` cookie / The login's answer; the session is the
/// `llmage_session` cookie.
#[derive(Serialize, ToSchema)]
pub struct LoginAnswer {
    pub user: UserInfo,
    /// 修改数据的控制台请求以 `X-CSRF-Token` 头发送 / Send as `X-CSRF-Token` on state-changing
    /// console requests.
    pub csrf_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user: UserInfo,
    pub balance: f64,
    pub csrf_token: String,
    /// 余额提醒阈值(积分),设置了时给出 / The low-balance notice threshold (credits), if set.
    pub low_balance: Option<i64>,
    /// 余额跌破阈值时是否发送短信 / Whether an SMS goes out when the balance falls below the
    /// threshold.
    pub low_balance_sms: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Done {
    pub ok: bool,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct NewKey {
    /// 名称 / Name
    #[schema(example = "脚本", max_length = 64)]
    pub name: String,
    /// 过期时间(Unix 秒,须在未来) / Expiry, unix seconds, in the future
    #[schema(nullable = false, minimum = 0, maximum = 253_402_300_799_i64)]
    pub expires_at: Option<i64>,
    /// 允许调用的模型(不填为全部) / Models the key may call (any when absent)
    #[schema(nullable = false, min_items = 1)]
    pub models: Option<Vec<String>>,
    /// 允许使用的 IP 或 CIDR 网段(不填为任意) / Addresses or CIDR networks the key may be used from (any when absent)
    #[schema(nullable = false, min_items = 1)]
    pub allowed_ips: Option<Vec<String>>,
    /// 每自然月(北京时间)最多消费的积分(不填为不限) / Most credits the key may spend per calendar month (China time); none when absent
    #[schema(nullable = false, minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub monthly_limit: Option<i64>,
}

/// 修改密钥:缺省的字段保持不变,null 清除限制 / Changes to a key: absent fields are kept, null
/// clears a limit.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct KeyPatch {
    /// 新名称 / New name
    #[schema(example = "脚本", max_length = 64, nullable = false)]
    pub name: Option<String>,
    /// 允许调用的模型,null 清除限制 / Models the key may call; null clears the limit
    #[schema(min_items = 1)]
    pub models: Option<Vec<String>>,
    /// 允许使用的 IP 或网段,null 清除限制 / Addresses or networks; null clears the limit
    #[schema(min_items = 1)]
    pub allowed_ips: Option<Vec<String>>,
    /// 月度消费上限(积分),null 清除 / Monthly spend limit in credits; null clears it
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub monthly_limit: Option<i64>,
    /// 停用(true)或启用(false) / Switch the key off (true) or on (false)
    #[schema(nullable = false)]
    pub disabled: Option<bool>,
}

/// 新建的密钥:`key` 只显示这一次 / A created key: `key` is shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    pub id: i64,
    pub key: String,
    pub masked: String,
    pub name: String,
    pub expires_at: Option<i64>,
    pub models: Option<Vec<String>>,
    pub allowed_ips: Option<Vec<String>>,
    pub monthly_limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyInfo {
    pub id: i64,
    pub name: String,
    pub masked: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked: bool,
    pub expired: bool,
    pub models: Option<Vec<String>>,
    pub allowed_ips: Option<Vec<String>>,
    pub monthly_limit: Option<i64>,
    pub disabled: bool,
    /// 本自然月已消费(或被运行中任务冻结)的积分(最多 4 位小数) / Credits spent (or held by
    /// running tasks) this calendar month (up to 4 decimal places).
    pub month_spent: f64,
    /// 最后一次调用的时间(Unix 秒) / Unix seconds of the key's last call.
    pub last_used_at: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub object: String,
    pub data: Vec<KeyInfo>,
}

#[derive(Serialize, ToSchema)]
pub struct Revoked {
    pub id: i64,
    pub revoked: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Removed {
    pub id: i64,
    pub removed: bool,
}

#[derive(Serialize, ToSchema)]
pub struct LedgerEntry {
    /// 其第一条账本记录的 id / The id of its first ledger row.
    pub id: i64,
    pub created_at: i64,
    /// 调用为 `chat` 或 `task`(冻结与结算合为一行);其他变动为 grant、adjust、redeem 或 recharge / `chat` or `task` for a call (its hold and settlement as one line); grant, adjust, redeem
    /// or recharge for other changes.
    pub kind: String,
    /// 积分(负数为支出),最多 4 位小数 / Credits (negative: spent), a decimal with up to 4 places.
    pub amount: f64,
    pub balance_after: f64,
    /// `done`,调用仍冻结积分时为 `pending` / `done`, or `pending` while the call still holds credits.
    pub status: String,
    /// 说明,如 `对话 qwen3-max`、`视频 happyhorse-1.0-t2v 5 秒 720P`、`管理员调整: …` / What it was,
    /// in Chinese (a chat and its model, a video task with its length and resolution, an admin
    /// adjustment, …).
    pub description: String,
}

/// JSON,`?format=csv` 时为 CSV / JSON, or CSV with `?format=csv`.
#[derive(Serialize, ToSchema)]
pub struct LedgerPage {
    pub object: String,
    pub balance: f64,
    pub data: Vec<LedgerEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct UsageRow {
    /// 日期 `YYYY-MM-DD`(UTC) / `YYYY-MM-DD` (UTC).
    pub date: String,
    pub model: String,
    /// 类型:`chat` 或 `task` / `chat` or `task`.
    pub kind: String,
    pub calls: i64,
    pub credits: f64,
}

#[derive(Serialize, ToSchema)]
pub struct UsagePage {
    pub object: String,
    pub data: Vec<UsageRow>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RedeemBody {
    /// 兑换码 / The redemption code
    #[schema(example = "ABCD-EFGH-JKLM-NPQR")]
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct Redeemed {
    pub credits: i64,
    pub balance: f64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RechargeBody {
    /// 充值金额(元,最多两位小数,在配置的范围内) / Yuan, at most two decimals, within the configured limits
    #[schema(example = "10.00")]
    pub amount: String,
}

/// 充值订单。可支付期间带 `pay_url` 与 `qr_code`。 / A recharge order. `pay_url` and `qr_code`
/// are present while it can be paid.
#[derive(Serialize, ToSchema)]
pub struct RechargeOrder {
    /// 发给支付宝的 `out_trade_no` / The `out_trade_no` sent to Alipay.
    pub order_id: String,
    pub provider: String,
    /// 状态:PENDING、SUCCEEDED、FAILED / PENDING, SUCCEEDED, FAILED.
    pub status: String,
    #[schema(example = "10.00")]
    pub amount: String,
    pub credits: i64,
    pub trade_no: Option<String>,
    pub failure: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub paid_at: Option<i64>,
    /// 支付宝电脑网站收银台地址(演示模式下为本站的沙盒收银台页面) / Alipay desktop cashier URL
    /// (the sandbox cashier's page on this server in demo mode).
    #[schema(nullable = false)]
    pub pay_url: Option<String>,
    /// 支付宝手机网站支付地址(`alipay.trade.wap.pay`) / Alipay phone-browser pay URL
    /// (`alipay.trade.wap.pay`).
    #[schema(nullable = false)]
    pub wap_pay_url: Option<String>,
    /// 支付宝 App 扫码的二维码内容(预下单失败时缺省) / QR code content for the Alipay app (absent
    /// when precreate failed).
    pub qr_code: Option<String>,
    /// 仅管理员视图 / Admin view only.
    #[schema(nullable = false)]
    pub user_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct OrderList {
    pub object: String,
    pub data: Vec<RechargeOrder>,
}

#[derive(Serialize, ToSchema)]
pub struct AdminUserRow {
    pub id: i64,
    pub phone: String,
    pub role: String,
    pub balance: f64,
    pub disabled: bool,
}

#[derive(Serialize, ToSchema)]
pub struct AdminUserList {
    pub object: String,
    pub data: Vec<AdminUserRow>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CreditsBody {
    /// 增加的积分(负数为扣减,不能为 0,最多 4 位小数) / Credits to add (negative: take), not 0; at most 4 decimal places
    #[schema(minimum = -1_000_000_000_000_i64, maximum = 1_000_000_000_000_i64)]
    pub amount: f64,
    /// 原因(记入账本) / Reason, written to the ledger
    pub reason: String,
    /// 幂等键:重试的调整只生效一次 / Makes a retried adjustment apply once
    #[schema(nullable = false)]
    pub idempotency_key: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreditsDone {
    pub user_id: i64,
    pub amount: f64,
    #[schema(nullable = false)]
    pub balance: Option<f64>,
    #[schema(nullable = false)]
    pub already_applied: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct UserDisabled {
    pub user_id: i64,
    pub disabled: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelRow {
    pub id: i64,
    pub name: String,
    pub vendor: String,
    pub base_url: String,
    /// 厂商密钥,已打码(`sk-Ab…xyz`);从不返回密钥本身 / The vendor key, masked (`sk-Ab…xyz`); the
    /// key itself is never returned.
    pub key: String,
    pub models: Vec<String>,
    /// 模型 id → 厂商的模型名(两者不同时) / Our model id → the vendor's name for it, where they
    /// differ.
    pub mapping: std::collections::BTreeMap<String, String>,
    /// 只有本渠道知道的模型的输入价格(每百万 token 积分) / Credits per million input tokens for
    /// models only this channel knows.
    pub price_in: Option<i64>,
    pub price_out: Option<i64>,
    pub enabled: bool,
    pub priority: i64,
    pub weight: i64,
    pub max_concurrency: Option<i64>,
    pub rpm: Option<i64>,
    pub healthy: bool,
    pub cooling_until: Option<i64>,
    pub cooling_reason: Option<String>,
}

/// 要添加的渠道(`POST`),或要修改的字段(`PATCH`,均可省略;`api_key` 缺省或为空时保留原密钥) / A channel to add (`POST`), or the fields to change (`PATCH`, all optional; an absent or empty
/// `api_key` keeps the current key).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ChannelBody {
    /// 渠道名称 / Channel name
    pub name: Option<String>,
    /// 厂商协议名,如 openai、dashscope(全部见 `llmage admin channel add --help`) / The vendor protocol's name, e.g. openai, dashscope (all of them in `llmage admin channel add --help`)
    #[schema(example = "openai")]
    pub vendor: Option<String>,
    /// 上游地址 / The upstream base URL
    #[schema(example = "https://api.openai.com/v1")]
    pub base_url: Option<String>,
    /// 上游密钥(修改时不填则保留) / The upstream key (kept when absent on a change)
    pub api_key: Option<String>,
    /// 模型 id 列表,每项为 `model` 或 `model=上游名` / Model ids, each `model` or `model=upstream-name`
    #[schema(example = json!(["gpt-4o-mini", "qwen3-max=qwen-max"]))]
    pub models: Option<Vec<String>>,
    /// 模型 id → 厂商的模型名(在 `models` 之上生效) / Our model id → the vendor's name for it (applied on top of `models`)
    pub mapping: Option<std::collections::BTreeMap<String, String>>,
    /// 优先级(大者优先) / Priority (higher first)
    pub priority: Option<i64>,
    /// 同优先级内的权重 / Weight among channels of the same priority
    #[schema(minimum = 1)]
    pub weight: Option<i64>,
    /// 是否启用 / Enabled
    pub enabled: Option<bool>,
    /// 最大并发数 / Most concurrent calls
    pub max_concurrency: Option<i64>,
    /// 每分钟最多请求数 / Most requests per minute
    pub rpm: Option<i64>,
    /// 自定义模型的输入价格(每百万 token 积分) / Input price of a custom model (credits per million tokens)
    pub price_in: Option<i64>,
    /// 自定义模型的输出价格(每百万 token 积分) / Output price of a custom model (credits per million tokens)
    pub price_out: Option<i64>,
}

/// 渠道测试的结果 / The outcome of a channel test.
#[derive(Serialize, ToSchema)]
pub struct ChannelTest {
    pub ok: bool,
    pub latency_ms: u64,
    /// 出错原因:厂商给出消息时为其消息 / What went wrong: the vendor's message when it sent one.
    #[schema(nullable = false)]
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelList {
    pub object: String,
    pub data: Vec<ChannelRow>,
}

#[derive(Serialize, ToSchema)]
pub struct RedeemCodeList {
    pub object: String,
    pub data: Vec<crate::billing::redeem::RedeemCode>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct NewRedeemCodes {
    /// 每个兑换码的积分 / Credits per code
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub credits: i64,
    /// 生成数量(默认 1) / How many codes (default 1)
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub count: Option<u64>,
    /// 备注 / Note
    #[schema(nullable = false)]
    pub note: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RedeemBatch {
    pub batch: String,
    pub credits: i64,
    /// 只显示这一次 / Shown this once.
    pub codes: Vec<String>,
}

/// Parameters of an image/video task. In the served document this is `oneOf` the catalog's
/// per-model schemas (`params.<model>.<category>`), generated at start from the catalog.
#[derive(Serialize, ToSchema)]
pub struct TaskParams {
    pub model: String,
    pub catelogid: String,
}

/// 一个任务(给出 `taskid` 时)或任务列表的一页 / One task (with `taskid`) or a page of tasks.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum TaskOrList {
    One(Box<Task>),
    Page(TaskList),
}

/// 支付宝异步通知的字段(均为字符串;本站校验的部分) / Alipay's notification fields (all
/// strings; the ones we check).
#[derive(Serialize, ToSchema)]
pub struct AlipayNotification {
    /// 通知 id / The notification's id
    pub notify_id: String,
    /// 支付宝应用 id(须为本站配置的应用) / The Alipay application id (must be ours)
    pub app_id: String,
    /// 本站订单号 / Our order number
    pub out_trade_no: String,
    /// 支付宝交易号 / Alipay's trade number
    pub trade_no: String,
    /// 交易状态,如 `TRADE_SUCCESS` / The trade status, e.g. `TRADE_SUCCESS`
    pub trade_status: String,
    /// 订单金额(元) / The order amount in yuan
    pub total_amount: String,
    /// 收款支付宝账号 id(配置了时须一致) / The seller's Alipay id (must match when configured)
    pub seller_id: String,
    /// 签名类型(`RSA2`) / Signature type (`RSA2`)
    pub sign_type: String,
    /// 支付宝的签名 / Alipay's signature
    pub sign: String,
}

/// 控制台充值表单的设置 / Recharge settings for the console's form.
#[derive(Serialize, ToSchema)]
pub struct RechargeConfig {
    /// 是否配置了支付宝充值 / Whether Alipay recharge is configured.
    pub alipay: bool,
    /// 无支付宝的演示模式:订单在内置的沙盒收银台支付 / Demo mode without Alipay: orders are paid
    /// at the built-in sandbox cashier.
    pub sandbox: bool,
    pub credits_per_yuan: i64,
    #[schema(example = "1.00")]
    pub min: String,
    #[schema(example = "50000.00")]
    pub max: String,
}

/// OpenAI 的错误对象:`/v1` 下以及 `/llmage/v1` 下 OpenAI 专有路由(图片、视频、向量、单个模型)的
/// 所有错误 / OpenAI's error object: every error under `/v1` and on the OpenAI-only routes under
/// `/llmage/v1` (images, videos, embeddings, one model).
#[derive(Serialize, ToSchema)]
pub struct OpenAiError {
    pub error: OpenAiErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct OpenAiErrorDetail {
    #[schema(example = "Invalid API Key")]
    pub message: String,
    /// 错误类型:`invalid_request_error`、`authentication_error`、`permission_error`、
    /// `insufficient_quota`、`rate_limit_error`、`server_error` / `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `insufficient_quota`, `rate_limit_error`, `server_error`.
    #[schema(example = "authentication_error")]
    pub r#type: String,
    /// 错误涉及的参数 / The parameter the error is about.
    pub param: Option<String>,
    /// 稳定的 snake_case 错误码(如 `invalid_api_key`、`model_not_found`、`insufficient_quota`、
    /// `rate_limit_exceeded`、`invalid_parameter`、`idempotency_key_reused` 等) / A stable snake_case code (`invalid_api_key`, `model_not_found`, `insufficient_quota`,
    /// `rate_limit_exceeded`, `invalid_parameter`, `idempotency_key_reused`, …).
    #[schema(example = "invalid_api_key")]
    pub code: String,
}

/// `POST /v1/images/generations`。其余字段为模型自身的参数(`negative_prompt` 等)。 / `POST /v1/images/generations`. Fields beyond these are the model's own parameters
/// (`negative_prompt`, …).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"model": "wan2.2-t2i-flash", "prompt": "一只猫", "n": 1, "response_format": "url"}))]
pub struct ImagesRequest {
    /// 图片模型 id / An image model id
    pub model: String,
    /// 提示词 / The prompt
    #[schema(min_length = 1, pattern = "\\S")]
    pub prompt: String,
    /// 图片数量(每张一个任务,不超过模型的 `max_images_per_request`) / Images (one task each), up to the model's `max_images_per_request`
    #[schema(nullable = false, minimum = 1)]
    pub n: Option<u32>,
    /// 尺寸:模型尺寸表中的 `宽x高`,或 `auto` / `WxH` from the model's table, or `auto`
    #[schema(nullable = false)]
    pub size: Option<String>,
    /// 返回形式:`url`(默认)或 `b64_json` / `url` (default) or `b64_json`
    #[schema(nullable = false, pattern = "^(url|b64_json)$")]
    pub response_format: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ImageData {
    /// 存档的 `/idfile` 链接(`response_format` 为 `url`) / An archived `/idfile` link
    /// (`response_format` `url`).
    #[schema(nullable = false)]
    pub url: Option<String>,
    /// 图片本身,base64(`response_format` 为 `b64_json`) / The image itself, base64
    /// (`response_format` `b64_json`).
    #[schema(nullable = false)]
    pub b64_json: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ImagesResponse {
    pub created: i64,
    pub data: Vec<ImageData>,
}

/// `POST /v1/videos`。其余字段为模型自身的参数。 / `POST /v1/videos`. Fields beyond these are the
/// model's own parameters.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"model": "viduq3-pro", "prompt": "海边日落", "seconds": "4", "size": "1280x720"}))]
pub struct VideoCreate {
    /// 视频模型 id / A video model id
    pub model: String,
    /// 提示词 / The prompt
    #[schema(min_length = 1, pattern = "\\S")]
    pub prompt: String,
    /// 时长(秒,对应模型的 `duration`) / Duration in seconds (→ the model's `duration`)
    #[schema(nullable = false)]
    pub seconds: Option<String>,
    /// 尺寸 `宽x高`(对应模型的 `size`,或 `resolution` + `ratio`) / `WxH` (→ the model's `size`, or `resolution` + `ratio`)
    #[schema(nullable = false)]
    pub size: Option<String>,
    /// 首帧:图片文件(multipart),或 `{"image_url": "https://…"}` / The first frame: an image file (multipart), or `{"image_url": "https://…"}`
    #[schema(nullable = false)]
    pub input_reference: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct VideoError {
    pub code: String,
    pub message: String,
}

/// 视频:本站的一个视频任务,OpenAI 形式 / A video: one of our video tasks, OpenAI-shaped.
#[derive(Serialize, ToSchema)]
pub struct Video {
    /// 任务 id(也可用 `GET /llmage/v1/tasks?taskid=` 查询) / The task id (also
    /// `GET /llmage/v1/tasks?taskid=`).
    pub id: String,
    #[schema(example = "video")]
    pub object: String,
    pub model: String,
    /// 状态:`queued`、`in_progress`、`completed`、`failed` / `queued`, `in_progress`, `completed`,
    /// `failed`.
    pub status: String,
    /// 进度:0 排队中,50 进行中,100 已完成 / 0 queued, 50 in progress, 100 completed.
    pub progress: i64,
    pub created_at: i64,
    pub completed_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub seconds: Option<String>,
    pub size: Option<String>,
    pub prompt: Option<String>,
    pub remixed_from_video_id: Option<String>,
    pub error: Option<VideoError>,
}

#[derive(Serialize, ToSchema)]
pub struct VideoList {
    pub object: String,
    pub data: Vec<Video>,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    pub has_more: bool,
}

#[derive(Serialize, ToSchema)]
pub struct VideoDeleted {
    pub id: String,
    #[schema(example = "video.deleted")]
    pub object: String,
    pub deleted: bool,
}

/// `POST /v1/embeddings`(`dimensions` 等其他 OpenAI 字段原样转发) / `POST /v1/embeddings`
/// (other OpenAI fields such as `dimensions` are passed on).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EmbeddingsRequest {
    /// 向量模型 id / An embedding model id
    pub model: String,
    /// 字符串、字符串数组或 token 数组的数组 / A string, an array of strings, or an array of token arrays
    pub input: Value,
    /// 编码:`float`(默认)或 `base64` / `float` (default) or `base64`
    #[schema(nullable = false)]
    pub encoding_format: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EmbeddingsResponse {
    pub object: String,
    pub data: Vec<Value>,
    pub model: String,
    pub usage: Value,
}

/// 调用记录中的一次调用 / One call of the call log.
#[derive(Serialize, ToSchema)]
pub struct CallRow {
    pub request_id: Option<String>,
    pub created_at: i64,
    /// 类型:chat、image 或 video / chat, image or video.
    pub kind: String,
    pub model: String,
    pub key_id: i64,
    pub key_name: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    /// 积分(最多 4 位小数) / Credits (a decimal with up to 4 places).
    pub credits: f64,
    pub latency_ms: Option<i64>,
    /// 状态:SUCCEEDED、FAILED、STOPPED(对话中客户端断开)或任务的状态 / SUCCEEDED, FAILED,
    /// STOPPED (chat, the client hung up), or a task's state.
    pub status: String,
    pub error: Option<String>,
    /// 图片或视频调用的任务 id / The task id of an image or video call.
    pub task_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CallPage {
    pub object: String,
    pub data: Vec<CallRow>,
    pub next_cursor: Option<String>,
}

/// 余额提醒阈值(积分,null 为关闭) / The low-balance notice threshold in credits (null = off).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LowBalance {
    /// 余额提醒阈值(积分),null 关闭 / The notice threshold in credits; null turns it off
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub threshold: Option<i64>,
    /// 跌破阈值时发送短信(每次跌破一条) / Also send one SMS each time the balance falls below it
    #[schema(nullable = false)]
    pub sms: Option<bool>,
}

/// `POST /llmage/v1/quote`:与对话、图片或视频请求的请求体完全相同(见 `ChatRequest` 与
/// `params.*` schema),文件字段可省略。此处只列出 `model` 与 `catelogid`,其余字段为模型自身的
/// 参数,按生成时的规则校验。 / `POST /llmage/v1/quote`: exactly the body of a chat, image or video request (see
/// `ChatRequest` and the `params.*` schemas), file fields optional. Only `model` and `catelogid`
/// are named here: the other fields are the model's own, checked as the generation would check
/// them.
#[derive(Serialize, ToSchema)]
pub struct QuoteRequest {
    /// 模型 id,见 `GET /llmage/v1/models` / A model id from `GET /llmage/v1/models`
    pub model: String,
    /// 分类(任务必填,如 `t2i`、`i2v`;文本模型可省略或填 `t2t`);其余字段与该模型该分类的生成请求相同,文件可省略 / Category (required for a task, e.g. `t2i`, `i2v`; for a chat model leave it out or give `t2t`); the other fields are those of the generation request, files may be left out
    #[schema(nullable = false)]
    pub catelogid: Option<String>,
}

/// 报价:该提交将收取的费用 / A quote: what the submission would be charged.
#[derive(Serialize, ToSchema)]
pub struct QuoteAnswer {
    /// 积分(对话最多 4 位小数) / Credits (a decimal with up to 4 places for chat).
    pub credits: f64,
    /// 同一金额,以元计(两位小数) / The same amount in yuan (two decimals).
    #[schema(example = "3.00")]
    pub yuan: String,
    /// 任务:任务将带的用量;对话:冻结额与每百万 token 的价格 / Tasks: the usage the task would
    /// carry; chat: the hold and the prices per million tokens.
    pub breakdown: Value,
}
