//! The docs-example runner: every command in `README.md` and `docs/*.md` is run or checked.
//!
//! - ```` ```sh ```` blocks run, in order, as one bash script per file against a demo server
//!   (`http://127.0.0.1:8080` rewritten to the server's address, `llmage` being the binary under
//!   test, in a directory holding `data/` with `data/demo-api-key`, `server.log`, `02.jpg` and
//!   `out/`). For `docs/operating.md`, whose commands add vendor channels, `data/` is a fresh
//!   directory no server uses, so nothing can route to a real vendor.
//! - ```` ```sh setup ```` blocks (building, installing, the test command, starting the server,
//!   benchmarks) are not run here; each of their commands must be one of the kinds listed in
//!   [`SETUP_COMMANDS`], which say what runs them instead.
//! - `llmage …` synopses in ```` ```text ```` blocks are checked flag by flag against that
//!   command's `--help`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Opts, Server, bin, jpeg};

/// The commands `sh setup` blocks may hold, and what runs each instead of this runner.
const SETUP_COMMANDS: [(&str, &str); 9] = [
    ("cargo build", "CI builds the binary for every test"),
    (
        "cargo install --path .",
        "the same build, copied to ~/.cargo/bin",
    ),
    (
        "cargo run --release -- serve --demo",
        "every test starts `serve --demo`",
    ),
    ("llmage serve --demo", "every test starts `serve --demo`"),
    (
        "sudo install -m 755 target/release/llmage",
        "a copy of the built binary",
    ),
    ("scripts/test.sh", ".ci/run runs exactly this"),
    ("cargo nextest run", "scripts/test.sh runs these"),
    ("LLMAGE_TEST_", "scripts/test.sh settings, run by CI"),
    (
        "SKIP_BUILD=1 ",
        "benchmarks: need the whole machine; docs/benchmarks.md gives their figures",
    ),
];
/// Benchmark commands (not tests; their figures are in docs/benchmarks.md).
const BENCH_COMMANDS: [&str; 4] = [
    "cargo build --release --bin llmage --example bare_proxy",
    "ROUNDS=10 scripts/bench-ab.sh ",
    "TASKS=1000,10000 WINDOW_SECS=60 cargo bench --bench task_polling",
    "LLMAGE_TEST_DATABASE_URL=",
];

struct Block {
    info: String,
    text: String,
    line: usize,
}

/// The fenced code blocks of a Markdown file (fences may be indented, as in lists).
fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<(String, usize, usize, Vec<String>)> = None;
    for (i, raw) in markdown.lines().enumerate() {
        let trimmed = raw.trim_start();
        match &mut current {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let indent = raw.len() - trimmed.len();
                    current = Some((info.trim().to_owned(), indent, i + 1, Vec::new()));
                }
            }
            Some((info, indent, line, lines)) => {
                if trimmed.starts_with("```") {
                    out.push(Block {
                        info: info.clone(),
                        text: lines.join("\n"),
                        line: *line,
                    });
                    current = None;
                } else {
                    let cut = raw
                        .char_indices()
                        .take_while(|(n, c)| *n < *indent && c.is_whitespace())
                        .count();
                    lines.push(raw[cut..].to_owned());
                }
            }
        }
    }
    out
}

/// Shell commands of a block: continuation lines joined, comments and blank lines left out.
fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        out.push(std::mem::take(&mut pending));
    }
    out
}

fn doc_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn setup_blocks_hold_only_commands_run_elsewhere_and_synopses_match_the_cli() {
    let mut setup = 0;
    let mut synopses = 0;
    for file in doc_files() {
        let name = name_of(&file);
        let text = std::fs::read_to_string(&file).unwrap();
        for block in blocks(&text) {
            if block.info == "sh setup" {
                for command in commands(&block.text) {
                    let command = command.split(" # ").next().unwrap().trim().to_owned();
                    let known = SETUP_COMMANDS.iter().any(|(p, _)| command.starts_with(p))
                        || BENCH_COMMANDS.iter().any(|p| command.starts_with(p));
                    assert!(
                        known,
                        "{name}:{}: `{command}` is in a `sh setup` block but nothing runs it \
                         (make it a `sh` block the runner runs, or add it to SETUP_COMMANDS with \
                         what runs it)",
                        block.line
                    );
                    setup += 1;
                }
            } else if block.info == "text" {
                for line in block.text.lines().filter(|l| l.starts_with("llmage ")) {
                    check_synopsis(&name, line);
                    synopses += 1;
                }
            } else if block.info.starts_with("sh") && block.info != "sh" {
                panic!("{name}:{}: unknown block kind `{}`", block.line, block.info);
            }
        }
    }
    assert!(setup >= 8, "{setup} setup commands");
    assert!(synopses >= 10, "{synopses} synopses");
}

/// `llmage a b --flag X [--other Y]`: `llmage a b --help` knows every flag.
fn check_synopsis(file: &str, line: &str) {
    let words: Vec<&str> = line
        .split_whitespace()
        .skip(1)
        .take_while(|w| {
            w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-')
        })
        .collect();
    let out = Command::new(bin())
        .args(&words)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{file}: `llmage {}` --help failed",
        words.join(" ")
    );
    for flag in line
        .split(|c: char| c.is_whitespace() || c == '[' || c == ']' || c == '=')
        .filter(|t| t.starts_with("--"))
    {
        assert!(
            help.contains(flag),
            "{file}: `{line}`: `{flag}` is not an option of `llmage {}`",
            words.join(" ")
        );
    }
}

/// Run the `sh` blocks of one file as one script; its output.
async fn run_file(file: &Path, server: &Server, data: &Path) -> String {
    let name = name_of(file);
    let text = std::fs::read_to_string(file).unwrap();
    let mut script = String::from("set -eu\n");
    let mut count = 0;
    for block in blocks(&text).into_iter().filter(|b| b.info == "sh") {
        script.push_str(&format!("echo '== {name}:{}'\n", block.line));
        script.push_str(&block.text.replace("http://127.0.0.1:8080", &server.base));
        script.push('\n');
        count += 1;
    }
    if count == 0 {
        return String::new();
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::os::unix::fs::symlink(data, dir.join("data")).unwrap();
    std::os::unix::fs::symlink(
        server.data_dir.path().join("server.log"),
        dir.join("server.log"),
    )
    .unwrap();
    std::fs::write(dir.join("02.jpg"), jpeg("02", 96)).unwrap();
    std::fs::create_dir(dir.join("out")).unwrap();
    let path = format!(
        "{}:{}",
        bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env("PATH", path)
        .env("LLMAGE_BASE_URL", &server.base)
        .env_remove("LLMAGE_API_KEY");
    if data == server.data_dir.path() {
        cmd.env("DATABASE_URL", &server.database_url);
    } else {
        cmd.env_remove("DATABASE_URL");
    }
    let out = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{name}: a command failed (the last `== file:line` marker is its block)\n{stdout}\n{stderr}"
    );
    format!("{stdout}{stderr}")
}

/// Demo mode as a reader starts it: trial credits and the sandbox cashier on (the test harness
/// turns both off by default).
fn reader_demo() -> Opts {
    let mut opts = Opts::demo();
    opts.env = vec![
        ("LLMAGE_SIGNUP_CREDITS".into(), "1000".into()),
        ("LLMAGE_SANDBOX__CASHIER".into(), "true".into()),
    ];
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sh_block_of_the_docs_runs_against_a_demo_server() {
    let mut ran = Vec::new();
    for file in doc_files() {
        let name = name_of(&file);
        let server = Server::start(reader_demo()).await;
        let separate = tempfile::tempdir().unwrap();
        let data = if name == "operating.md" {
            separate.path().to_path_buf()
        } else {
            server.data_dir.path().to_path_buf()
        };
        if name == "README.md" {
            // The reader logged in with this phone in the console before making it an admin.
            common::console::login(&server, "13912345678").await;
        }
        let output = run_file(&file, &server, &data).await;
        let expected: &[&str] = match name.as_str() {
            "README.md" => &[
                "is now admin",
                "\"object\":\"chat.completion\"",
                "data: [DONE]",
                "\"status\":\"CREATED\"",
                "每百万 tokens",
            ],
            "api.md" => &[
                "\"finish_reason\":\"tool_calls\"",
                "\"status\":\"SUCCEEDED\"",
                "\"csrf_token\"",
                "local-vllm",
                "Qwen/Qwen3-8B",
                "\"credits\":300,\"balance\"",
                "is now admin",
            ],
            "operating.md" => &[
                "channel 1 added",
                "channel 6 added",
                "zhipu",
                "\"status\":\"ok\"",
            ],
            _ => &[],
        };
        for needle in expected {
            assert!(
                output.contains(needle),
                "{name}: {needle:?} not in\n{output}"
            );
        }
        if !output.is_empty() {
            ran.push(name);
        }
    }
    for must in ["README.md", "api.md", "operating.md"] {
        assert!(
            ran.iter().any(|n| n == must),
            "{must} ran no block: {ran:?}"
        );
    }
}
