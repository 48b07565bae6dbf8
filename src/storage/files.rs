//! Stored files: user uploads (task inputs) and archived generation results. The bytes live in an
//! object store (the local filesystem under `<data_dir>/files` today, S3 later: the store is an
//! `Arc<dyn ObjectStore>`), one row per file in the `files` table says who owns it, its type,
//! size, ETag and object key.
//!
//! A file's id is 128 random bits (32 lowercase hex characters) and is the only thing a client
//! ever names: it is served without an API key at `GET /idfile?path=<id>`, so it must be
//! unguessable. Object keys are derived from the id on write (`ab/cd/<id>`) and read back from the
//! row, never from client input; anything that is not a well-formed id is "not found" without
//! touching the database or the store.
//!
//! Writes put the object first and then the row, so a row never points at a missing object (a
//! failed row insert deletes the orphan object, best effort).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use tokio::io::AsyncReadExt;

use crate::storage::staging::{StagedFile, Staging, StagingError};
use crate::storage::{Db, StoreError};
use crate::util::clock::now_ms;

/// Why a file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Uploaded by a user as a task input.
    Input,
    /// A generation result we archived.
    Result,
}

impl FileKind {
    /// The value in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Input => "input",
            FileKind::Result => "result",
        }
    }

    /// Parse the `kind` column.
    pub fn parse(s: &str) -> Option<FileKind> {
        match s {
            "input" => Some(FileKind::Input),
            "result" => Some(FileKind::Result),
            _ => None,
        }
    }
}

/// One stored file (a row of the `files` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// 32 lowercase hex characters (128 random bits); the public handle.
    pub id: String,
    pub user_id: i64,
    pub task_id: Option<String>,
    pub kind: FileKind,
    /// Normalised media type (`type/subtype`, lowercase, no parameters).
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// Strong ETag, quoted: `"<hex of the first 16 bytes of the SHA-256 of the content>"`.
    pub etag: String,
    /// Where the bytes are in the object store.
    pub object_key: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// File storage errors.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// No such file (unknown or malformed id).
    #[error("file not found")]
    NotFound,
    /// The row exists but the object does not (lost data).
    #[error("object {0} of a stored file is missing")]
    ObjectMissing(String),
    /// A byte range outside the file.
    #[error("range {start}..{end} is outside the file (size {size})")]
    InvalidRange { start: u64, end: u64, size: u64 },
    /// The object's size differs from its row.
    #[error("object {key} has {actual} bytes, its row says {expected}")]
    SizeMismatch {
        key: String,
        expected: u64,
        actual: u64,
    },
    /// The object store failed.
    #[error("object store error: {0}")]
    Object(#[from] object_store::Error),
    /// The store's local directory could not be created.
    #[error("cannot create the file store directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A staged file could not be written or read.
    #[error(transparent)]
    Staging(#[from] StagingError),
}

impl From<sqlx::Error> for FileError {
    fn from(e: sqlx::Error) -> Self {
        FileError::Store(StoreError::Sql(e))
    }
}

/// A byte stream of (part of) a stored file.
pub type FileStream = BoxStream<'static, Result<Bytes, FileError>>;

/// The files table plus the object store holding their bytes. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FileStore {
    db: Db,
    store: Arc<dyn ObjectStore>,
    staging: Staging,
    /// Size of the parts a staged file is copied into the object store in; a file no larger goes
    /// in one request.
    part_bytes: usize,
}

/// S3's minimum part size (every part but the last).
const S3_PART_BYTES: usize = 5 * 1024 * 1024;
/// Parts for the local filesystem, which has no minimum: less memory per upload in flight.
const LOCAL_PART_BYTES: usize = 1024 * 1024;

/// Whether `id` has the shape of a file id: exactly 32 lowercase hex characters.
pub fn is_valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The object key for an id: `ab/cd/<id>` (two fan-out levels keep directories small).
pub fn object_key_for(id: &str) -> String {
    match (id.get(0..2), id.get(2..4)) {
        (Some(a), Some(b)) => format!("{a}/{b}/{id}"),
        _ => id.to_owned(),
    }
}

/// Strong ETag of some content: quoted hex of the first 16 bytes of its SHA-256.
pub fn etag_of(bytes: &[u8]) -> String {
    etag_from_digest(&Sha256::digest(bytes).into())
}

/// The etag of content whose SHA-256 is `digest` (the same as [`etag_of`] its bytes).
fn etag_from_digest(digest: &[u8; 32]) -> String {
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// The row of a new file (a fresh id and its object key), before its object is written.
fn new_row(
    user_id: i64,
    task_id: Option<&str>,
    kind: FileKind,
    mime: &str,
    size: u64,
    etag: String,
) -> StoredFile {
    let id = crate::util::ids::random_id();
    StoredFile {
        object_key: object_key_for(&id),
        id,
        user_id,
        task_id: task_id.map(str::to_owned),
        kind,
        mime: normalize_mime(mime),
        size,
        etag,
        created_at: now_ms(),
    }
}

/// Normalise a media type: the part before any `;`, trimmed and lowercased, when it is a
/// well-formed `type/subtype` of token characters; `application/octet-stream` otherwise.
pub fn normalize_mime(mime: &str) -> String {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match essence.split_once('/') {
        Some((t, s)) if token(t) && token(s) => essence,
        _ => "application/octet-stream".to_owned(),
    }
}

/// A file name extension for a media type (`bin` when unknown).
pub fn extension_for_mime(mime: &str) -> &'static str {
    match mime {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "image/bmp" => "bmp",
        "image/tiff" => "tiff",
        "image/avif" => "avif",
        "image/heic" => "heic",
        "image/svg+xml" => "svg",
        "video/mp4" => "mp4",
        "video/webm" => "webm",
        "video/quicktime" => "mov",
        "video/x-matroska" => "mkv",
        "video/mpeg" => "mpeg",
        "audio/mpeg" => "mp3",
        "audio/mp4" => "m4a",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/ogg" => "ogg",
        "audio/flac" => "flac",
        "audio/aac" => "aac",
        "application/json" => "json",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        _ => "bin",
    }
}

impl FileStore {
    /// A store over any object store (S3 and friends; tests may use an in-memory one).
    /// Incoming files are staged in `staging` (the server's is `<data_dir>/tmp`) before they
    /// are copied into `store`.
    pub fn new(db: Db, store: Arc<dyn ObjectStore>, staging: Staging) -> FileStore {
        FileStore {
            db,
            store,
            staging,
            part_bytes: S3_PART_BYTES,
        }
    }

    /// Where incoming files are written as they arrive.
    pub fn staging(&self) -> &Staging {
        &self.staging
    }

    /// A store on the local filesystem under `root` (created if missing).
    pub fn local(db: Db, root: &Path, staging: Staging) -> Result<FileStore, FileError> {
        std::fs::create_dir_all(root).map_err(|source| FileError::Io {
            path: root.display().to_string(),
            source,
        })?;
        let store = LocalFileSystem::new_with_prefix(root)?;
        Ok(FileStore {
            part_bytes: LOCAL_PART_BYTES,
            ..FileStore::new(db, Arc::new(store), staging)
        })
    }

    /// A store in an S3 bucket (`s3://bucket/optional/prefix`), AWS or S3-compatible.
    pub fn s3(
        db: Db,
        config: &crate::config::StorageConfig,
        staging: Staging,
    ) -> Result<FileStore, FileError> {
        let url = config.url.as_deref().unwrap_or_default();
        let rest = url.strip_prefix("s3://").unwrap_or(url);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
        }
        let store = builder.build()?;
        let prefix = prefix.trim_matches('/');
        Ok(if prefix.is_empty() {
            FileStore::new(db, Arc::new(store), staging)
        } else {
            FileStore::new(
                db,
                Arc::new(object_store::prefix::PrefixStore::new(store, prefix)),
                staging,
            )
        })
    }

    /// Store `bytes` as a new file and return its row. The object is written before the row.
    pub async fn put(
        &self,
        user_id: i64,
        task_id: Option<&str>,
        kind: FileKind,
        mime: &str,
        bytes: Bytes,
    ) -> Result<StoredFile, FileError> {
        let row = new_row(
            user_id,
            task_id,
            kind,
            mime,
            bytes.len() as u64,
            etag_of(&bytes),
        );
        self.store
            .put(&self.location(&row)?, PutPayload::from(bytes))
            .await?;
        self.insert_row(row).await
    }

    /// Store a staged file as a new file and return its row: copied into the object store a
    /// part at a time (one part in flight, never the whole file in memory), then the row.
    pub async fn put_staged(
        &self,
        user_id: i64,
        task_id: Option<&str>,
        kind: FileKind,
        mime: &str,
        staged: &StagedFile,
    ) -> Result<StoredFile, FileError> {
        let size = usize::try_from(staged.size).unwrap_or(usize::MAX);
        if size <= self.part_bytes {
            let bytes = staged.read_all().await?;
            return self.put(user_id, task_id, kind, mime, bytes).await;
        }
        let etag = etag_from_digest(&staged.sha256);
        let row = new_row(user_id, task_id, kind, mime, staged.size, etag);
        let upload = self.store.put_multipart(&self.location(&row)?).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_bytes);
        if let Err(e) = copy_into(staged, &mut writer).await {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(error = %abort, key = %row.object_key, "cannot abort a multipart upload");
            }
            return Err(e);
        }
        writer.finish().await?;
        self.insert_row(row).await
    }

    /// The row of a file whose object is written (a failed insert deletes the object, best
    /// effort).
    async fn insert_row(&self, file: StoredFile) -> Result<StoredFile, FileError> {
        let inserted = sqlx::query(
            "INSERT INTO files (id, user_id, task_id, kind, mime, size, etag, object_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&file.id)
        .bind(file.user_id)
        .bind(file.task_id.as_deref())
        .bind(file.kind.as_str())
        .bind(&file.mime)
        .bind(file.size as i64)
        .bind(&file.etag)
        .bind(&file.object_key)
        .bind(file.created_at)
        .execute(self.db.writer())
        .await;
        if let Err(e) = inserted {
            if let Err(del) = self.store.delete(&self.location(&file)?).await {
                tracing::warn!(error = %del, key = %file.object_key, "cannot delete an orphan object");
            }
            return Err(e.into());
        }
        Ok(file)
    }

    /// The file with this id, if any. A malformed id is `None` without a database query.
    pub async fn meta(&self, id: &str) -> Result<Option<StoredFile>, FileError> {
        if !is_valid_id(id) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, user_id, task_id, kind, mime, size, etag, object_key, created_at \
             FROM files WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.reader())
        .await?;
        row.map(|r| file_from_row(&r)).transpose()
    }

    /// Delete a file: its row, then its object (a row never points at a missing object). An
    /// unknown id is `NotFound`.
    pub async fn delete(&self, id: &str) -> Result<(), FileError> {
        let file = self.meta(id).await?.ok_or(FileError::NotFound)?;
        sqlx::query("DELETE FROM files WHERE id = $1")
            .bind(&file.id)
            .execute(self.db.writer())
            .await?;
        self.store.delete(&self.location(&file)?).await?;
        Ok(())
    }

    /// All bytes of a file.
    pub async fn read(&self, file: &StoredFile) -> Result<Bytes, FileError> {
        let bytes = self
            .store
            .get(&self.location(file)?)
            .await
            .map_err(|e| object_error(e, file))?
            .bytes()
            .await
            .map_err(|e| object_error(e, file))?;
        check_size(file, bytes.len() as u64)?;
        Ok(bytes)
    }

    /// The bytes `range` of a file (end exclusive); only that range is read from the store.
    pub async fn read_range(
        &self,
        file: &StoredFile,
        range: Range<u64>,
    ) -> Result<Bytes, FileError> {
        check_range(file, &range)?;
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let expected = range.end - range.start;
        let bytes = self
            .store
            .get_range(&self.location(file)?, range)
            .await
            .map_err(|e| object_error(e, file))?;
        if bytes.len() as u64 != expected {
            return Err(FileError::SizeMismatch {
                key: file.object_key.clone(),
                expected,
                actual: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }

    /// A stream of the whole file (`None`) or of `range` (end exclusive), for responses too big
    /// to buffer. Fails before the first byte when the object is missing or its size differs
    /// from the row.
    pub async fn open(
        &self,
        file: &StoredFile,
        range: Option<Range<u64>>,
    ) -> Result<FileStream, FileError> {
        if let Some(range) = &range {
            check_range(file, range)?;
            if range.is_empty() {
                return Ok(futures_util::stream::empty().boxed());
            }
        }
        let options = GetOptions::new().with_range(range);
        let result = self
            .store
            .get_opts(&self.location(file)?, options)
            .await
            .map_err(|e| object_error(e, file))?;
        check_size(file, result.meta.size)?;
        let key = file.object_key.clone();
        Ok(result
            .into_stream()
            .map(move |chunk| {
                chunk.map_err(|e| {
                    tracing::error!(error = %e, key = %key, "reading a stored file failed");
                    FileError::Object(e)
                })
            })
            .boxed())
    }

    fn location(&self, file: &StoredFile) -> Result<ObjectPath, FileError> {
        Ok(ObjectPath::parse(&file.object_key).map_err(object_store::Error::from)?)
    }
}

/// Copy a staged file into a multipart upload, a buffer at a time, one part in flight.
async fn copy_into(staged: &StagedFile, writer: &mut WriteMultipart) -> Result<(), FileError> {
    let mut file = staged.open().await?;
    let mut buf = vec![0; 256 * 1024];
    loop {
        let n = file.read(&mut buf).await.map_err(|source| FileError::Io {
            path: "a staged file".into(),
            source,
        })?;
        if n == 0 {
            return Ok(());
        }
        writer.wait_for_capacity(1).await?;
        writer.write(&buf[..n]);
    }
}

fn file_from_row(row: &AnyRow) -> Result<StoredFile, FileError> {
    let id: String = row.try_get("id")?;
    let kind: String = row.try_get("kind")?;
    let kind = FileKind::parse(&kind)
        .ok_or_else(|| StoreError::bad_row("files", &id, format_args!("unknown kind `{kind}`")))?;
    let size: i64 = row.try_get("size")?;
    let size = u64::try_from(size)
        .map_err(|_| StoreError::bad_row("files", &id, format_args!("negative size {size}")))?;
    Ok(StoredFile {
        id,
        user_id: row.try_get("user_id")?,
        task_id: row.try_get("task_id")?,
        kind,
        mime: row.try_get("mime")?,
        size,
        etag: row.try_get("etag")?,
        object_key: row.try_get("object_key")?,
        created_at: row.try_get("created_at")?,
    })
}

fn object_error(e: object_store::Error, file: &StoredFile) -> FileError {
    match e {
        object_store::Error::NotFound { .. } => FileError::ObjectMissing(file.object_key.clone()),
        e => FileError::Object(e),
    }
}

fn check_size(file: &StoredFile, actual: u64) -> Result<(), FileError> {
    if actual == file.size {
        Ok(())
    } else {
        Err(FileError::SizeMismatch {
            key: file.object_key.clone(),
            expected: file.size,
            actual,
        })
    }
}

fn check_range(file: &StoredFile, range: &Range<u64>) -> Result<(), FileError> {
    if range.start > range.end || range.end > file.size {
        return Err(FileError::InvalidRange {
            start: range.start,
            end: range.end,
            size: file.size,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, FileStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/t.db?mode=rwc", dir.path().display()))
            .await
            .unwrap();
        let staging = Staging::new(&dir.path().join("tmp")).unwrap();
        let files = FileStore::local(db, &dir.path().join("files"), staging).unwrap();
        (dir, files)
    }

    /// A staged file larger than one part goes up as a multipart upload and reads back whole,
    /// with the same etag as the one-shot `put` gives the same bytes.
    #[tokio::test]
    async fn staged_files_over_one_part_round_trip() {
        let (_dir, files) = store().await;
        let content: Vec<u8> = (0..(3 * files.part_bytes + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        let staged = files.staging().stage_bytes_blocking(&content).unwrap();
        let put = files
            .put_staged(7, Some("task-2"), FileKind::Input, "image/jpeg", &staged)
            .await
            .unwrap();
        assert_eq!(put.size, content.len() as u64);
        assert_eq!(put.etag, etag_of(&content));
        let back = files.read(&put).await.unwrap();
        assert_eq!(back.as_ref(), content.as_slice());
    }

    /// A row that does not decode is an error naming the row, never a made-up kind or size.
    #[tokio::test]
    async fn a_row_with_a_bad_kind_or_size_is_an_error_naming_it() {
        let (_dir, files) = store().await;
        let put = files
            .put(
                7,
                None,
                FileKind::Input,
                "image/png",
                Bytes::from_static(b"x"),
            )
            .await
            .unwrap();
        for (set, problem) in [
            ("kind = 'bogus'", "unknown kind `bogus`"),
            ("kind = 'input', size = -1", "negative size -1"),
        ] {
            sqlx::query(&format!("UPDATE files SET {set} WHERE id = $1"))
                .bind(&put.id)
                .execute(files.db.writer())
                .await
                .unwrap();
            let err = files.meta(&put.id).await.unwrap_err();
            assert!(
                matches!(&err, FileError::Store(StoreError::BadRow { table: "files", id, .. }) if *id == put.id),
                "{err}"
            );
            assert_eq!(err.to_string(), format!("files row {}: {problem}", put.id));
        }
    }

    #[tokio::test]
    async fn files_put_meta_read_round_trip() {
        let (dir, files) = store().await;
        let content = Bytes::from_static(b"0123456789abcdef-hello");
        let put = files
            .put(
                7,
                Some("task-1"),
                FileKind::Result,
                "Image/PNG; q=1",
                content.clone(),
            )
            .await
            .unwrap();
        assert!(is_valid_id(&put.id));
        assert_eq!(put.mime, "image/png");
        assert_eq!(put.size, content.len() as u64);
        assert_eq!(put.etag, etag_of(&content));
        assert_eq!(put.etag.len(), 34);
        assert_eq!(
            put.object_key,
            format!("{}/{}/{}", &put.id[0..2], &put.id[2..4], put.id)
        );
        // The object is where the key says, under the root.
        let on_disk = dir.path().join("files").join(&put.object_key);
        assert_eq!(std::fs::read(on_disk).unwrap(), content.as_ref());

        let meta = files.meta(&put.id).await.unwrap().unwrap();
        assert_eq!(meta, put);
        assert_eq!(meta.task_id.as_deref(), Some("task-1"));
        assert_eq!(meta.kind, FileKind::Result);

        assert_eq!(files.read(&meta).await.unwrap(), content);
        assert_eq!(files.read_range(&meta, 0..4).await.unwrap(), &b"0123"[..]);
        assert_eq!(
            files.read_range(&meta, 16..22).await.unwrap(),
            &b"-hello"[..]
        );
        assert!(files.read_range(&meta, 3..3).await.unwrap().is_empty());
        assert!(matches!(
            files.read_range(&meta, 20..23).await,
            Err(FileError::InvalidRange { .. })
        ));

        let streamed: Vec<Bytes> = files
            .open(&meta, Some(2..6))
            .await
            .unwrap()
            .map(|c| c.unwrap())
            .collect()
            .await;
        assert_eq!(streamed.concat(), b"2345");
        let whole: Vec<Bytes> = files
            .open(&meta, None)
            .await
            .unwrap()
            .map(|c| c.unwrap())
            .collect()
            .await;
        assert_eq!(whole.concat(), content.as_ref());

        // An input without a task, and an empty file.
        let empty = files
            .put(7, None, FileKind::Input, "not a mime", Bytes::new())
            .await
            .unwrap();
        let meta = files.meta(&empty.id).await.unwrap().unwrap();
        assert_eq!(meta.task_id, None);
        assert_eq!(meta.kind, FileKind::Input);
        assert_eq!(meta.mime, "application/octet-stream");
        assert_eq!(meta.size, 0);
        assert!(files.read(&meta).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn files_unknown_or_malformed_ids_are_none() {
        let (_dir, files) = store().await;
        let unknown = crate::util::ids::random_id();
        assert_eq!(files.meta(&unknown).await.unwrap(), None);
        for bad in [
            "",
            "../llmage.db",
            "/etc/passwd",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "ab/cd/0123456789abcdef0123456789",
        ] {
            assert!(!is_valid_id(bad), "{bad}");
            assert_eq!(files.meta(bad).await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn files_missing_object_is_reported() {
        let (dir, files) = store().await;
        let put = files
            .put(
                1,
                None,
                FileKind::Input,
                "video/mp4",
                Bytes::from_static(b"abc"),
            )
            .await
            .unwrap();
        std::fs::remove_file(dir.path().join("files").join(&put.object_key)).unwrap();
        assert!(matches!(
            files.read(&put).await,
            Err(FileError::ObjectMissing(_))
        ));
        assert!(matches!(
            files.open(&put, None).await,
            Err(FileError::ObjectMissing(_))
        ));
    }

    #[test]
    fn files_helpers() {
        assert_eq!(extension_for_mime("video/mp4"), "mp4");
        assert_eq!(extension_for_mime("application/x-unknown"), "bin");
        assert_eq!(normalize_mime(" VIDEO/MP4 "), "video/mp4");
        assert_eq!(
            normalize_mime("text/html\r\nX: y"),
            "application/octet-stream"
        );
        assert_eq!(normalize_mime(""), "application/octet-stream");
        assert_eq!(FileKind::parse("input"), Some(FileKind::Input));
        assert_eq!(
            FileKind::parse(FileKind::Result.as_str()),
            Some(FileKind::Result)
        );
    }
}
