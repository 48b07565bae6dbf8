//! Async image/video tasks: durable rows (never in-memory futures), a service that accepts
//! submissions, an engine that drives each task CREATED → PENDING → RUNNING → SUCCEEDED/FAILED
//! against its vendor, archives results and settles money, and signed completion callbacks.

pub mod callback;
pub mod engine;
pub mod service;
pub mod store;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::vendor::Vendor;

/// Task states, spelled as the seed spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Stored; the vendor has not accepted it yet.
    Created,
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Created => "CREATED",
            TaskStatus::Pending => "PENDING",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Succeeded => "SUCCEEDED",
            TaskStatus::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        Some(match s {
            "CREATED" => TaskStatus::Created,
            "PENDING" => TaskStatus::Pending,
            "RUNNING" => TaskStatus::Running,
            "SUCCEEDED" => TaskStatus::Succeeded,
            "FAILED" => TaskStatus::Failed,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(self, TaskStatus::Succeeded | TaskStatus::Failed)
    }
}

/// An input file of a task: stored by us (`file_id`) or a URL the client gave.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TaskInput {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
}

/// Archived results: ids of our stored files.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TaskResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
    /// A small JPEG of the image or the video's cover, for the gallery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
}

/// A task row.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub user_id: i64,
    pub key_id: i64,
    pub model: String,
    pub category: String,
    pub params: Map<String, Value>,
    pub inputs: Vec<TaskInput>,
    pub vendor: Vendor,
    pub channel_id: Option<i64>,
    pub vendor_task_id: Option<String>,
    pub status: TaskStatus,
    pub error: Option<String>,
    pub attempts: i64,
    pub submit_started_at: Option<i64>,
    pub polls: i64,
    pub deadline_at: i64,
    pub reservation_id: Option<String>,
    pub credits: i64,
    pub usage: Option<Value>,
    pub result: TaskResult,
    pub callback_url: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// Digest of the checked submission (`None` on tasks made before it was recorded).
    pub request_hash: Option<String>,
    /// Deleted by its owner (`DELETE /v1/videos/{id}`): no longer shown to them.
    pub hidden: bool,
    /// The X-Request-Id answered for the submission.
    pub request_id: Option<String>,
}

/// The link to a stored file.
pub fn file_url(base_url: &str, file_id: &str) -> String {
    format!("{}/idfile?path={file_id}", base_url.trim_end_matches('/'))
}

impl Task {
    /// The task as `GET /llmage/v1/tasks` shows it (the seed's shape plus a few descriptive
    /// fields): `usage`, `image`, `video` once SUCCEEDED, `error` once FAILED.
    pub fn to_json(&self, base_url: &str) -> Value {
        let mut v = json!({
            "taskid": self.id,
            "status": self.status.as_str(),
            "model": self.model,
            "catelogid": self.category,
            "created_at": self.created_at / 1000,
            "updated_at": self.updated_at / 1000,
        });
        let Some(obj) = v.as_object_mut() else {
            return v;
        };
        if let Some(id) = &self.request_id {
            obj.insert("request_id".into(), Value::String(id.clone()));
        }
        // What was asked (the checked scalar parameters; uploaded files are not repeated).
        obj.insert("params".into(), Value::Object(self.params.clone()));
        match self.status {
            TaskStatus::Succeeded => {
                if let Some(usage) = &self.usage {
                    obj.insert("usage".into(), usage.clone());
                }
                if let Some(id) = &self.result.image {
                    obj.insert("image".into(), Value::String(file_url(base_url, id)));
                }
                if let Some(id) = &self.result.video {
                    obj.insert("video".into(), Value::String(file_url(base_url, id)));
                }
                if let Some(id) = &self.result.thumbnail {
                    obj.insert("thumbnail".into(), Value::String(file_url(base_url, id)));
                }
                if let Some(t) = self.finished_at {
                    obj.insert("finished_at".into(), Value::from(t / 1000));
                }
            }
            TaskStatus::Failed => {
                obj.insert(
                    "error".into(),
                    Value::String(self.error.clone().unwrap_or_else(|| "task failed".into())),
                );
                if let Some(t) = self.finished_at {
                    obj.insert("finished_at".into(), Value::from(t / 1000));
                }
            }
            TaskStatus::Created | TaskStatus::Pending | TaskStatus::Running => {}
        }
        v
    }
}
