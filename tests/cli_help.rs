//! The examples printed by `--help` are true: every example line of the client commands runs
//! against a demo server, and `admin channel add --help` names all six vendors with a base URL
//! each and its examples add channels.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{DEMO_KEY, Opts, Server, bin};

fn help(args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The example command lines of a help text (`  llmage …`, or a pipe into llmage).
fn examples(help: &str) -> Vec<String> {
    help.lines()
        .filter(|l| l.starts_with("  ") && l.contains("llmage ") && !l.contains("TASKID from"))
        .map(|l| l.trim().to_owned())
        .collect()
}

/// Run a command line with bash, `llmage` being the binary under test.
fn run(line: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(line)
        .env("PATH", path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn every_client_help_example_runs_against_the_demo_server() {
    let server = Server::start(Opts::demo()).await;
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().to_str().unwrap();
    let env = [
        ("LLMAGE_BASE_URL", server.base.as_str()),
        ("LLMAGE_API_KEY", DEMO_KEY),
    ];
    // A task to show in `llmage task` examples.
    let (ok, task_id) = run(
        "llmage image -m wan2.2-t2i-plus --prompt 测试 --no-wait",
        &env,
    );
    assert!(ok, "{task_id}");
    // "任务 / task: <id>" on stdout.
    let task_id = task_id
        .lines()
        .find_map(|l| l.strip_prefix("任务 / task: "))
        .unwrap()
        .trim()
        .to_owned();
    let mut ran = 0;
    for command in ["chat", "image", "video", "task", "models"] {
        let text = help(&[command]);
        let lines = examples(&text);
        assert!(
            lines.len() >= 2,
            "{command} --help has no examples:\n{text}"
        );
        for line in lines {
            assert!(line.contains(&format!("llmage {command}")), "{line}");
            let line = line.replace("TASKID", &task_id).replace("/tmp", out);
            let (ok, output) = run(&line, &env);
            assert!(ok, "`{line}` failed:\n{output}");
            match command {
                "models" if line.contains("--json") => assert!(output.contains("\"data\"")),
                "models" if line.contains("t2v") => {
                    assert!(output.contains("viduq3-pro") && !output.contains("qwen3-max"))
                }
                "models" => {
                    assert!(output.contains("qwen3-max") && output.contains("每百万 tokens"))
                }
                "task" => assert!(output.contains(&task_id), "{output}"),
                _ => {}
            }
            ran += 1;
        }
    }
    assert!(ran >= 10, "{ran}");
    // The downloads of the waiting image and video examples.
    let files = std::fs::read_dir(Path::new(out)).unwrap().count();
    assert!(files >= 2, "{files} files downloaded");
    // The top-level help lists the models command.
    assert!(help(&[]).contains("models"));
}

#[test]
fn channel_add_help_names_every_vendor_with_a_base_url_and_its_examples_work() {
    let text = help(&["admin", "channel", "add"]);
    for (vendor, url) in [
        ("openai", "https://api.openai.com/v1"),
        ("dashscope", "https://dashscope.aliyuncs.com"),
        ("ark", "https://ark.cn-beijing.volces.com/api/v3"),
        ("modelark", "https://ark.ap-southeast.bytepluses.com/api/v3"),
        ("vidu", "https://api.vidu.cn"),
        ("zhipu", "https://open.bigmodel.cn/api/paas/v4"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{vendor} "))),
            "{vendor} missing:\n{text}"
        );
        assert!(text.contains(url), "{url} missing:\n{text}");
    }
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let lines = examples(&text);
    assert_eq!(lines.len(), 4, "{lines:?}");
    for line in &lines {
        let line = format!("{line} --data-dir {data_dir}");
        let (ok, output) = run(&line, &[]);
        assert!(ok, "`{line}` failed:\n{output}");
        assert!(output.contains("added"), "{output}");
    }
    let (ok, list) = run(
        &format!("llmage admin channel list --data-dir {data_dir}"),
        &[],
    );
    assert!(ok, "{list}");
    for vendor in ["dashscope", "openai", "zhipu"] {
        assert!(list.contains(vendor), "{list}");
    }
    // A wrong vendor is refused by the parser, naming the possible values.
    let (ok, output) = run(
        &format!(
            "llmage admin channel add --vendor nope --base-url http://x --api-key k --models m --data-dir {data_dir}"
        ),
        &[],
    );
    assert!(!ok);
    assert!(output.contains("zhipu"), "{output}");
}
