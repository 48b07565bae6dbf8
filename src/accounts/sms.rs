//! Sending login codes. `log` (development and demo mode) writes `SMS <phone> <code>` to the
//! server log — the one place a code is ever logged, on purpose. (An Aliyun SMS sender is still
//! to come; until then `sms.provider` accepts `log` only.)

/// Where codes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsSender {
    Log,
}

impl SmsSender {
    pub fn send_code(&self, phone: &str, code: &str) {
        match self {
            SmsSender::Log => tracing::info!(target: "llmage::sms", "SMS {phone} {code}"),
        }
    }
}
