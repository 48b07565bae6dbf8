//! `llmage task ID [--json]`: one image or video task — status, model, credits, result URLs,
//! error — or the server's JSON as is with `--json`.

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use super::{Api, Connection};

#[derive(Args, Debug)]
pub struct TaskArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// 任务号 / Task id.
    #[arg(value_name = "TASKID")]
    pub id: String,
    /// 输出原始 JSON / Print the server's JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: TaskArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.conn)?;
    let task = api
        .json(
            api.get("/llmage/v1/tasks")
                .query(&[("taskid", args.id.as_str())])
                .timeout(std::time::Duration::from_secs(60)),
        )
        .await?;
    if args.json {
        let text = serde_json::to_string_pretty(&task).context("JSON")?;
        println!("{text}");
    } else {
        for (label, value) in describe(&task) {
            println!("{label}: {value}");
        }
    }
    Ok(())
}

/// The lines shown for a task, `(label, value)`, skipping what the task does not have.
pub fn describe(task: &Value) -> Vec<(&'static str, String)> {
    let text = |v: &Value| match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    let fields: [(&'static str, &Value); 8] = [
        ("任务 / task", &task["taskid"]),
        ("状态 / status", &task["status"]),
        ("模型 / model", &task["model"]),
        ("分类 / category", &task["catelogid"]),
        ("积分 / credits", &task["usage"]["credits"]),
        ("图片 / image", &task["image"]),
        ("视频 / video", &task["video"]),
        ("错误 / error", &task["error"]),
    ];
    fields
        .into_iter()
        .filter_map(|(label, v)| text(v).map(|t| (label, t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn succeeded_and_failed_tasks() {
        let done = json!({"taskid":"t1","status":"SUCCEEDED","model":"viduq3-pro","catelogid":"t2v",
            "usage":{"credits":10,"action":"t2v"},"image":"http://h/idfile?a","video":"http://h/idfile?b"});
        assert_eq!(
            describe(&done),
            vec![
                ("任务 / task", "t1".to_owned()),
                ("状态 / status", "SUCCEEDED".into()),
                ("模型 / model", "viduq3-pro".into()),
                ("分类 / category", "t2v".into()),
                ("积分 / credits", "10".into()),
                ("图片 / image", "http://h/idfile?a".into()),
                ("视频 / video", "http://h/idfile?b".into()),
            ]
        );
        let failed =
            json!({"taskid":"t2","status":"FAILED","model":"m","error":"content rejected"});
        let lines = describe(&failed);
        assert_eq!(
            lines.last(),
            Some(&("错误 / error", "content rejected".to_owned()))
        );
        assert!(!lines.iter().any(|(l, _)| l.contains("credits")));
    }
}
