//! Checking an image/video submission against the catalog: the model and its category, every
//! parameter of that category's table (type, allowed values — case-insensitively, normalised to
//! the table's spelling —, ranges, defaults filled in), file fields (count, size, type sniffed
//! from the bytes), and unknown fields. Every rejection names the field and what is allowed.
//!
//! Input comes from JSON (values, files as URLs or `data:` URIs) or multipart (text parts and
//! file parts); both become a [`Submission`].

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::{Catalog, FileKind, Model, Param, ParamType};
use crate::media::{self, MediaKind};
use crate::storage::staging::StagedFile;

/// Why a submission was refused; the message names the field and what is allowed. The API
/// answers 400 (404 for an unknown model).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("Missing required parameter: {0}")]
    MissingParameter(String),
    #[error("Invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("Model not found: {0}")]
    ModelNotFound(String),
}

/// Which submission endpoint was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Image,
    Video,
}

impl Endpoint {
    fn categories(self) -> &'static [&'static str] {
        match self {
            Endpoint::Image => &["t2i"],
            Endpoint::Video => &["t2v", "i2v", "ref2v"],
        }
    }
}

/// A field value as received.
#[derive(Debug, Clone)]
pub enum FieldValue {
    /// From a JSON body.
    Json(Value),
    /// From a multipart text part.
    Text(String),
}

/// An uploaded file part, staged on disk as it arrived (never whole in memory).
#[derive(Debug, Clone)]
pub struct Upload {
    pub file: StagedFile,
    pub filename: Option<String>,
}

/// Everything a client sent, before checking.
#[derive(Debug, Clone, Default)]
pub struct Submission {
    pub fields: Vec<(String, FieldValue)>,
    pub files: Vec<(String, Upload)>,
}

/// Upload limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_file_bytes: usize,
}

/// Where an input file comes from.
#[derive(Debug, Clone)]
pub enum InputSource {
    /// Bytes we received in a `data:` URI, type sniffed.
    Bytes { bytes: Bytes, mime: &'static str },
    /// A file part we received, staged on disk, type sniffed.
    Staged {
        file: StagedFile,
        mime: &'static str,
    },
    /// An http(s) URL the client gave.
    Url(String),
}

/// One input file of a file field (repeated fields keep their order).
#[derive(Debug, Clone)]
pub struct InputFile {
    pub field: String,
    pub source: InputSource,
}

/// A checked submission.
#[derive(Debug, Clone)]
pub struct Validated {
    pub model: Arc<Model>,
    pub category: String,
    /// Non-file parameters, defaults filled in, values in the table's spelling.
    pub params: Map<String, Value>,
    pub inputs: Vec<InputFile>,
    pub callback_url: Option<String>,
}

/// Longest accepted text value.
const MAX_TEXT_CHARS: usize = 10_000;

/// Check a submission.
pub fn validate(
    catalog: &Catalog,
    endpoint: Endpoint,
    submission: Submission,
    limits: Limits,
) -> Result<Validated, ValidationError> {
    check(catalog, endpoint, submission, limits, false)
}

/// Check the plain fields of a multipart submission before any file part is read: the model,
/// the category and every non-file parameter (so the price can be quoted and the balance checked
/// first). File parameters are left out (they come later); the result has no inputs.
pub fn validate_fields(
    catalog: &Catalog,
    endpoint: Endpoint,
    fields: Vec<(String, FieldValue)>,
    limits: Limits,
) -> Result<Validated, ValidationError> {
    let submission = Submission {
        fields,
        files: Vec::new(),
    };
    check(catalog, endpoint, submission, limits, true)
}

fn check(
    catalog: &Catalog,
    endpoint: Endpoint,
    submission: Submission,
    limits: Limits,
    files_later: bool,
) -> Result<Validated, ValidationError> {
    let mut fields: BTreeMap<String, Vec<FieldValue>> = BTreeMap::new();
    for (name, value) in submission.fields {
        fields.entry(name).or_default().push(value);
    }
    let mut uploads: BTreeMap<String, Vec<Upload>> = BTreeMap::new();
    for (name, upload) in submission.files {
        uploads.entry(name).or_default().push(upload);
    }

    let model_id = single_text(&mut fields, "model")?
        .ok_or_else(|| ValidationError::MissingParameter("model".into()))?;
    let category = single_text(&mut fields, "catelogid")?
        .ok_or_else(|| ValidationError::MissingParameter("catelogid".into()))?;
    if !endpoint.categories().contains(&category.as_str()) {
        let hint = match category.as_str() {
            "t2i" => "; t2i goes to POST /llmage/v1/image/generations",
            "t2v" | "i2v" | "ref2v" => "; video categories go to POST /llmage/v1/video/generations",
            "t2t" => "; t2t goes to POST /llmage/v1/chat/completions",
            _ => "",
        };
        return Err(ValidationError::InvalidParameter(format!(
            "catelogid must be one of {} for this endpoint (got \"{category}\"){hint}",
            endpoint.categories().join(", ")
        )));
    }
    let model = catalog
        .get(&model_id)
        .cloned()
        .ok_or_else(|| ValidationError::ModelNotFound(model_id.clone()))?;
    let table = model.category(&category).ok_or_else(|| {
        ValidationError::InvalidParameter(format!(
            "model {model_id} does not serve catelogid {category} (it serves: {})",
            model.category_list()
        ))
    })?;
    let callback_url = single_text(&mut fields, "callback_url")?.filter(|u| !u.is_empty());
    if let Some(url) = &callback_url
        && (!(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048)
    {
        return Err(ValidationError::InvalidParameter(
            "callback_url must be an http:// or https:// URL (at most 2048 characters)".into(),
        ));
    }

    let known = |name: &str| table.params.iter().any(|p| p.name == name);
    let allowed_names = || {
        let mut names = vec!["model", "catelogid"];
        names.extend(table.params.iter().map(|p| p.name.as_str()));
        names.push("callback_url");
        names.join(", ")
    };
    for name in fields.keys().chain(uploads.keys()) {
        if !known(name) {
            return Err(ValidationError::InvalidParameter(format!(
                "unknown parameter {name} (allowed: {})",
                allowed_names()
            )));
        }
    }

    let mut params = Map::new();
    let mut inputs = Vec::new();
    for param in &table.params {
        let values = fields.remove(&param.name).unwrap_or_default();
        let files = uploads.remove(&param.name).unwrap_or_default();
        match param.kind {
            ParamType::File | ParamType::Files if files_later => {}
            ParamType::File | ParamType::Files => {
                inputs.extend(check_files(param, values, files, limits)?)
            }
            _ => {
                if !files.is_empty() {
                    return Err(ValidationError::InvalidParameter(format!(
                        "{} is a {} parameter, not a file",
                        param.name,
                        type_name(param.kind)
                    )));
                }
                if values.len() > 1 {
                    return Err(ValidationError::InvalidParameter(format!(
                        "{} was given more than once",
                        param.name
                    )));
                }
                match values
                    .into_iter()
                    .next()
                    .map(|v| check_scalar(param, v))
                    .transpose()?
                    .flatten()
                {
                    Some(value) => {
                        params.insert(param.name.clone(), value);
                    }
                    None if param.required && !files_later => {
                        return Err(ValidationError::MissingParameter(param.name.clone()));
                    }
                    None => {
                        if let Some(default) = &param.default {
                            params.insert(param.name.clone(), default.clone());
                        }
                    }
                }
            }
        }
    }
    Ok(Validated {
        model,
        category,
        params,
        inputs,
        callback_url,
    })
}

fn type_name(kind: ParamType) -> &'static str {
    match kind {
        ParamType::String => "string",
        ParamType::Integer => "integer",
        ParamType::Boolean => "boolean",
        ParamType::File => "file",
        ParamType::Files => "file array",
    }
}

/// A field that must appear at most once as text.
fn single_text(
    fields: &mut BTreeMap<String, Vec<FieldValue>>,
    name: &str,
) -> Result<Option<String>, ValidationError> {
    let Some(values) = fields.remove(name) else {
        return Ok(None);
    };
    if values.len() > 1 {
        return Err(ValidationError::InvalidParameter(format!(
            "{name} was given more than once"
        )));
    }
    match values.into_iter().next() {
        None | Some(FieldValue::Json(Value::Null)) => Ok(None),
        Some(FieldValue::Json(Value::String(s)) | FieldValue::Text(s)) => {
            let s = s.trim().to_owned();
            Ok((!s.is_empty()).then_some(s))
        }
        Some(FieldValue::Json(_)) => Err(ValidationError::InvalidParameter(format!(
            "{name} must be a string"
        ))),
    }
}

/// One scalar value, checked and normalised; `None` for an empty value (treated as absent).
fn check_scalar(param: &Param, value: FieldValue) -> Result<Option<Value>, ValidationError> {
    let name = &param.name;
    let value = match (param.kind, value) {
        (_, FieldValue::Json(Value::Null)) => return Ok(None),
        (ParamType::String, FieldValue::Json(Value::String(s)) | FieldValue::Text(s)) => {
            if s.trim().is_empty() {
                return Ok(None);
            }
            if s.chars().count() > MAX_TEXT_CHARS {
                return Err(ValidationError::InvalidParameter(format!(
                    "{name} is too long (at most {MAX_TEXT_CHARS} characters)"
                )));
            }
            Value::String(s)
        }
        (ParamType::Integer, FieldValue::Json(Value::Number(n))) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => {
                return Err(ValidationError::InvalidParameter(format!(
                    "{name} must be an integer (got {n})"
                )));
            }
        },
        (ParamType::Integer, FieldValue::Json(Value::String(s)) | FieldValue::Text(s)) => {
            if s.trim().is_empty() {
                return Ok(None);
            }
            match s.trim().parse::<i64>() {
                Ok(i) => Value::from(i),
                Err(_) => {
                    return Err(ValidationError::InvalidParameter(format!(
                        "{name} must be an integer (got \"{s}\")"
                    )));
                }
            }
        }
        (ParamType::Boolean, FieldValue::Json(Value::Bool(b))) => Value::Bool(b),
        (ParamType::Boolean, FieldValue::Json(Value::String(s)) | FieldValue::Text(s)) => {
            match s.trim() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                "" => return Ok(None),
                _ => {
                    return Err(ValidationError::InvalidParameter(format!(
                        "{name} must be true or false (got \"{s}\")"
                    )));
                }
            }
        }
        (kind, FieldValue::Json(other)) => {
            return Err(ValidationError::InvalidParameter(format!(
                "{name} must be a {} (got {other})",
                type_name(kind)
            )));
        }
        (ParamType::File | ParamType::Files, FieldValue::Text(_)) => return Ok(None),
    };
    // The default is always acceptable (the seed's "adaptive" ratio default).
    if param.default.as_ref().is_some_and(|d| same(d, &value)) {
        return Ok(Some(param.default.clone().unwrap_or(value)));
    }
    if let Some(allowed) = &param.allowed {
        match allowed.iter().find(|a| same(a, &value)) {
            Some(canonical) => return Ok(Some(canonical.clone())),
            None => {
                return Err(ValidationError::InvalidParameter(format!(
                    "{name} must be one of {} (got {})",
                    allowed.iter().map(display).collect::<Vec<_>>().join(", "),
                    display(&value)
                )));
            }
        }
    }
    if let Some(i) = value.as_i64() {
        let below = param.min.is_some_and(|min| i < min);
        let above = param.max.is_some_and(|max| i > max);
        if below || above {
            let range = match (param.min, param.max) {
                (Some(min), Some(max)) => format!("between {min} and {max}"),
                (Some(min), None) => format!("at least {min}"),
                (None, Some(max)) => format!("at most {max}"),
                (None, None) => String::new(),
            };
            return Err(ValidationError::InvalidParameter(format!(
                "{name} must be {range} (got {i})"
            )));
        }
    }
    Ok(Some(value))
}

/// Equal, with strings compared case-insensitively (720P = 720p).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y.trim()),
        _ => a == b,
    }
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn kind_words(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Image => "an image (JPEG, PNG or WebP)",
        FileKind::Video => "a video (MP4)",
        FileKind::Audio => "an audio file (MP3 or WAV)",
    }
}

fn check_files(
    param: &Param,
    values: Vec<FieldValue>,
    uploads: Vec<Upload>,
    limits: Limits,
) -> Result<Vec<InputFile>, ValidationError> {
    let name = &param.name;
    let accept = param.accept.unwrap_or(FileKind::Image);
    let max = match param.kind {
        ParamType::Files => param.max_files.unwrap_or(1) as usize,
        _ => 1,
    };
    // Count before reading any bytes.
    if uploads.len() > max {
        return Err(too_many(name, max, uploads.len()));
    }
    let mut sources = Vec::new();
    for upload in uploads {
        let size = usize::try_from(upload.file.size).unwrap_or(usize::MAX);
        let mime = sniffed(name, accept, &upload.file.head, size, limits)?;
        sources.push(InputSource::Staged {
            file: upload.file,
            mime,
        });
    }
    for value in values {
        let items = match value {
            FieldValue::Text(s) => vec![Value::String(s)],
            FieldValue::Json(Value::Array(items)) => items,
            FieldValue::Json(Value::Null) => Vec::new(),
            FieldValue::Json(v) => vec![v],
        };
        for item in items {
            let Value::String(text) = item else {
                return Err(ValidationError::InvalidParameter(format!(
                    "{name} must be a file, an http(s) URL or a data: URI"
                )));
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            if let Some(rest) = text.strip_prefix("data:") {
                let (_, data) = rest.split_once(";base64,").ok_or_else(|| {
                    ValidationError::InvalidParameter(format!(
                        "{name}: a data: URI must be base64 (data:<type>;base64,…)"
                    ))
                })?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data.trim())
                    .map_err(|_| {
                        ValidationError::InvalidParameter(format!(
                            "{name}: the data: URI is not valid base64"
                        ))
                    })?;
                let mime = sniffed(name, accept, &bytes, bytes.len(), limits)?;
                sources.push(InputSource::Bytes {
                    bytes: Bytes::from(bytes),
                    mime,
                });
            } else if text.starts_with("https://") || text.starts_with("http://") {
                if text.len() > 4096 {
                    return Err(ValidationError::InvalidParameter(format!(
                        "{name}: URL too long"
                    )));
                }
                sources.push(InputSource::Url(text.to_owned()));
            } else {
                return Err(ValidationError::InvalidParameter(format!(
                    "{name} must be a file upload, an http(s) URL or a data: URI"
                )));
            }
        }
    }
    if sources.is_empty() {
        return if param.required {
            Err(ValidationError::MissingParameter(name.clone()))
        } else {
            Ok(Vec::new())
        };
    }
    if sources.len() > max {
        return Err(too_many(name, max, sources.len()));
    }
    Ok(sources
        .into_iter()
        .map(|source| InputFile {
            field: name.clone(),
            source,
        })
        .collect())
}

fn too_many(name: &str, max: usize, got: usize) -> ValidationError {
    ValidationError::InvalidParameter(if max == 1 {
        format!("{name} takes one file (got {got})")
    } else {
        format!("{name} takes at most {max} files (got {got})")
    })
}

/// The sniffed type of a file of `size` bytes starting with `head`, if it is of the kind the
/// field accepts and within the size limit.
fn sniffed(
    name: &str,
    accept: FileKind,
    head: &[u8],
    size: usize,
    limits: Limits,
) -> Result<&'static str, ValidationError> {
    if size > limits.max_file_bytes {
        return Err(ValidationError::InvalidParameter(format!(
            "{name} is too large ({size} bytes; at most {} bytes per file)",
            limits.max_file_bytes
        )));
    }
    let wanted = match accept {
        FileKind::Image => MediaKind::Image,
        FileKind::Video => MediaKind::Video,
        FileKind::Audio => MediaKind::Audio,
    };
    match media::sniff(head) {
        Some(s) if s.kind == wanted => Ok(s.mime),
        Some(s) => Err(ValidationError::InvalidParameter(format!(
            "{name} must be {} (got {})",
            kind_words(accept),
            s.mime
        ))),
        None => Err(ValidationError::InvalidParameter(format!(
            "{name} must be {} (the file is not a recognised type)",
            kind_words(accept)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: Limits = Limits {
        max_file_bytes: 1024 * 1024,
    };

    fn png_bytes() -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        bytes.extend_from_slice(&[0u8; 64]);
        bytes
    }

    fn upload(bytes: &[u8]) -> Upload {
        let staging = crate::storage::staging::Staging::in_temp_dir().unwrap();
        Upload {
            file: staging.stage_bytes_blocking(bytes).unwrap(),
            filename: Some("a.png".into()),
        }
    }

    fn png() -> Upload {
        upload(&png_bytes())
    }

    fn text_file() -> Upload {
        upload(b"just some text, not an image")
    }

    fn endpoint(category: &str) -> Endpoint {
        if category == "t2i" {
            Endpoint::Image
        } else {
            Endpoint::Video
        }
    }

    /// Every (model, category) of the media kinds, with its table.
    fn tables(catalog: &Catalog) -> Vec<(Arc<Model>, super::super::Category)> {
        catalog
            .models()
            .iter()
            .flat_map(|m| {
                m.categories
                    .iter()
                    .filter(|c| c.id != "t2t")
                    .map(move |c| (m.clone(), c.clone()))
            })
            .collect()
    }

    /// The smallest valid submission: model, catelogid, prompt and one file per required file field.
    fn minimal(model: &Model, category: &super::super::Category) -> Submission {
        let mut s = Submission::default();
        s.fields
            .push(("model".into(), FieldValue::Text(model.id.clone())));
        s.fields
            .push(("catelogid".into(), FieldValue::Text(category.id.clone())));
        for p in &category.params {
            match p.kind {
                ParamType::File | ParamType::Files if p.required => {
                    s.files.push((p.name.clone(), png()))
                }
                ParamType::String if p.required => s
                    .fields
                    .push((p.name.clone(), FieldValue::Text("一只猫".into()))),
                _ => {}
            }
        }
        s
    }

    fn err(catalog: &Catalog, category: &str, s: Submission) -> String {
        validate(catalog, endpoint(category), s, LIMITS)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_table_accepts_its_minimal_request_and_fills_defaults() {
        let catalog = Catalog::builtin().unwrap();
        let all = tables(&catalog);
        assert_eq!(all.len(), 20);
        for (model, category) in all {
            let v = validate(
                &catalog,
                endpoint(&category.id),
                minimal(&model, &category),
                LIMITS,
            )
            .unwrap_or_else(|e| panic!("{} {}: {e}", model.id, category.id));
            for p in category.params.iter().filter(|p| p.default.is_some()) {
                assert_eq!(
                    v.params.get(&p.name),
                    p.default.as_ref(),
                    "{} {} default {}",
                    model.id,
                    category.id,
                    p.name
                );
            }
            let required_files = category
                .params
                .iter()
                .filter(|p| p.required && matches!(p.kind, ParamType::File | ParamType::Files))
                .count();
            assert_eq!(v.inputs.len(), required_files);
        }
    }

    #[test]
    fn wrong_enum_values_are_rejected_naming_the_choices() {
        let catalog = Catalog::builtin().unwrap();
        let mut checked = 0;
        for (model, category) in tables(&catalog) {
            for p in category.params.iter().filter(|p| p.allowed.is_some()) {
                let mut s = minimal(&model, &category);
                let bad = if p.kind == ParamType::Integer {
                    FieldValue::Json(json!(7))
                } else {
                    FieldValue::Text("999x".into())
                };
                s.fields.push((p.name.clone(), bad));
                let e = err(&catalog, &category.id, s);
                assert!(
                    e.contains(&p.name) && e.contains("must be one of"),
                    "{} {} {}: {e}",
                    model.id,
                    category.id,
                    p.name
                );
                checked += 1;
            }
        }
        assert!(checked > 30, "{checked}");
    }

    #[test]
    fn out_of_range_durations_are_rejected() {
        let catalog = Catalog::builtin().unwrap();
        let mut checked = 0;
        for (model, category) in tables(&catalog) {
            for p in category.params.iter().filter(|p| p.max.is_some()) {
                let mut s = minimal(&model, &category);
                s.fields
                    .push((p.name.clone(), FieldValue::Json(json!(p.max.unwrap() + 1))));
                let e = err(&catalog, &category.id, s);
                assert!(
                    e.contains(&p.name) && e.contains("between"),
                    "{} {}: {e}",
                    model.id,
                    category.id
                );
                let mut s = minimal(&model, &category);
                s.fields.push((
                    p.name.clone(),
                    FieldValue::Text((p.min.unwrap() - 1).to_string()),
                ));
                assert!(err(&catalog, &category.id, s).contains("between"));
                checked += 1;
            }
        }
        assert!(checked >= 12, "{checked}");
        // Vidu's seed range 1–16 holds at both ends.
        let vidu = catalog.get("viduq3-pro").unwrap();
        for ok in [1, 16] {
            let mut s = minimal(vidu, vidu.category("t2v").unwrap());
            s.fields
                .push(("duration".into(), FieldValue::Json(json!(ok))));
            assert_eq!(
                validate(&catalog, Endpoint::Video, s, LIMITS)
                    .unwrap()
                    .params["duration"],
                json!(ok)
            );
        }
    }

    #[test]
    fn missing_required_files_are_named() {
        let catalog = Catalog::builtin().unwrap();
        let mut checked = 0;
        for (model, category) in tables(&catalog) {
            for p in category
                .params
                .iter()
                .filter(|p| p.required && matches!(p.kind, ParamType::File | ParamType::Files))
            {
                let mut s = minimal(&model, &category);
                s.files.retain(|(name, _)| name != &p.name);
                assert_eq!(
                    err(&catalog, &category.id, s),
                    format!("Missing required parameter: {}", p.name)
                );
                checked += 1;
            }
        }
        assert!(checked >= 12, "{checked}");
    }

    #[test]
    fn too_many_files_and_non_images_are_rejected() {
        let catalog = Catalog::builtin().unwrap();
        for (model, category) in tables(&catalog) {
            for p in category
                .params
                .iter()
                .filter(|p| matches!(p.kind, ParamType::File | ParamType::Files))
            {
                let max = if p.kind == ParamType::Files {
                    p.max_files.unwrap() as usize
                } else {
                    1
                };
                let mut s = minimal(&model, &category);
                s.files.retain(|(name, _)| name != &p.name);
                for _ in 0..=max {
                    s.files.push((p.name.clone(), png()));
                }
                let e = err(&catalog, &category.id, s);
                assert!(
                    e.contains(&p.name) && (e.contains("at most") || e.contains("one file")),
                    "{e}"
                );

                let mut s = minimal(&model, &category);
                s.files.retain(|(name, _)| name != &p.name);
                s.files.push((p.name.clone(), text_file()));
                let e = err(&catalog, &category.id, s);
                assert!(e.contains(&p.name) && e.contains("must be"), "{e}");
            }
        }
        // A video where an image belongs is named by its type.
        let hh = catalog.get("happyhorse-1.0-i2v").unwrap();
        let mut s = minimal(hh, hh.category("i2v").unwrap());
        s.files = vec![(
            "image_file".into(),
            upload(b"\0\0\0\x18ftypisom\0\0\0\0isomavc1"),
        )];
        assert!(err(&catalog, "i2v", s).contains("video/mp4"));
        // Oversized files.
        let mut s = minimal(hh, hh.category("i2v").unwrap());
        let big = upload(&[png_bytes(), vec![0; 2 * 1024 * 1024]].concat());
        s.files = vec![("image_file".into(), big)];
        assert!(err(&catalog, "i2v", s).contains("too large"));
    }

    #[test]
    fn unknown_fields_and_wrong_endpoints_are_rejected() {
        let catalog = Catalog::builtin().unwrap();
        for (model, category) in tables(&catalog) {
            let mut s = minimal(&model, &category);
            s.fields
                .push(("seed_value".into(), FieldValue::Text("1".into())));
            let e = err(&catalog, &category.id, s);
            assert!(
                e.contains("unknown parameter seed_value") && e.contains("prompt"),
                "{e}"
            );
            let mut s = minimal(&model, &category);
            s.files.push(("bogus_file".into(), png()));
            assert!(err(&catalog, &category.id, s).contains("bogus_file"));
        }
        let w = catalog.get("wan2.2-t2i-plus").unwrap();
        let s = minimal(w, w.category("t2i").unwrap());
        assert!(
            validate(&catalog, Endpoint::Video, s, LIMITS)
                .unwrap_err()
                .to_string()
                .contains("catelogid")
        );
        let mut s = minimal(w, w.category("t2i").unwrap());
        s.fields[1].1 = FieldValue::Text("t2v".into());
        assert!(
            validate(&catalog, Endpoint::Video, s, LIMITS)
                .unwrap_err()
                .to_string()
                .contains("does not serve")
        );
        let mut s = minimal(w, w.category("t2i").unwrap());
        s.fields.retain(|(n, _)| n != "catelogid");
        assert_eq!(
            err(&catalog, "t2i", s),
            "Missing required parameter: catelogid"
        );
        let mut s = minimal(w, w.category("t2i").unwrap());
        s.fields.retain(|(n, _)| n != "prompt");
        assert_eq!(
            err(&catalog, "t2i", s),
            "Missing required parameter: prompt"
        );
        let mut s = minimal(w, w.category("t2i").unwrap());
        s.fields[0].1 = FieldValue::Text("nope".into());
        assert_eq!(err(&catalog, "t2i", s), "Model not found: nope");
    }

    #[test]
    fn values_are_normalised_and_json_files_accepted() {
        let catalog = Catalog::builtin().unwrap();
        let hh = catalog.get("happyhorse-1.0-t2v").unwrap();
        let mut s = minimal(hh, hh.category("t2v").unwrap());
        s.fields
            .push(("resolution".into(), FieldValue::Json(json!("1080p"))));
        s.fields
            .push(("duration".into(), FieldValue::Json(json!("4"))));
        s.fields
            .push(("ratio".into(), FieldValue::Json(json!("4:3"))));
        let v = validate(&catalog, Endpoint::Video, s, LIMITS).unwrap();
        assert_eq!(
            (
                v.params["resolution"].clone(),
                v.params["duration"].clone(),
                v.params["ratio"].clone()
            ),
            (json!("1080P"), json!(4), json!("4:3"))
        );

        let hr = catalog.get("happyhorse-1.0-r2v").unwrap();
        let mut s = minimal(hr, hr.category("ref2v").unwrap());
        s.files.clear();
        let data_uri = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png_bytes())
        );
        s.fields.push((
            "image_files".into(),
            FieldValue::Json(json!(["https://example.com/a.jpg", data_uri])),
        ));
        let v = validate(&catalog, Endpoint::Video, s, LIMITS).unwrap();
        assert!(
            matches!(&v.inputs[0].source, InputSource::Url(u) if u == "https://example.com/a.jpg")
        );
        assert!(matches!(
            &v.inputs[1].source,
            InputSource::Bytes {
                mime: "image/png",
                ..
            }
        ));

        let mut s = minimal(hr, hr.category("ref2v").unwrap());
        s.fields
            .push(("callback_url".into(), FieldValue::Text("ftp://x".into())));
        assert!(err(&catalog, "ref2v", s).contains("callback_url"));
    }
}
