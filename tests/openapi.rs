//! The OpenAPI document cannot drift from the server: it validates as OpenAPI 3.1, it describes
//! exactly the routes the router registers (every documented operation is served, and the router
//! registers nothing but documented handlers), every catalog model appears with its parameter
//! table, and the docs page's examples run against `serve --demo`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test code: a failed setup should stop the test, and its helpers may spawn freely"
)]

mod common;

use std::process::Command;

use common::{DEMO_KEY, Opts, Server};
use serde_json::Value;

async fn document(server: &Server) -> Value {
    let (status, doc) = server.get_json("/llmage/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    doc
}

/// (method, path) of every operation in the document.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.push((method.clone(), path.clone()));
        }
    }
    ops
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1_and_matches_the_router() {
    let server = Server::start(Opts::demo()).await;
    let doc = document(&server).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let file = server.data_dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let check = Command::new("python3")
        .args([
            "-c",
            "import json, sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')",
        ])
        .arg(&file)
        .output()
        .expect("python3");
    assert!(
        check.status.success(),
        "not a valid OpenAPI 3.1 document: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // The router registers handlers only through `routes!` (which documents them): no plain
    // `.route(`, `.nest(` or `.merge(` that would add an undocumented one, and as many handlers
    // as the document has operations.
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/mod.rs")).unwrap();
    for forbidden in [
        ".route(",
        ".nest(",
        ".merge(",
        ".nest_service(",
        ".route_service(",
    ] {
        assert!(
            !source.contains(forbidden),
            "src/api/mod.rs registers a route with {forbidden}"
        );
    }
    let mut handlers = 0;
    for chunk in source.split("routes!(").skip(1) {
        let inner = &chunk[..chunk.find(')').unwrap()];
        handlers += inner.split(',').filter(|h| !h.trim().is_empty()).count();
    }
    let ops = operations(&doc);
    // `/v1/…` operations are the OpenAI-shaped `/llmage/v1/…` ones again (the same handlers,
    // reached by rewriting the path before routing): each is a copy of its `/llmage/v1` twin.
    let mirrored: Vec<&(String, String)> =
        ops.iter().filter(|(_, p)| p.starts_with("/v1/")).collect();
    assert!(mirrored.len() >= 10, "{mirrored:?}");
    for (method, path) in &mirrored {
        let twin = format!("/llmage{path}");
        let (ours, theirs) = (&doc["paths"][path][method], &doc["paths"][&twin][method]);
        assert!(theirs.is_object(), "{method} {path} has no {twin}");
        assert_eq!(ours["summary"], theirs["summary"], "{method} {path}");
        assert_eq!(
            ours["requestBody"], theirs["requestBody"],
            "{method} {path}"
        );
        assert_eq!(
            ours["responses"]["200"], theirs["responses"]["200"],
            "{method} {path}"
        );
    }
    assert_eq!(
        handlers,
        ops.len() - mirrored.len(),
        "routes! handlers vs documented operations"
    );

    // Every documented operation is served (the router's fallback answers neither). A client
    // without a connection pool: the validator above may take longer than the server keeps an
    // idle connection open (`header_read_timeout_secs`) on a loaded machine.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for (method, path) in &ops {
        let url = server.url(&path.replace("{id}", "1").replace("{path}", "app.css"));
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let resp = http.request(method.clone(), &url).send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert!(
            !(status == 404 && body.contains("no such endpoint")) && status != 405,
            "{method} {path} is documented but not served: {status} {body}"
        );
    }
    // And an undocumented one is not.
    let (status, body) = server.get_json("/llmage/v1/no-such-thing", None).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn every_catalog_model_appears_with_its_parameters() {
    let server = Server::start(Opts::demo()).await;
    let doc = document(&server).await;
    let (_, models) = server.get_json("/llmage/v1/models", Some(DEMO_KEY)).await;
    let schemas = &doc["components"]["schemas"];
    let chat_examples = &schemas["ChatRequest"]["properties"]["model"]["examples"];
    let mut checked = 0;
    for model in models["data"].as_array().unwrap() {
        let id = model["id"].as_str().unwrap();
        for (category, table) in model["parameters"].as_object().unwrap() {
            if category == "t2t" {
                assert!(
                    chat_examples.as_array().unwrap().iter().any(|m| m == id),
                    "{id} not among the chat models"
                );
                continue;
            }
            let endpoint = if category == "t2i" { "image" } else { "video" };
            for suffix in ["", ".multipart"] {
                let name = format!("params.{id}.{category}{suffix}");
                let schema = &schemas[&name];
                assert!(schema.is_object(), "{name} missing");
                let media = if suffix.is_empty() {
                    "application/json"
                } else {
                    "multipart/form-data"
                };
                let variants = &doc["paths"][format!("/llmage/v1/{endpoint}/generations")]["post"]
                    ["requestBody"]["content"][media]["schema"]["oneOf"];
                assert!(
                    variants
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|v| v["$ref"] == format!("#/components/schemas/{name}")),
                    "{name} is not a body of /{endpoint}/generations"
                );
                let required = schema["required"].as_array().unwrap();
                for row in table.as_array().unwrap() {
                    let param = row["name"].as_str().unwrap();
                    let prop = &schema["properties"][param];
                    assert!(prop.is_object(), "{name}: no property {param}");
                    if row["required"] == true {
                        assert!(
                            required.iter().any(|r| r == param),
                            "{name}: {param} not required"
                        );
                    }
                    if let Some(allowed) = row["allowed"].as_array() {
                        for value in allowed {
                            assert!(
                                prop["enum"].as_array().unwrap().contains(value),
                                "{name}.{param}: {value} not in enum"
                            );
                        }
                    }
                    for (ours, theirs) in [
                        ("min", "minimum"),
                        ("max", "maximum"),
                        ("default", "default"),
                    ] {
                        if !row[ours].is_null() {
                            assert_eq!(row[ours], prop[theirs], "{name}.{param}.{theirs}");
                        }
                    }
                    if row["type"] == "file" && !suffix.is_empty() {
                        assert!(
                            prop["contentMediaType"].is_string(),
                            "{name}.{param} is not an upload"
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} model schemas checked");
}

#[tokio::test]
async fn the_docs_examples_run_against_the_demo_server() {
    let server = Server::start(Opts::demo()).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/web/assets");
    let mut ran = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("example-") else {
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("{{BASE_URL}}", &server.url("/llmage/v1"));
        let file = server.data_dir.path().join(&name);
        std::fs::write(&file, text).unwrap();
        let program = match rest.rsplit('.').next().unwrap() {
            "sh" => "bash",
            "py" => "python3",
            "mjs" => "node",
            other => panic!("no runner for .{other}"),
        };
        let out = tokio::process::Command::new(program)
            .arg(&file)
            .env("LLMAGE_API_KEY", DEMO_KEY)
            .output()
            .await
            .unwrap_or_else(|e| panic!("{program} is needed for {name}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{name} failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = match rest {
            "chat.sh" => "\"finish\":\"1\"",
            "stream.sh" => "data: [DONE]",
            "image.sh" | "requests_tasks.py" | "fetch.mjs" => "SUCCEEDED",
            "openai_sdk.py" => "沙盒",
            other => panic!("no expectation for {other}"),
        };
        assert!(
            stdout.contains(expected),
            "{name}: expected {expected:?} in\n{stdout}"
        );
        ran.push(name);
    }
    assert_eq!(ran.len(), 6, "{ran:?}");
}

fn has_chinese(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// The reference is Chinese first with English: every operation's summary and description, every
/// parameter's description (path, query, header, and the fields of the request bodies of every
/// media type), every response's description (the handlers' own and the shared errors), the
/// tags' and the security schemes' descriptions (every scheme has one) have a Chinese part and an
/// English one after the last ` / ` (the console shows the half of the current language).
#[tokio::test]
async fn every_description_of_the_reference_is_bilingual() {
    let server = Server::start(Opts::demo()).await;
    let doc = document(&server).await;
    let bilingual = |what: &str, text: &str| {
        let (zh, en) = text
            .rsplit_once(" / ")
            .unwrap_or_else(|| panic!("{what}: not `中文 / English`: {text}"));
        assert!(has_chinese(zh), "{what}: no Chinese part: {text}");
        assert!(
            !has_chinese(en) && en.chars().any(|c| c.is_ascii_alphabetic()),
            "{what}: no English part: {text}"
        );
    };
    let mut bodies = std::collections::BTreeSet::new();
    let mut checked = 0;
    let mut responses = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{method} {path}");
            bilingual(&format!("{what} summary"), op["summary"].as_str().unwrap());
            if let Some(d) = op["description"].as_str() {
                bilingual(&format!("{what} description"), d);
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                let d = p["description"].as_str().unwrap_or("");
                bilingual(&format!("{what} parameter {}", p["name"]), d);
            }
            if let Some(d) = op["requestBody"]["description"].as_str() {
                bilingual(&format!("{what} request body"), d);
            }
            for (media, content) in op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
            {
                if let Some(r) = content["schema"]["$ref"].as_str() {
                    bodies.insert(r.trim_start_matches("#/components/schemas/").to_owned());
                } else {
                    assert!(
                        content["schema"]["properties"].is_null(),
                        "{what} {media}: an inline body schema (name it to have its fields checked)"
                    );
                }
            }
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                let d = response["description"].as_str().unwrap_or("");
                bilingual(&format!("{what} response {status}"), d);
                responses += 1;
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
    assert!(
        responses > 4 * checked,
        "{responses} responses of {checked} operations"
    );
    for name in &bodies {
        let schema = &doc["components"]["schemas"][name];
        for (field, prop) in schema["properties"].as_object().into_iter().flatten() {
            let d = prop["description"].as_str().unwrap_or("");
            bilingual(&format!("body {name}.{field}"), d);
        }
    }
    assert!(bodies.contains("ChatRequest"), "{bodies:?}");
    for (name, tag) in doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (&t["name"], t))
    {
        bilingual(&format!("tag {name}"), tag["description"].as_str().unwrap());
    }
    for (name, scheme) in doc["components"]["securitySchemes"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let d = scheme["description"].as_str().unwrap_or("");
        bilingual(&format!("security scheme {name}"), d);
    }
}

/// Not just the operations: every `description` anywhere in the document (the top-level info,
/// shared component schemas and their fields, per-model parameter tables, security schemes) is
/// `中文 / English`, found by walking the whole JSON, so a new doc comment in English only fails
/// here. A property literally named `description` (a schema field, not a text) is not one. The
/// English half must not contain ` / ` itself (the console would split it there).
#[tokio::test]
async fn every_description_anywhere_in_the_document_is_bilingual() {
    let server = Server::start(Opts::demo()).await;
    let doc = document(&server).await;
    // Deliberate exceptions: (JSON pointer, reason). None at present.
    const EXCEPTIONS: &[(&str, &str)] = &[];
    fn walk(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                    match (k.as_str(), child) {
                        ("description", Value::String(text)) => {
                            out.push((here, text.clone()));
                        }
                        // `properties` maps field names to schemas: a field named `description`
                        // is a schema to walk into, not a text.
                        ("properties", Value::Object(fields)) => {
                            for (name, schema) in fields {
                                let field = format!(
                                    "{here}/{}",
                                    name.replace('~', "~0").replace('/', "~1")
                                );
                                walk(schema, &field, out);
                            }
                        }
                        _ => walk(child, &here, out),
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(&doc, "", &mut found);
    assert!(found.len() > 500, "only {} descriptions found", found.len());
    let not_bilingual: Vec<String> = found
        .iter()
        .filter(|(at, _)| !EXCEPTIONS.iter().any(|(e, _)| e == at))
        .filter(|(_, text)| match text.rsplit_once(" / ") {
            // The console shows the half after the last ` / ` in English: an English half with a
            // ` / ` of its own would be cut there, so the text just before the split (after any
            // earlier ` / `) must be Chinese too.
            Some((zh, en)) => {
                !has_chinese(zh.rsplit(" / ").next().unwrap_or(zh))
                    || has_chinese(en)
                    || !en.chars().any(|c| c.is_ascii_alphabetic())
            }
            None => true,
        })
        .map(|(at, text)| format!("{at}: {text}"))
        .collect();
    assert!(
        not_bilingual.is_empty(),
        "{} of {} descriptions not `中文 / English`:\n{}",
        not_bilingual.len(),
        found.len(),
        not_bilingual.join("\n")
    );
    for (at, _) in EXCEPTIONS {
        assert!(
            found.iter().any(|(f, _)| f == at),
            "exception {at} names no description"
        );
    }
}

/// Every `$ref` in the document (operations, bodies, responses, schemas) points at something the
/// document has: a schema dropped or renamed while an operation still names it would leave the
/// reference dangling, and clients generated from the document would fail on it.
#[tokio::test]
async fn every_reference_of_the_document_resolves() {
    let server = Server::start(Opts::demo()).await;
    let doc = document(&server).await;
    fn collect(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    match (k.as_str(), child) {
                        ("$ref", Value::String(r)) => out.push((at.to_owned(), r.clone())),
                        _ => collect(child, &format!("{at}/{k}"), out),
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    collect(child, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut refs = Vec::new();
    collect(&doc, "", &mut refs);
    assert!(refs.len() > 100, "only {} references found", refs.len());
    let dangling: Vec<String> = refs
        .iter()
        .filter(|(_, r)| {
            r.strip_prefix('#')
                .and_then(|pointer| doc.pointer(pointer))
                .is_none()
        })
        .map(|(at, r)| format!("{at}: {r}"))
        .collect();
    assert!(
        dangling.is_empty(),
        "dangling references:\n{}",
        dangling.join("\n")
    );
}

/// One source for required fields: for every seed model and category, the reference's required
/// list is exactly the catalog's (the table the model page shows), beyond the implicit `model`
/// and `catelogid`; for chat, the catalog's required fields or `messages`.
#[tokio::test]
async fn the_references_required_fields_are_the_catalogs() {
    let server = Server::start(Opts::demo()).await;
    let doc = document(&server).await;
    let (_, models) = server.get_json("/llmage/v1/models", Some(DEMO_KEY)).await;
    let schemas = &doc["components"]["schemas"];
    let names = |v: &Value| -> std::collections::BTreeSet<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|n| *n != "model" && *n != "catelogid")
            .map(str::to_owned)
            .collect()
    };
    let mut checked = 0;
    for model in models["data"].as_array().unwrap() {
        let id = model["id"].as_str().unwrap();
        for (category, table) in model["parameters"].as_object().unwrap() {
            let catalog: std::collections::BTreeSet<String> = table
                .as_array()
                .unwrap()
                .iter()
                .filter(|row| row["required"] == true)
                .map(|row| row["name"].as_str().unwrap().to_owned())
                .filter(|n| n != "model" && n != "catelogid")
                .collect();
            if category == "t2t" {
                let chat = &schemas["ChatRequest"];
                assert_eq!(names(&chat["required"]), Default::default(), "{id}");
                let alternatives = chat["anyOf"].as_array().expect("ChatRequest.anyOf");
                assert_eq!(names(&alternatives[0]["required"]), catalog, "{id} t2t");
                assert_eq!(alternatives[1]["required"], serde_json::json!(["messages"]));
                assert!(catalog.contains("prompt"), "{id}: {catalog:?}");
                checked += 1;
                continue;
            }
            for suffix in ["", ".multipart"] {
                let name = format!("params.{id}.{category}{suffix}");
                assert_eq!(
                    names(&schemas[&name]["required"]),
                    catalog,
                    "{name}: the reference's required fields are not the catalog's"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 25, "only {checked} checked");
}
