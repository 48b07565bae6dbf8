//! `llmage models [--category ID] [--json]`: the catalog (模型广场) with each model's categories,
//! vendor, price and whether it can be called now, from `GET /llmage/v1/models`.

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use super::{Api, Connection};

#[derive(Args, Debug)]
pub struct ModelsArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// 只看一个分类 / Only this category: t2t | t2i | t2v | i2v | ref2v.
    #[arg(long, value_name = "ID")]
    pub category: Option<String>,
    /// 输出原始 JSON / Print the server's JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: ModelsArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.conn)?;
    let mut request = api
        .get("/llmage/v1/models")
        .timeout(std::time::Duration::from_secs(60));
    if let Some(category) = &args.category {
        request = request.query(&[("catelogid", category.as_str())]);
    }
    let list = api.json(request).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list).context("JSON")?);
        return Ok(());
    }
    let rows: Vec<[String; 5]> = list["data"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let categories = m["catelogid"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let vendor = m["vendor_label"]
                .as_str()
                .or_else(|| m["vendor"].as_str())
                .unwrap_or_default();
            let available = if m["available"] == Value::Bool(true) {
                "可用 / yes"
            } else {
                "无渠道 / no channel"
            };
            [
                m["id"].as_str().unwrap_or_default().to_owned(),
                categories,
                vendor.to_owned(),
                price_text(&m["price"]),
                available.to_owned(),
            ]
        })
        .collect();
    let header = [
        "模型 / model",
        "分类 / category",
        "厂商 / vendor",
        "价格(积分)/ price (credits)",
        "可用 / available",
    ];
    let mut widths = header.map(width);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |cells: [&str; 5]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(widths[i] - width(cell) + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    Ok(())
}

/// Display width: CJK characters take two columns.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| if c as u32 >= 0x1100 { 2 } else { 1 })
        .sum()
}

/// A catalog price in words: per million tokens, per image, or per second by resolution.
pub fn price_text(price: &Value) -> String {
    let n = |v: &Value| {
        v.as_i64()
            .map(|n| n.to_string())
            .unwrap_or_else(|| v.to_string())
    };
    match price["unit"].as_str() {
        Some("tokens") => format!(
            "输入 {} / 输出 {} 每百万 tokens (in/out per 1M tokens)",
            n(&price["input_per_million"]),
            n(&price["output_per_million"])
        ),
        Some("image") => format!("{} 每张 / per image", n(&price["per_image"])),
        Some("video_second") => {
            let mut parts: Vec<String> = price["per_second"]
                .as_object()
                .map(|m| m.iter().map(|(res, v)| format!("{res} {}", n(v))).collect())
                .unwrap_or_default();
            // Lowest resolution first (480p, 720p, 1080p).
            parts.sort_by_key(|p| {
                p.split('p')
                    .next()
                    .and_then(|d| d.parse::<u32>().ok())
                    .unwrap_or(u32::MAX)
            });
            let mut text = format!("{} 每秒 / per second", parts.join(" · "));
            if let Some(percent) = price["off_peak_percent"].as_i64() {
                text.push_str(&format!(",错峰 {percent}% / off-peak {percent}%"));
            }
            text
        }
        _ => price.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prices_in_words() {
        assert_eq!(
            price_text(&json!({"unit":"tokens","input_per_million":600,"output_per_million":2400})),
            "输入 600 / 输出 2400 每百万 tokens (in/out per 1M tokens)"
        );
        assert_eq!(
            price_text(&json!({"unit":"image","per_image":20})),
            "20 每张 / per image"
        );
        assert_eq!(
            price_text(
                &json!({"unit":"video_second","per_second":{"1080p":100,"480p":30,"720p":60},"off_peak_percent":50})
            ),
            "480p 30 · 720p 60 · 1080p 100 每秒 / per second,错峰 50% / off-peak 50%"
        );
        assert_eq!(width("模型 a"), 6);
    }
}
