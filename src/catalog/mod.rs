//! The model catalog ("模型广场"): every model we sell, its categories, vendor, price and the
//! parameter table of each category, loaded from `models.toml` (compiled in) or a file.
//!
//! The catalog is immutable once loaded; models that an admin adds through an `openai` channel
//! (a user's own vLLM model) are merged in by [`Catalog::with_extra_chat_models`].

pub mod validate;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::vendor::Vendor;

/// The compiled-in catalog data.
const BUILTIN_CATALOG: &str = include_str!("models.toml");

/// The categories of the seed document.
pub const CATEGORIES: [&str; 5] = ["t2t", "t2i", "t2v", "i2v", "ref2v"];

/// Why a catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read catalog file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("catalog is not valid TOML: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("catalog model `{model}`: {problem}")]
    Invalid {
        model: String,
        problem: ModelProblem,
    },
}

/// What is wrong with one model of a catalog.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelProblem {
    #[error("an embedding model serves no category and is priced in tokens")]
    Embedding,
    #[error("serves no category")]
    NoCategory,
    #[error("unknown category `{0}`")]
    UnknownCategory(String),
    #[error("category `{0}` does not fit its price unit")]
    PriceUnit(String),
    #[error("param `{0}`: file params (and only they) need `accept`")]
    FileAccept(String),
    #[error("`model` and `catelogid` are implicit; do not list them")]
    ImplicitParam,
    #[error("an image model is never listed under video categories")]
    ImageUnderVideo,
    #[error("listed twice")]
    ListedTwice,
}

/// The whole catalog, indexed by model id.
#[derive(Debug, Clone)]
pub struct Catalog {
    models: Vec<Arc<Model>>,
    by_id: HashMap<String, Arc<Model>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    models: Vec<Model>,
}

/// One model as sold to users.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub id: String,
    /// The vendor whose channels serve it (its stored name in `models.toml`).
    pub vendor: Vendor,
    /// Vendor name as the seed document shows it (阿里百炼, 豆包, …).
    pub vendor_label: String,
    /// 中文 description; `description_en` is its English (the API reference shows both).
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_en: Option<String>,
    /// Largest completion a chat model produces; bounds the worst-case reservation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Most images one OpenAI `POST /v1/images/generations` may ask for (`n`, one task each);
    /// absent: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_images_per_request: Option<u32>,
    /// An embedding model (`POST /v1/embeddings`, priced per input token); it serves no category.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub embedding: bool,
    pub price: Price,
    pub categories: Vec<Category>,
}

/// A model's price in integer credits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "unit", rename_all = "snake_case", deny_unknown_fields)]
pub enum Price {
    /// Chat: credits per million input and output tokens.
    Tokens {
        input_per_million: i64,
        output_per_million: i64,
    },
    /// Images: credits per image produced.
    Image { per_image: i64 },
    /// Video: credits per second of output, by normalised (lower-case) resolution.
    VideoSecond {
        per_second: BTreeMap<String, i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        off_peak_percent: Option<i64>,
    },
}

/// One category a model serves, with its parameter table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub params: Vec<Param>,
}

/// The type of one parameter, as the seed's tables name it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    String,
    Integer,
    Boolean,
    /// One uploaded file.
    File,
    /// A repeated file field (the seed's 数组).
    Files,
}

/// What kind of file a file parameter accepts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Image,
    Video,
    Audio,
}

/// One row of a parameter table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParamType,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<FileKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<u32>,
    /// The Chinese help text; `description_en` is its English (the API reference shows both).
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_en: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// `note` in English.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_en: Option<String>,
    /// The form label in Chinese and English (from [`param_label`] when the file gives none);
    /// `description` is the Chinese help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_zh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_en: Option<String>,
}

/// The labels of the parameter names the seed uses (Chinese, English): one table for the model
/// page, the playground form and the API reference.
pub fn param_label(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "prompt" => ("提示词", "Prompt"),
        "sys_prompt" => ("系统提示词", "System prompt"),
        "stream" => ("流式输出", "Stream"),
        "negative_prompt" => ("负面提示词", "Negative prompt"),
        "duration" => ("时长（秒）", "Duration (s)"),
        "resolution" => ("分辨率", "Resolution"),
        "ratio" => ("画面比例", "Aspect ratio"),
        "size" => ("尺寸", "Size"),
        "off_peak" => ("错峰生成", "Off-peak"),
        "image_file" => ("首帧图片", "First frame"),
        "image_file1" | "image1_file" => ("首帧图片", "First frame"),
        "image_file2" | "image2_file" => ("尾帧图片", "Last frame"),
        "image_files" => ("参考图片", "Reference images"),
        "video_files" => ("参考视频", "Reference videos"),
        "audio_files" => ("参考音频", "Reference audio"),
        _ => return None,
    })
}

impl Param {
    fn with_default_label(mut self) -> Param {
        if let Some((zh, en)) = param_label(&self.name) {
            self.label_zh.get_or_insert_with(|| zh.to_owned());
            self.label_en.get_or_insert_with(|| en.to_owned());
        }
        self
    }
}

impl Model {
    /// Whether the model is listed under `category`.
    pub fn serves(&self, category: &str) -> bool {
        self.categories.iter().any(|c| c.id == category)
    }

    /// The parameter table of one category.
    pub fn category(&self, category: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.id == category)
    }

    /// The categories it serves, comma-separated (for error messages).
    pub fn category_list(&self) -> String {
        self.categories
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether this is a chat (t2t) model.
    pub fn is_chat(&self) -> bool {
        self.serves("t2t")
    }

    /// A chat model with token prices, as an admin adds it through an `openai` channel.
    pub fn custom_chat(id: &str, input_per_million: i64, output_per_million: i64) -> Model {
        Model {
            id: id.to_owned(),
            vendor: Vendor::OpenAi,
            vendor_label: "自定义 (OpenAI 兼容)".to_owned(),
            description: "管理员通过 OpenAI 兼容渠道接入的模型".to_owned(),
            description_en: Some(
                "A model an admin added through an OpenAI-compatible channel".to_owned(),
            ),
            max_output_tokens: None,
            max_images_per_request: None,
            embedding: false,
            price: Price::Tokens {
                input_per_million,
                output_per_million,
            },
            categories: vec![Category {
                id: "t2t".to_owned(),
                description: None,
                params: chat_params(),
            }],
        }
    }

    /// An embedding model as an admin adds it through an `openai` channel (`embedding:` prefix on
    /// the channel's model), priced per million input tokens.
    pub fn custom_embedding(id: &str, input_per_million: i64) -> Model {
        Model {
            id: id.to_owned(),
            vendor: Vendor::OpenAi,
            vendor_label: "自定义 (OpenAI 兼容)".to_owned(),
            description: "管理员通过 OpenAI 兼容渠道接入的向量模型 / embedding model".to_owned(),
            description_en: Some(
                "An embedding model an admin added through an OpenAI-compatible channel".to_owned(),
            ),
            max_output_tokens: None,
            max_images_per_request: None,
            embedding: true,
            price: Price::Tokens {
                input_per_million,
                output_per_million: 0,
            },
            categories: Vec::new(),
        }
    }

    fn validate(&self) -> Result<(), ModelProblem> {
        if self.embedding {
            return if self.categories.is_empty() && matches!(self.price, Price::Tokens { .. }) {
                Ok(())
            } else {
                Err(ModelProblem::Embedding)
            };
        }
        if self.categories.is_empty() {
            return Err(ModelProblem::NoCategory);
        }
        for category in &self.categories {
            if !CATEGORIES.contains(&category.id.as_str()) {
                return Err(ModelProblem::UnknownCategory(category.id.clone()));
            }
            let chat = category.id == "t2t";
            if chat != matches!(self.price, Price::Tokens { .. }) {
                return Err(ModelProblem::PriceUnit(category.id.clone()));
            }
            for p in &category.params {
                let is_file = matches!(p.kind, ParamType::File | ParamType::Files);
                if is_file != p.accept.is_some() {
                    return Err(ModelProblem::FileAccept(p.name.clone()));
                }
                if p.name == "model" || p.name == "catelogid" {
                    return Err(ModelProblem::ImplicitParam);
                }
            }
        }
        let kinds: Vec<bool> = self.categories.iter().map(|c| c.id == "t2i").collect();
        let video = self
            .categories
            .iter()
            .any(|c| matches!(c.id.as_str(), "t2v" | "i2v" | "ref2v"));
        if kinds.iter().any(|k| *k) && video {
            return Err(ModelProblem::ImageUnderVideo);
        }
        Ok(())
    }
}

fn chat_params() -> Vec<Param> {
    let text =
        |name: &str, required: bool, default: Option<serde_json::Value>, text: (&str, &str)| {
            Param {
                name: name.to_owned(),
                kind: ParamType::String,
                required,
                default,
                allowed: None,
                min: None,
                max: None,
                accept: None,
                max_files: None,
                description: text.0.to_owned(),
                description_en: Some(text.1.to_owned()),
                note: None,
                note_en: None,
                label_zh: None,
                label_en: None,
            }
            .with_default_label()
        };
    let mut stream = text(
        "stream",
        false,
        Some(false.into()),
        ("流式输出开关", "Stream the answer"),
    );
    stream.kind = ParamType::Boolean;
    vec![
        text(
            "prompt",
            true,
            None,
            (
                "提示词(或使用 OpenAI 的 messages)",
                "The prompt (or OpenAI's messages)",
            ),
        ),
        text(
            "sys_prompt",
            false,
            Some("".into()),
            ("系统提示词", "System prompt"),
        ),
        stream,
    ]
}

impl Catalog {
    /// The catalog compiled into the binary.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        Catalog::parse(BUILTIN_CATALOG)
    }

    /// Load a catalog file that replaces the built-in one.
    pub fn from_file(path: &Path) -> Result<Catalog, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Catalog::parse(&text)
    }

    /// Parse and check catalog TOML.
    pub fn parse(text: &str) -> Result<Catalog, CatalogError> {
        let file: CatalogFile = toml::from_str(text)?;
        let mut catalog = Catalog {
            models: Vec::new(),
            by_id: HashMap::new(),
        };
        for mut model in file.models {
            for category in &mut model.categories {
                let params = std::mem::take(&mut category.params);
                category.params = params.into_iter().map(Param::with_default_label).collect();
            }
            model.validate().map_err(|problem| CatalogError::Invalid {
                model: model.id.clone(),
                problem,
            })?;
            if catalog.by_id.contains_key(&model.id) {
                return Err(CatalogError::Invalid {
                    model: model.id,
                    problem: ModelProblem::ListedTwice,
                });
            }
            catalog.push(model);
        }
        Ok(catalog)
    }

    fn push(&mut self, model: Model) {
        let model = Arc::new(model);
        self.by_id.insert(model.id.clone(), model.clone());
        self.models.push(model);
    }

    /// This catalog plus chat models that only channels know; catalog entries win on a clash.
    pub fn with_extra_chat_models(&self, extra: impl IntoIterator<Item = Model>) -> Catalog {
        let mut merged = self.clone();
        for model in extra {
            if !merged.by_id.contains_key(&model.id) {
                merged.push(model);
            }
        }
        merged
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Model>> {
        self.by_id.get(id)
    }

    /// All models, in catalog order.
    pub fn models(&self) -> &[Arc<Model>] {
        &self.models
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every model the seed document names, with the categories it lists it under.
    const SEED_MODELS: &[(&str, &[&str])] = &[
        ("qwen3-max", &["t2t"]),
        ("wan2.2-t2i-plus", &["t2i"]),
        ("wan2.5-t2i-preview", &["t2i"]),
        ("wan2.2-t2i-flash", &["t2i"]),
        ("cogview-3-flash", &["t2i"]),
        ("happyhorse-1.0-t2v", &["t2v"]),
        ("happyhorse-1.0-i2v", &["i2v"]),
        ("happyhorse-1.0-r2v", &["ref2v"]),
        ("doubao-seedance-2-0-260128", &["t2v", "i2v", "ref2v"]),
        ("doubao-seedance-2-0-fast-260128", &["t2v"]),
        ("dreamina-seedance-2-0-260128", &["t2v", "i2v", "ref2v"]),
        ("doubao-seedance-1-5-pro-251215", &["t2v", "i2v"]),
        ("wan2.6-t2v", &["t2v"]),
        ("wan2.6-r2v", &["i2v"]),
        ("viduq3-pro", &["t2v", "i2v"]),
    ];

    #[test]
    fn builtin_catalog_has_every_seed_model_and_category() {
        let catalog = Catalog::builtin().unwrap();
        for (id, categories) in SEED_MODELS {
            let model = catalog.get(id).unwrap_or_else(|| panic!("{id} missing"));
            for c in *categories {
                assert!(model.serves(c), "{id} should serve {c}");
            }
        }
        assert_eq!(catalog.models().len(), SEED_MODELS.len());
    }

    #[test]
    fn seed_tables_are_transcribed() {
        let catalog = Catalog::builtin().unwrap();
        let param = |model: &str, cat: &str, name: &str| {
            catalog
                .get(model)
                .unwrap()
                .category(cat)
                .unwrap()
                .params
                .iter()
                .find(|p| p.name == name)
                .cloned()
                .unwrap()
        };
        let d = param("viduq3-pro", "t2v", "duration");
        assert_eq!(
            (d.min, d.max, d.default),
            (Some(1), Some(16), Some(10.into()))
        );
        let f = param("happyhorse-1.0-r2v", "ref2v", "image_files");
        assert_eq!(
            (f.kind, f.required, f.max_files),
            (ParamType::Files, true, Some(9))
        );
        let s = param("wan2.6-t2v", "t2v", "size");
        assert_eq!(s.allowed.as_ref().unwrap().len(), 9);
        assert_eq!(s.default, Some("1920*1080".into()));
        let i = param("doubao-seedance-1-5-pro-251215", "i2v", "image_file1");
        assert!(!i.required);
        assert!(param("doubao-seedance-2-0-260128", "i2v", "image2_file").required);
    }

    /// The API reference shows catalog texts as `中文 / English`: the built-in catalog gives the
    /// English of every model description, parameter help and note.
    #[test]
    fn builtin_catalog_texts_have_english() {
        let catalog = Catalog::builtin().unwrap();
        for model in catalog.models() {
            assert!(model.description_en.is_some(), "{}", model.id);
            for category in &model.categories {
                for p in &category.params {
                    let at = format!("{} {} {}", model.id, category.id, p.name);
                    assert!(p.description_en.is_some(), "{at}: no description_en");
                    assert_eq!(p.note.is_some(), p.note_en.is_some(), "{at}: note_en");
                }
            }
        }
    }

    #[test]
    fn rejects_image_model_in_video_category() {
        let bad = r#"
[[models]]
id = "x"
vendor = "zhipu"
vendor_label = "z"
description = "d"
price = { unit = "image", per_image = 1 }
[[models.categories]]
id = "t2i"
params = []
[[models.categories]]
id = "t2v"
params = []
"#;
        assert!(Catalog::parse(bad).is_err());
    }

    #[test]
    fn extra_chat_models_do_not_replace_catalog_entries() {
        let catalog = Catalog::builtin().unwrap();
        let merged = catalog.with_extra_chat_models([
            Model::custom_chat("qwen3-max", 1, 1),
            Model::custom_chat("my-llama", 5, 7),
        ]);
        assert_eq!(
            merged.get("qwen3-max").unwrap().price,
            catalog.get("qwen3-max").unwrap().price
        );
        assert_eq!(
            merged.get("my-llama").unwrap().price,
            Price::Tokens {
                input_per_million: 5,
                output_per_million: 7
            }
        );
    }
}
