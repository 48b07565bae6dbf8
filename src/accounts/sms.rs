//! Sending login codes and the opt-in low-balance notice. `log` (development and demo mode)
//! writes `SMS <phone> <code>` (or `SMS-NOTICE <phone> <text>`) to the server log — the one place
//! a code is ever logged, on purpose. `aliyun` calls Aliyun SMS (dysmsapi `SendSms`, RPC
//! signature V1: HMAC-SHA1 over the sorted, RFC 3986-encoded query with the AccessKey secret +
//! `&`), with the code in `TemplateParam` as `{"code":"…"}` (the notice: its own template with
//! `{"balance":"…","threshold":"…"}`).

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;

use crate::config::AuthConfig;
use crate::util::clock::now_ms;
use crate::util::clock::utc_timestamp;

/// Why a code could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("短信发送失败,请稍后再试 / the SMS could not be sent ({0})")]
    Failed(String),
}

/// Aliyun SMS account settings.
#[derive(Debug, Clone)]
pub struct AliyunSms {
    pub endpoint: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    pub sign_name: String,
    pub template_code: String,
    /// The low-balance notice's template (none: no notice through Aliyun).
    pub low_balance_template: Option<String>,
    pub http: reqwest::Client,
}

/// Where codes go.
#[derive(Debug, Clone)]
pub enum SmsSender {
    Log,
    Aliyun(AliyunSms),
}

impl SmsSender {
    /// From the `[auth]` config.
    pub fn from_config(auth: &AuthConfig, http: reqwest::Client) -> SmsSender {
        match auth.sms_provider.as_str() {
            "aliyun" => SmsSender::Aliyun(AliyunSms {
                endpoint: auth.aliyun_endpoint.clone(),
                access_key_id: auth.aliyun_access_key_id.clone().unwrap_or_default(),
                access_key_secret: auth.aliyun_access_key_secret.clone().unwrap_or_default(),
                sign_name: auth.aliyun_sign_name.clone().unwrap_or_default(),
                template_code: auth.aliyun_template_code.clone().unwrap_or_default(),
                low_balance_template: auth.aliyun_low_balance_template.clone(),
                http,
            }),
            _ => SmsSender::Log,
        }
    }

    pub async fn send_code(&self, phone: &str, code: &str) -> Result<(), SmsError> {
        match self {
            SmsSender::Log => {
                tracing::info!(target: "llmage::sms", "SMS {phone} {code}");
                Ok(())
            }
            SmsSender::Aliyun(aliyun) => {
                let param = serde_json::json!({ "code": code }).to_string();
                aliyun.send(phone, &aliyun.template_code, &param).await
            }
        }
    }

    /// The low-balance notice: the balance and the threshold (credits), nothing else.
    pub async fn send_low_balance(
        &self,
        phone: &str,
        balance: &str,
        threshold: i64,
    ) -> Result<(), SmsError> {
        match self {
            SmsSender::Log => {
                tracing::info!(
                    target: "llmage::sms",
                    "SMS-NOTICE {phone} 【元境平台】您的余额 {balance} 积分已低于提醒阈值 {threshold} 积分,请及时充值。/ Your balance of {balance} credits is below your alert threshold of {threshold} credits."
                );
                Ok(())
            }
            SmsSender::Aliyun(aliyun) => {
                let Some(template) = &aliyun.low_balance_template else {
                    return Err(SmsError::Failed(
                        "auth.aliyun_low_balance_template is not set".into(),
                    ));
                };
                let param =
                    serde_json::json!({ "balance": balance, "threshold": threshold.to_string() })
                        .to_string();
                aliyun.send(phone, template, &param).await
            }
        }
    }
}

/// RFC 3986 percent-encoding as Aliyun's signature wants it.
pub fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The V1 signature of a parameter set for `method`.
pub fn sign(method: &str, params: &[(String, String)], secret: &str) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let canonical = sorted
        .iter()
        .map(|(k, v)| format!("{}={}", percent(k), percent(v)))
        .collect::<Vec<_>>()
        .join("&");
    let to_sign = format!("{method}&{}&{}", percent("/"), percent(&canonical));
    let mut mac = match <Hmac<sha1::Sha1> as Mac>::new_from_slice(format!("{secret}&").as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl AliyunSms {
    async fn send(&self, phone: &str, template: &str, param: &str) -> Result<(), SmsError> {
        let mut params: Vec<(String, String)> = [
            ("Action", "SendSms"),
            ("Version", "2017-05-25"),
            ("Format", "JSON"),
            ("RegionId", "cn-hangzhou"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        params.push(("AccessKeyId".into(), self.access_key_id.clone()));
        params.push(("SignatureNonce".into(), crate::util::ids::random_id()));
        params.push(("Timestamp".into(), utc_timestamp(now_ms())));
        params.push(("PhoneNumbers".into(), phone.to_owned()));
        params.push(("SignName".into(), self.sign_name.clone()));
        params.push(("TemplateCode".into(), template.to_owned()));
        params.push(("TemplateParam".into(), param.to_owned()));
        let signature = sign("GET", &params, &self.access_key_secret);
        let query = params
            .iter()
            .map(|(k, v)| format!("{}={}", percent(k), percent(v)))
            .chain(std::iter::once(format!(
                "Signature={}",
                percent(&signature)
            )))
            .collect::<Vec<_>>()
            .join("&");
        let url = format!("{}/?{query}", self.endpoint.trim_end_matches('/'));
        let response = self
            .http
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| {
                SmsError::Failed(if e.is_timeout() {
                    "timeout".into()
                } else {
                    "connection failed".into()
                })
            })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let result = body.get("Code").and_then(Value::as_str).unwrap_or("");
        if status.is_success() && result == "OK" {
            Ok(())
        } else {
            tracing::warn!(
                status = status.as_u16(),
                code = result,
                "Aliyun SMS refused a message"
            );
            Err(SmsError::Failed(if result.is_empty() {
                format!("HTTP {}", status.as_u16())
            } else {
                result.to_owned()
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_encoding_follows_rfc3986() {
        assert_eq!(super::percent("a b*~/"), "a%20b%2A~%2F");
        assert_eq!(super::percent("验证"), "%E9%AA%8C%E8%AF%81");
    }
}
