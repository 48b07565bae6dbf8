//! The Alipay Open Platform protocol (RSA2), as `../shared/upstreams.md` §5 describes it:
//! signing request parameters with our app private key, the page-pay URL (built locally, no
//! call), `alipay.trade.precreate` (QR code content) and `alipay.trade.query` over the gateway
//! with the response signature checked on the raw JSON text, and verification of the
//! asynchronous notifications with Alipay's public key.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::config::AlipayConfig;

/// Why an Alipay operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AlipayError {
    #[error("alipay key {path}: {problem}")]
    Key { path: String, problem: String },
    #[error("alipay.notify_url is needed (or public_base_url to derive it)")]
    NoNotifyUrl,
    #[error("alipay gateway unreachable: {0}")]
    Transport(String),
    #[error("alipay answer not understood: {0}")]
    Malformed(String),
    #[error("alipay signature does not verify")]
    BadSignature,
    /// A notification for another app or seller.
    #[error("alipay notification for another {0}")]
    NotOurs(&'static str),
    /// The gateway answered a business error (`code` other than 10000).
    #[error("alipay {code} {sub_code}: {message}")]
    Business {
        code: String,
        sub_code: String,
        message: String,
    },
}

/// One order as Alipay sees it.
pub struct TradeRequest<'a> {
    pub out_trade_no: &'a str,
    /// Yuan with two decimals ("10.00").
    pub total_amount: &'a str,
    pub subject: &'a str,
}

/// What `alipay.trade.query` said about a trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradeState {
    /// Not created at Alipay yet (nobody opened the page / scanned the code).
    NotExist,
    WaitBuyerPay,
    /// `TRADE_SUCCESS` or `TRADE_FINISHED`.
    Paid {
        trade_no: String,
        total_amount: String,
    },
    /// `TRADE_CLOSED`: unpaid timeout or full refund.
    Closed,
}

/// A verified asynchronous notification.
#[derive(Debug, Clone)]
pub struct Notification {
    pub out_trade_no: String,
    pub trade_no: String,
    pub trade_status: String,
    pub total_amount: String,
}

/// A configured Alipay merchant application.
pub struct Alipay {
    app_id: String,
    signer: SigningKey<Sha256>,
    verifier: VerifyingKey<Sha256>,
    gateway_url: String,
    notify_url: String,
    return_url: Option<String>,
    seller_id: Option<String>,
    timeout_express: String,
    request_timeout: Duration,
    http: reqwest::Client,
}

impl std::fmt::Debug for Alipay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alipay")
            .field("app_id", &self.app_id)
            .field("gateway_url", &self.gateway_url)
            .finish_non_exhaustive()
    }
}

impl Alipay {
    /// The configured application, or `None` when `[alipay] app_id` is not set.
    pub fn from_config(
        config: &AlipayConfig,
        public_base_url: Option<&str>,
        http: reqwest::Client,
    ) -> Result<Option<Alipay>, AlipayError> {
        let Some(app_id) = config.app_id.clone().filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        let missing = |name: &str| AlipayError::Key {
            path: format!("alipay.{name}"),
            problem: "not configured".into(),
        };
        let private = config
            .app_private_key_file
            .as_deref()
            .ok_or_else(|| missing("app_private_key_file"))
            .and_then(load_private_key)?;
        let public = config
            .alipay_public_key_file
            .as_deref()
            .ok_or_else(|| missing("alipay_public_key_file"))
            .and_then(load_public_key)?;
        let notify_url = match (&config.notify_url, public_base_url) {
            (Some(url), _) => url.clone(),
            (None, Some(base)) => {
                format!("{}/api/payments/alipay/notify", base.trim_end_matches('/'))
            }
            (None, None) => return Err(AlipayError::NoNotifyUrl),
        };
        Ok(Some(Alipay {
            app_id,
            signer: SigningKey::new(private),
            verifier: VerifyingKey::new(public),
            gateway_url: config.gateway_url.clone(),
            notify_url,
            return_url: config.return_url.clone(),
            seller_id: config.seller_id.clone().filter(|s| !s.is_empty()),
            timeout_express: format!("{}m", config.order_timeout_mins),
            request_timeout: Duration::from_secs(config.request_timeout_secs),
            http,
        }))
    }

    /// The public parameters of a call, signed.
    fn signed_params(&self, method: &str, biz_content: &Value) -> BTreeMap<&'static str, String> {
        let mut params: BTreeMap<&'static str, String> = BTreeMap::new();
        params.insert("app_id", self.app_id.clone());
        params.insert("method", method.to_owned());
        params.insert("format", "JSON".into());
        params.insert("charset", "utf-8".into());
        params.insert("sign_type", "RSA2".into());
        params.insert("timestamp", china_time_now());
        params.insert("version", "1.0".into());
        params.insert("notify_url", self.notify_url.clone());
        if (method == "alipay.trade.page.pay" || method == "alipay.trade.wap.pay")
            && let Some(url) = &self.return_url
        {
            params.insert("return_url", url.clone());
        }
        params.insert("biz_content", biz_content.to_string());
        let content = sign_content(params.iter().map(|(k, v)| (*k, v.as_str())));
        let signature = self.signer.sign(content.as_bytes());
        params.insert("sign", base64_encode(&signature.to_bytes()));
        params
    }

    /// The phone-browser pay URL (`alipay.trade.wap.pay`, product `QUICK_WAP_WAY`), built and
    /// signed exactly like the page-pay URL; it opens the Alipay app or its mobile cashier.
    pub fn wap_pay_url(&self, trade: &TradeRequest<'_>) -> String {
        let biz = json!({
            "out_trade_no": trade.out_trade_no,
            "total_amount": trade.total_amount,
            "subject": trade.subject,
            "product_code": "QUICK_WAP_WAY",
            "timeout_express": self.timeout_express,
        });
        self.gateway_link(&self.signed_params("alipay.trade.wap.pay", &biz))
    }

    fn gateway_link(&self, params: &BTreeMap<&'static str, String>) -> String {
        let query = serde_urlencoded::to_string(params).unwrap_or_default();
        let sep = if self.gateway_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}{query}", self.gateway_url)
    }

    /// The desktop page-pay URL for the buyer's browser (`alipay.trade.page.pay`, a GET to the
    /// gateway with the signed parameters; no call is made here).
    pub fn page_pay_url(&self, trade: &TradeRequest<'_>) -> String {
        let biz = json!({
            "out_trade_no": trade.out_trade_no,
            "total_amount": trade.total_amount,
            "subject": trade.subject,
            "product_code": "FAST_INSTANT_TRADE_PAY",
            "timeout_express": self.timeout_express,
        });
        self.gateway_link(&self.signed_params("alipay.trade.page.pay", &biz))
    }

    /// `alipay.trade.precreate`: the QR code content for scanning with the Alipay app.
    pub async fn precreate(&self, trade: &TradeRequest<'_>) -> Result<String, AlipayError> {
        let biz = json!({
            "out_trade_no": trade.out_trade_no,
            "total_amount": trade.total_amount,
            "subject": trade.subject,
            "product_code": "FACE_TO_FACE_PAYMENT",
            "timeout_express": self.timeout_express,
        });
        let node = self.call("alipay.trade.precreate", &biz).await?;
        node.get("qr_code")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| AlipayError::Malformed("precreate answer without qr_code".into()))
    }

    /// `alipay.trade.query` by our order id.
    pub async fn query(&self, out_trade_no: &str) -> Result<TradeState, AlipayError> {
        let node = match self
            .call(
                "alipay.trade.query",
                &json!({ "out_trade_no": out_trade_no }),
            )
            .await
        {
            Ok(node) => node,
            Err(AlipayError::Business { sub_code, .. }) if sub_code == "ACQ.TRADE_NOT_EXIST" => {
                return Ok(TradeState::NotExist);
            }
            Err(e) => return Err(e),
        };
        let text = |k: &str| node.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        if text("out_trade_no") != out_trade_no {
            return Err(AlipayError::Malformed(
                "query answer for another order".into(),
            ));
        }
        Ok(match text("trade_status").as_str() {
            "WAIT_BUYER_PAY" => TradeState::WaitBuyerPay,
            "TRADE_SUCCESS" | "TRADE_FINISHED" => TradeState::Paid {
                trade_no: text("trade_no"),
                total_amount: text("total_amount"),
            },
            "TRADE_CLOSED" => TradeState::Closed,
            other => {
                return Err(AlipayError::Malformed(format!(
                    "unknown trade_status {other:?}"
                )));
            }
        })
    }

    /// One gateway call; the verified `*_response` node when its `code` is 10000.
    async fn call(&self, method: &str, biz: &Value) -> Result<Value, AlipayError> {
        let params = self.signed_params(method, biz);
        let response = self
            .http
            .post(&self.gateway_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=utf-8",
            )
            .body(serde_urlencoded::to_string(&params).unwrap_or_default())
            .timeout(self.request_timeout)
            .send()
            .await
            .map_err(|e| AlipayError::Transport(without_url(&e)))?;
        if !response.status().is_success() {
            return Err(AlipayError::Transport(format!(
                "HTTP {}",
                response.status().as_u16()
            )));
        }
        let body = response
            .text()
            .await
            .map_err(|e| AlipayError::Transport(without_url(&e)))?;
        self.verify_response(method, &body)
    }

    /// Check the `sign` of a gateway answer over the exact text of its `*_response` node, then
    /// its `code`. An answer without a valid signature is [`AlipayError::BadSignature`], whatever
    /// it says.
    fn verify_response(&self, method: &str, body: &str) -> Result<Value, AlipayError> {
        let envelope: std::collections::HashMap<String, Box<RawValue>> =
            serde_json::from_str(body).map_err(|e| AlipayError::Malformed(e.to_string()))?;
        let node_name = format!("{}_response", method.replace('.', "_"));
        let raw = envelope
            .get(&node_name)
            .or_else(|| envelope.get("error_response"))
            .ok_or_else(|| AlipayError::Malformed(format!("no {node_name}")))?;
        let node: Value =
            serde_json::from_str(raw.get()).map_err(|e| AlipayError::Malformed(e.to_string()))?;
        let sign = envelope
            .get("sign")
            .and_then(|s| serde_json::from_str::<String>(s.get()).ok());
        // Every answer, success or business error, must carry Alipay's signature: an unsigned
        // or forged `ACQ.TRADE_NOT_EXIST` must not close an order (Alipay's own SDKs check the
        // signature of error answers too). An unverifiable answer is ignored by the caller.
        if !sign.is_some_and(|s| self.verify(raw.get(), &s)) {
            return Err(AlipayError::BadSignature);
        }
        let code = node.get("code").and_then(Value::as_str).unwrap_or("");
        if code != "10000" {
            // A business error changes nothing on our side; it is reported as said.
            let text = |k: &str| node.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            return Err(AlipayError::Business {
                code: code.to_owned(),
                sub_code: text("sub_code"),
                message: format!("{} {}", text("msg"), text("sub_msg"))
                    .trim()
                    .to_owned(),
            });
        }
        Ok(node)
    }

    fn verify(&self, content: &str, sign_b64: &str) -> bool {
        let Ok(bytes) = base64_decode(sign_b64) else {
            return false;
        };
        let Ok(signature) = Signature::try_from(bytes.as_slice()) else {
            return false;
        };
        self.verifier.verify(content.as_bytes(), &signature).is_ok()
    }

    /// Verify an asynchronous notification (the decoded form fields): RSA2 over every field but
    /// `sign` and `sign_type`, sorted, then `app_id` and (when configured) `seller_id`.
    pub fn verify_notification(
        &self,
        fields: &[(String, String)],
    ) -> Result<Notification, AlipayError> {
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let sign = get("sign").ok_or(AlipayError::BadSignature)?;
        let mut rest: Vec<(&str, &str)> = fields
            .iter()
            .filter(|(k, v)| k != "sign" && k != "sign_type" && !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        rest.sort();
        // Two fields with one name cannot be told apart by the signature: refuse.
        if rest.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(AlipayError::BadSignature);
        }
        if !self.verify(&sign_content(rest.into_iter()), sign) {
            return Err(AlipayError::BadSignature);
        }
        if get("app_id") != Some(self.app_id.as_str()) {
            return Err(AlipayError::NotOurs("app_id"));
        }
        if let Some(seller) = &self.seller_id
            && get("seller_id") != Some(seller.as_str())
        {
            return Err(AlipayError::NotOurs("seller_id"));
        }
        let field = |name: &'static str| {
            get(name)
                .map(str::to_owned)
                .ok_or_else(|| AlipayError::Malformed(format!("notification without {name}")))
        };
        Ok(Notification {
            out_trade_no: field("out_trade_no")?,
            trade_no: field("trade_no")?,
            trade_status: field("trade_status")?,
            total_amount: field("total_amount")?,
        })
    }
}

/// `k=v&k=v` over sorted pairs with empty values left out (the string both sides sign).
pub fn sign_content<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = pairs.filter(|(_, v)| !v.is_empty()).collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Alipay's `timestamp`: China time, `yyyy-MM-dd HH:mm:ss`.
fn china_time_now() -> String {
    (chrono::Utc::now() + chrono::TimeDelta::hours(8))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// reqwest errors carry the URL; ours has no secret in it but keep messages short anyway.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    kind.to_owned()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine;
    let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean)
}

fn read_key(path: &Path) -> Result<String, AlipayError> {
    std::fs::read_to_string(path).map_err(|e| AlipayError::Key {
        path: path.display().to_string(),
        problem: e.to_string(),
    })
}

/// Our app private key: PKCS#8 or PKCS#1, PEM or bare base64 DER.
pub fn load_private_key(path: &Path) -> Result<RsaPrivateKey, AlipayError> {
    let text = read_key(path)?;
    parse_private_key(&text).ok_or_else(|| AlipayError::Key {
        path: path.display().to_string(),
        problem: "not an RSA private key (PKCS#8 or PKCS#1, PEM or base64)".into(),
    })
}

/// Alipay's public key: SubjectPublicKeyInfo or PKCS#1, PEM or bare base64 DER.
pub fn load_public_key(path: &Path) -> Result<RsaPublicKey, AlipayError> {
    let text = read_key(path)?;
    parse_public_key(&text).ok_or_else(|| AlipayError::Key {
        path: path.display().to_string(),
        problem: "not an RSA public key (X.509 SPKI or PKCS#1, PEM or base64)".into(),
    })
}

fn parse_private_key(text: &str) -> Option<RsaPrivateKey> {
    let text = text.trim();
    if text.contains("-----BEGIN") {
        RsaPrivateKey::from_pkcs8_pem(text)
            .ok()
            .or_else(|| RsaPrivateKey::from_pkcs1_pem(text).ok())
    } else {
        let der = base64_decode(text).ok()?;
        RsaPrivateKey::from_pkcs8_der(&der)
            .ok()
            .or_else(|| RsaPrivateKey::from_pkcs1_der(&der).ok())
    }
}

fn parse_public_key(text: &str) -> Option<RsaPublicKey> {
    let text = text.trim();
    if text.contains("-----BEGIN") {
        RsaPublicKey::from_public_key_pem(text)
            .ok()
            .or_else(|| RsaPublicKey::from_pkcs1_pem(text).ok())
    } else {
        let der = base64_decode(text).ok()?;
        RsaPublicKey::from_public_key_der(&der)
            .ok()
            .or_else(|| RsaPublicKey::from_pkcs1_der(&der).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

    fn alipay_with(app: &RsaPrivateKey, alipay_public: &RsaPublicKey) -> Alipay {
        Alipay {
            app_id: "2021000000000001".into(),
            signer: SigningKey::new(app.clone()),
            verifier: VerifyingKey::new(alipay_public.clone()),
            gateway_url: "http://127.0.0.1:9/gateway.do".into(),
            notify_url: "http://example.com/notify".into(),
            return_url: Some("http://example.com/recharge".into()),
            seller_id: Some("2088000000000001".into()),
            timeout_express: "30m".into(),
            request_timeout: Duration::from_secs(5),
            http: reqwest::Client::new(),
        }
    }

    fn key() -> RsaPrivateKey {
        let mut rng = rsa::rand_core::OsRng;
        RsaPrivateKey::new(&mut rng, 2048).expect("keygen")
    }

    #[test]
    fn keys_load_as_pem_or_bare_base64() {
        let private = key();
        let pem = private.to_pkcs8_pem(LineEnding::LF).expect("pem");
        assert!(parse_private_key(&pem).is_some());
        let der = private.to_pkcs8_der().expect("der");
        assert!(parse_private_key(&base64_encode(der.as_bytes())).is_some());
        let public = private.to_public_key();
        let pem = public.to_public_key_pem(LineEnding::LF).expect("pem");
        assert!(parse_public_key(&pem).is_some());
        let der = public.to_public_key_der().expect("der");
        assert!(parse_public_key(&base64_encode(der.as_bytes())).is_some());
        assert!(parse_public_key("not a key").is_none());
    }

    #[test]
    fn page_pay_url_carries_a_signature_alipay_can_check() {
        let app = key();
        let alipay_key = key();
        let client = alipay_with(&app, &alipay_key.to_public_key());
        let url = client.page_pay_url(&TradeRequest {
            out_trade_no: "o1",
            total_amount: "10.00",
            subject: "充值",
        });
        let query = url.split_once('?').expect("query").1;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).expect("form");
        let sign = pairs
            .iter()
            .find(|(k, _)| k == "sign")
            .expect("sign")
            .1
            .clone();
        // Request signatures include sign_type (only notifications leave it out).
        let content = sign_content(
            pairs
                .iter()
                .filter(|(k, _)| k != "sign")
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let verifier = VerifyingKey::<Sha256>::new(app.to_public_key());
        let signature =
            Signature::try_from(base64_decode(&sign).expect("b64").as_slice()).expect("signature");
        verifier
            .verify(content.as_bytes(), &signature)
            .expect("verifies with the app public key");
        assert!(content.contains("\"product_code\":\"FAST_INSTANT_TRADE_PAY\""));
        assert!(content.contains("return_url=http://example.com/recharge"));
    }

    #[test]
    fn notifications_verify_only_when_signed_by_alipay_for_us() {
        let app = key();
        let alipay_key = key();
        let client = alipay_with(&app, &alipay_key.to_public_key());
        let fields = |app_id: &str, amount: &str| -> Vec<(String, String)> {
            [
                ("notify_type", "trade_status_sync"),
                ("app_id", app_id),
                ("seller_id", "2088000000000001"),
                ("out_trade_no", "o1"),
                ("trade_no", "2026112522001"),
                ("trade_status", "TRADE_SUCCESS"),
                ("total_amount", amount),
                ("subject", "充值 10.00 元"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
        };
        let signed = |key: &RsaPrivateKey, mut f: Vec<(String, String)>| {
            let content = sign_content(f.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let sig = SigningKey::<Sha256>::new(key.clone()).sign(content.as_bytes());
            f.push(("sign_type".into(), "RSA2".into()));
            f.push(("sign".into(), base64_encode(&sig.to_bytes())));
            f
        };
        let good = signed(&alipay_key, fields("2021000000000001", "10.00"));
        let n = client.verify_notification(&good).expect("genuine");
        assert_eq!(n.out_trade_no, "o1");
        assert_eq!(n.total_amount, "10.00");
        // Signed by someone else (our own key, say).
        let forged = signed(&app, fields("2021000000000001", "10.00"));
        assert!(matches!(
            client.verify_notification(&forged),
            Err(AlipayError::BadSignature)
        ));
        // A field changed after signing.
        let mut tampered = good.clone();
        for (k, v) in &mut tampered {
            if k == "total_amount" {
                *v = "1000.00".into();
            }
        }
        assert!(client.verify_notification(&tampered).is_err());
        // A genuine notification of another app.
        let other = signed(&alipay_key, fields("2021999999999999", "10.00"));
        assert!(matches!(
            client.verify_notification(&other),
            Err(AlipayError::NotOurs("app_id"))
        ));
    }

    #[test]
    fn responses_are_verified_on_the_raw_node_text() {
        let app = key();
        let alipay_key = key();
        let client = alipay_with(&app, &alipay_key.to_public_key());
        // Spacing and key order as Alipay sent them: re-serialising would break the signature.
        let node = r#"{"code":"10000","msg":"Success", "out_trade_no":"o1","qr_code":"https://qr.alipay.com/x"}"#;
        let sig = SigningKey::<Sha256>::new(alipay_key.clone()).sign(node.as_bytes());
        let body = format!(
            r#"{{"alipay_trade_precreate_response":{node},"sign":"{}"}}"#,
            base64_encode(&sig.to_bytes())
        );
        let v = client
            .verify_response("alipay.trade.precreate", &body)
            .expect("verified");
        assert_eq!(v["qr_code"], "https://qr.alipay.com/x");
        let forged = body.replace("qr.alipay.com/x", "evil.example/x");
        assert!(matches!(
            client.verify_response("alipay.trade.precreate", &forged),
            Err(AlipayError::BadSignature)
        ));
    }

    #[test]
    fn business_errors_are_believed_only_when_signed_by_alipay() {
        let app = key();
        let alipay_key = key();
        let client = alipay_with(&app, &alipay_key.to_public_key());
        let node = r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}"#;
        // Unsigned (a forgery on the path, or a proxy's answer): not believed.
        let unsigned = format!(r#"{{"alipay_trade_query_response":{node}}}"#);
        assert!(matches!(
            client.verify_response("alipay.trade.query", &unsigned),
            Err(AlipayError::BadSignature)
        ));
        // Signed by another key: not believed either.
        let sign = |key: &RsaPrivateKey| {
            base64_encode(
                &SigningKey::<Sha256>::new(key.clone())
                    .sign(node.as_bytes())
                    .to_bytes(),
            )
        };
        let forged = format!(
            r#"{{"alipay_trade_query_response":{node},"sign":"{}"}}"#,
            sign(&app)
        );
        assert!(matches!(
            client.verify_response("alipay.trade.query", &forged),
            Err(AlipayError::BadSignature)
        ));
        // Also not as an `error_response`.
        let error_response = format!(r#"{{"error_response":{node}}}"#);
        assert!(matches!(
            client.verify_response("alipay.trade.query", &error_response),
            Err(AlipayError::BadSignature)
        ));
        let genuine = format!(
            r#"{{"alipay_trade_query_response":{node},"sign":"{}"}}"#,
            sign(&alipay_key)
        );
        assert!(matches!(
            client.verify_response("alipay.trade.query", &genuine),
            Err(AlipayError::Business { sub_code, .. }) if sub_code == "ACQ.TRADE_NOT_EXIST"
        ));
    }
}
