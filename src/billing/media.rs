//! Prices of image and video tasks, from the catalog: per image, or per second of video at the
//! request's resolution (Wan's `size` is mapped to 480p/720p/1080p by its pixel count), with
//! Vidu's off-peak discount. Also the seed's descriptive `usage` fields of a task.

use serde_json::{Map, Value, json};

use crate::catalog::{Model, Price};

/// The price of one task and the `usage` object shown for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    pub credits: i64,
    /// What the user reads for the task in the finance views (`视频 happyhorse-1.0-t2v 5 秒 720P`).
    pub label: String,
    /// The seed's usage fields (`action`, `type`, `model`, `resolution`, `off_peak`, `duration`,
    /// `credits`).
    pub usage: Value,
}

/// The seed's `type` word for a category.
pub fn type_word(category: &str) -> &'static str {
    match category {
        "t2i" => "text2image",
        "t2v" => "text2video",
        "i2v" => "image2video",
        "ref2v" => "reference2video",
        _ => "text2text",
    }
}

/// Normalised (lower-case `480p`/`540p`/`720p`/`1080p`) resolution of the request, if any.
pub fn resolution(params: &Map<String, Value>) -> Option<String> {
    if let Some(r) = params.get("resolution").and_then(Value::as_str) {
        return Some(r.to_ascii_lowercase());
    }
    let size = params.get("size").and_then(Value::as_str)?;
    let (w, h) = size.split_once('*')?;
    let pixels = w.trim().parse::<u64>().ok()? * h.trim().parse::<u64>().ok()?;
    Some(
        if pixels <= 832 * 480 {
            "480p"
        } else if pixels <= 1280 * 720 {
            "720p"
        } else {
            "1080p"
        }
        .to_owned(),
    )
}

/// Whether the request asked for off-peak (错峰) execution.
pub fn off_peak(params: &Map<String, Value>) -> bool {
    matches!(params.get("off_peak"), Some(Value::String(s)) if s.eq_ignore_ascii_case("Y"))
        || matches!(params.get("off_peak"), Some(Value::Bool(true)))
}

/// Price a checked request.
pub fn quote(model: &Model, category: &str, params: &Map<String, Value>) -> Quote {
    match &model.price {
        Price::Image { per_image } => Quote {
            credits: *per_image,
            label: format!("图片 {}", model.id),
            usage: json!({"action": category, "credits": per_image, "type": type_word(category), "model": model.id, "count": 1}),
        },
        Price::VideoSecond {
            per_second,
            off_peak_percent,
        } => {
            let resolution = resolution(params);
            let duration = params
                .get("duration")
                .and_then(Value::as_i64)
                .unwrap_or(5)
                .max(1);
            // An unknown resolution is priced at the model's highest rate.
            let rate = resolution
                .as_ref()
                .and_then(|r| per_second.get(r))
                .copied()
                .unwrap_or_else(|| per_second.values().copied().max().unwrap_or(0));
            let full = rate * duration;
            let off = off_peak(params);
            let credits = match (off, off_peak_percent) {
                (true, Some(percent)) => (full * percent + 99) / 100,
                _ => full,
            };
            let mut label = format!("视频 {} {duration} 秒", model.id);
            if let Some(r) = &resolution {
                label.push(' ');
                label.push_str(&r.to_ascii_uppercase());
            }
            if off {
                label.push_str(" 错峰");
            }
            Quote {
                credits,
                label,
                usage: json!({
                    "action": category, "credits": credits, "type": type_word(category), "model": model.id,
                    "resolution": resolution, "off_peak": off, "duration": duration,
                }),
            }
        }
        Price::Tokens { .. } => Quote {
            credits: 0,
            label: format!("对话 {}", model.id),
            usage: json!({"action": category, "credits": 0, "model": model.id}),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn seed_example_vidu_540p_one_second_costs_10() {
        let catalog = Catalog::builtin().unwrap();
        let q = quote(
            catalog.get("viduq3-pro").unwrap(),
            "t2v",
            &params(json!({"resolution":"540p","duration":1,"off_peak":"N"})),
        );
        assert_eq!(q.credits, 10);
        assert_eq!(
            q.usage,
            json!({"action":"t2v","credits":10,"type":"text2video","model":"viduq3-pro","resolution":"540p","off_peak":false,"duration":1})
        );
        let off = quote(
            catalog.get("viduq3-pro").unwrap(),
            "t2v",
            &params(json!({"resolution":"1080p","duration":3,"off_peak":"Y"})),
        );
        assert_eq!(off.credits, 40 * 3 / 2);
        assert_eq!(off.usage["off_peak"], true);
    }

    #[test]
    fn sizes_map_to_resolutions_and_images_are_per_image() {
        let catalog = Catalog::builtin().unwrap();
        let wan = catalog.get("wan2.6-t2v").unwrap();
        for (size, res) in [
            ("832*480", "480p"),
            ("624*624", "480p"),
            ("1280*720", "720p"),
            ("960*960", "720p"),
            ("1920*1080", "1080p"),
            ("1440*1440", "1080p"),
        ] {
            let q = quote(wan, "t2v", &params(json!({"size": size, "duration": 5})));
            assert_eq!(q.usage["resolution"], res, "{size}");
        }
        assert_eq!(
            quote(
                wan,
                "t2v",
                &params(json!({"size":"1920*1080","duration":15}))
            )
            .credits,
            100 * 15
        );
        let hh = catalog.get("happyhorse-1.0-t2v").unwrap();
        assert_eq!(
            quote(
                hh,
                "t2v",
                &params(json!({"resolution":"720P","duration":4}))
            )
            .credits,
            240
        );
        assert_eq!(
            quote(
                hh,
                "t2v",
                &params(json!({"resolution":"720P","duration":5}))
            )
            .label,
            "视频 happyhorse-1.0-t2v 5 秒 720P"
        );
        let img = quote(catalog.get("wan2.2-t2i-plus").unwrap(), "t2i", &Map::new());
        assert_eq!(
            (img.credits, img.usage["type"].as_str()),
            (20, Some("text2image"))
        );
    }
}
