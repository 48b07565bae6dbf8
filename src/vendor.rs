//! The one vendor identity: [`Vendor`] names the protocol a channel speaks, the vendor of a
//! catalog model and the vendor a task was sent to (stored as [`Vendor::as_str`] and parsed back
//! at the edge: an unknown name is an error, never a default). [`Vendor::ALL`] lists them;
//! `providers::registry` builds the media and chat adapters from it, and the CLI help and the
//! console's vendor list are made from [`Vendor::info`]. A leaf module: it uses no other module,
//! so channels, the catalog and tasks can all name it. See `docs/adding-a-vendor.md`.

use std::fmt;

/// Vendor protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vendor {
    /// Any OpenAI-compatible server (vLLM, Ollama, DashScope compatible-mode, …).
    OpenAi,
    /// Alibaba Model Studio: chat through its compatible-mode endpoint, Wan and HappyHorse
    /// images/videos through its native async API.
    DashScope,
    /// Volcengine Ark (Doubao Seedance).
    Ark,
    /// BytePlus ModelArk (Dreamina Seedance), Ark's protocol outside China.
    ModelArk,
    /// Vidu.
    Vidu,
    /// Zhipu BigModel (CogView).
    Zhipu,
    /// The offline sandbox (demo mode and tests): serves models without a channel; never a
    /// channel's vendor.
    Sandbox,
}

/// What people read about a vendor: `admin channel add --help` and the console's channel form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorInfo {
    /// Its name in the console's vendor list.
    pub label: &'static str,
    /// One line: who it is and what it serves.
    pub summary: &'static str,
    /// An example base URL (what the vendor's console gives).
    pub base_url: &'static str,
    /// Said after the base URL in the CLI help (another region's URL, a hint); may be empty.
    pub base_url_note: &'static str,
}

impl Vendor {
    /// Every vendor, channel vendors in the order the CLI and console list them, then the sandbox.
    pub const ALL: [Vendor; 7] = [
        Vendor::OpenAi,
        Vendor::DashScope,
        Vendor::Ark,
        Vendor::ModelArk,
        Vendor::Vidu,
        Vendor::Zhipu,
        Vendor::Sandbox,
    ];

    /// The stored name (channel and task rows, `models.toml`, the API's `vendor` fields).
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::OpenAi => "openai",
            Vendor::DashScope => "dashscope",
            Vendor::Ark => "ark",
            Vendor::ModelArk => "modelark",
            Vendor::Vidu => "vidu",
            Vendor::Zhipu => "zhipu",
            Vendor::Sandbox => "sandbox",
        }
    }

    /// Any vendor by its stored name.
    pub fn parse(s: &str) -> Option<Vendor> {
        Vendor::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// A vendor a channel may speak, by its stored name (not the sandbox).
    pub fn parse_channel(s: &str) -> Option<Vendor> {
        Vendor::parse(s).filter(|v| v.is_channel_vendor())
    }

    /// Whether a channel can be of this vendor (all but the sandbox).
    pub fn is_channel_vendor(self) -> bool {
        self != Vendor::Sandbox
    }

    /// The vendors a channel may speak, in list order.
    pub fn channel_vendors() -> impl Iterator<Item = Vendor> {
        Vendor::ALL.into_iter().filter(|v| v.is_channel_vendor())
    }

    /// Names accepted by `--vendor` (`openai, dashscope, …`).
    pub fn channel_names() -> String {
        Vendor::channel_vendors()
            .map(Vendor::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether the relay can send chat completions to this vendor.
    pub fn serves_chat(self) -> bool {
        matches!(self, Vendor::OpenAi | Vendor::DashScope)
    }

    /// What people read about the vendor.
    pub fn info(self) -> VendorInfo {
        let (label, summary, base_url, base_url_note) = match self {
            Vendor::OpenAi => (
                "OpenAI-compatible",
                "any OpenAI-compatible server (OpenAI, DeepSeek, vLLM, Ollama, …): chat",
                "https://api.openai.com/v1",
                "(the URL the server's /chat/completions hangs under)",
            ),
            Vendor::DashScope => (
                "DashScope 阿里云百炼",
                "Alibaba Model Studio 阿里云百炼: chat (qwen3-max) and Wan/HappyHorse images/videos",
                "https://dashscope.aliyuncs.com",
                "(intl: https://dashscope-intl.aliyuncs.com)",
            ),
            Vendor::Ark => (
                "Volcengine Ark 火山方舟",
                "Volcengine Ark 火山方舟: Doubao Seedance videos",
                "https://ark.cn-beijing.volces.com/api/v3",
                "",
            ),
            Vendor::ModelArk => (
                "BytePlus ModelArk",
                "BytePlus ModelArk: Dreamina Seedance videos (outside China)",
                "https://ark.ap-southeast.bytepluses.com/api/v3",
                "",
            ),
            Vendor::Vidu => (
                "Vidu",
                "Vidu: videos",
                "https://api.vidu.cn",
                "(intl: https://api.vidu.com)",
            ),
            Vendor::Zhipu => (
                "Zhipu 智谱",
                "Zhipu BigModel 智谱: CogView images — the base URL must end in /api/paas/v4",
                "https://open.bigmodel.cn/api/paas/v4",
                "",
            ),
            Vendor::Sandbox => (
                "Sandbox 沙盒",
                "the offline sandbox (demo mode): every catalog model, no account",
                "",
                "",
            ),
        };
        VendorInfo {
            label,
            summary,
            base_url,
            base_url_note,
        }
    }

    /// The channel vendors as `admin channel add --help` lists them: name and summary, then the
    /// base URL (and its note) on the next line.
    pub fn channel_help() -> String {
        let mut text = String::new();
        for vendor in Vendor::channel_vendors() {
            let info = vendor.info();
            text.push_str(&format!("  {:<10} {}\n", vendor.as_str(), info.summary));
            text.push_str(&format!("             {}", info.base_url));
            if !info.base_url_note.is_empty() {
                text.push_str("   ");
                text.push_str(info.base_url_note);
            }
            text.push('\n');
        }
        text
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Vendor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Vendor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Vendor, D::Error> {
        let name = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        Vendor::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown vendor `{name}` (known: {})",
                Vendor::ALL.map(Vendor::as_str).join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_sandbox_is_no_channel_vendor() {
        for vendor in Vendor::ALL {
            assert_eq!(Vendor::parse(vendor.as_str()), Some(vendor));
            assert_eq!(vendor.to_string(), vendor.as_str());
        }
        assert_eq!(Vendor::parse("nope"), None);
        assert_eq!(Vendor::parse_channel("sandbox"), None);
        assert_eq!(Vendor::parse_channel("vidu"), Some(Vendor::Vidu));
        assert_eq!(
            Vendor::channel_names(),
            "openai, dashscope, ark, modelark, vidu, zhipu"
        );
        let v: Vendor = serde_json::from_str("\"modelark\"").unwrap();
        assert_eq!(v, Vendor::ModelArk);
        assert!(serde_json::from_str::<Vendor>("\"acme\"").is_err());
        assert_eq!(serde_json::to_string(&Vendor::Zhipu).unwrap(), "\"zhipu\"");
    }

    #[test]
    fn channel_help_lists_each_vendor_with_its_base_url() {
        let help = Vendor::channel_help();
        assert!(help.starts_with(
            "  openai     any OpenAI-compatible server (OpenAI, DeepSeek, vLLM, Ollama, …): chat\n             https://api.openai.com/v1   (the URL the server's /chat/completions hangs under)\n"
        ));
        assert!(help.contains("  modelark   BytePlus ModelArk: Dreamina Seedance videos (outside China)\n             https://ark.ap-southeast.bytepluses.com/api/v3\n"));
        assert!(!help.contains("sandbox"));
    }
}
