//! Files on their way in: an upload part or a vendor's result is written to a private temporary
//! file as its bytes arrive — never whole in memory — and sized, hashed and sniffed on the way,
//! with its size cap checked before each write. [`crate::storage::files::FileStore::put_staged`]
//! then copies it into the object store in bounded chunks.
//!
//! A staged file is deleted when the last handle to it is dropped (a refused submission, a
//! failed download, a stored file all leave nothing behind); files a killed process left are
//! removed when the next one opens the directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tempfile::TempPath;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Leading bytes kept in memory for type sniffing (every signature we know is shorter).
pub const HEAD_BYTES: usize = 64;

/// Why staging failed.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    /// The file would exceed its cap (nothing past the cap was written).
    #[error("more than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The temporary file could not be made, written or read.
    #[error("staging file in {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
}

/// The directory staged files are written to. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Staging {
    dir: Arc<PathBuf>,
}

impl Staging {
    /// Staging under `dir` (created 0700 if missing; files left there by a killed process are
    /// removed).
    pub fn new(dir: &Path) -> Result<Staging, StagingError> {
        let io = |source| StagingError::Io {
            dir: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        // Another process may share the directory: only files older than any request can be
        // are leftovers. Best effort: a file that cannot be removed only costs disk.
        for entry in std::fs::read_dir(dir).map_err(io)?.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > LEFTOVER_AGE);
            if stale && entry.file_name().to_string_lossy().starts_with(PREFIX) {
                let _removed = std::fs::remove_file(entry.path());
            }
        }
        Ok(Staging {
            dir: Arc::new(dir.to_owned()),
        })
    }

    /// Staging in a directory of its own under the system's temporary directory (tests and
    /// tools; the server stages under its data directory).
    pub fn in_temp_dir() -> Result<Staging, StagingError> {
        Staging::new(&std::env::temp_dir().join(format!("llmage-staging-{}", std::process::id())))
    }

    /// A new, empty staged file that takes at most `limit` bytes.
    pub async fn writer(&self, limit: u64) -> Result<StagingWriter, StagingError> {
        let dir = self.dir.clone();
        let made = tokio::task::spawn_blocking(move || {
            tempfile::Builder::new()
                .prefix(PREFIX)
                .tempfile_in(dir.as_path())
        })
        .await
        .map_err(|e| self.io(std::io::Error::other(e)))?
        .map_err(|e| self.io(e))?;
        let (file, path) = made.into_parts();
        Ok(StagingWriter {
            file: tokio::io::BufWriter::with_capacity(
                WRITE_BUFFER,
                tokio::fs::File::from_std(file),
            ),
            path,
            dir: self.dir.clone(),
            hasher: Sha256::new(),
            size: 0,
            head: Vec::with_capacity(HEAD_BYTES),
            limit,
        })
    }

    /// Stage bytes already in memory, blocking (for synchronous callers such as tests and
    /// tools; no size cap).
    pub fn stage_bytes_blocking(&self, bytes: &[u8]) -> Result<StagedFile, StagingError> {
        use std::io::Write;
        let mut made = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempfile_in(self.dir.as_path())
            .map_err(|e| self.io(e))?;
        made.write_all(bytes).map_err(|e| self.io(e))?;
        made.flush().map_err(|e| self.io(e))?;
        Ok(StagedFile {
            path: Arc::new(made.into_temp_path()),
            size: bytes.len() as u64,
            sha256: Sha256::digest(bytes).into(),
            head: Bytes::copy_from_slice(&bytes[..bytes.len().min(HEAD_BYTES)]),
        })
    }

    fn io(&self, source: std::io::Error) -> StagingError {
        StagingError::Io {
            dir: self.dir.display().to_string(),
            source,
        }
    }
}

/// Age after which a staged file in the directory is a leftover of a killed process (no upload
/// or download lives this long).
const LEFTOVER_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Name prefix of staged files (what a restart cleans up).
const PREFIX: &str = "staged-";

/// Bytes gathered before each write to the file.
const WRITE_BUFFER: usize = 256 * 1024;

/// A staged file being written.
pub struct StagingWriter {
    file: tokio::io::BufWriter<tokio::fs::File>,
    path: TempPath,
    dir: Arc<PathBuf>,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
    limit: u64,
}

impl StagingWriter {
    /// Append `chunk`; refused without writing it when the file would pass its cap.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StagingError> {
        let len = chunk.len() as u64;
        if self.size + len > self.limit {
            return Err(StagingError::TooLarge { limit: self.limit });
        }
        if self.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).await.map_err(|e| self.io(e))?;
        self.size += len;
        Ok(())
    }

    /// The bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The finished file.
    pub async fn finish(mut self) -> Result<StagedFile, StagingError> {
        self.file.flush().await.map_err(|e| self.io(e))?;
        Ok(StagedFile {
            path: Arc::new(self.path),
            size: self.size,
            sha256: self.hasher.finalize().into(),
            head: Bytes::from(self.head),
        })
    }

    fn io(&self, source: std::io::Error) -> StagingError {
        StagingError::Io {
            dir: self.dir.display().to_string(),
            source,
        }
    }
}

/// A complete staged file: its size, SHA-256 and first bytes known; deleted when the last clone
/// is dropped.
#[derive(Debug, Clone)]
pub struct StagedFile {
    path: Arc<TempPath>,
    /// Its length in bytes.
    pub size: u64,
    /// SHA-256 of its content.
    pub sha256: [u8; 32],
    /// Its first [`HEAD_BYTES`] bytes (fewer if it is shorter).
    pub head: Bytes,
}

impl StagedFile {
    /// A reader from the start.
    pub async fn open(&self) -> Result<tokio::fs::File, StagingError> {
        tokio::fs::File::open(self.path.as_os_str())
            .await
            .map_err(|e| self.io(e))
    }

    /// The whole content (only for files known to be small, e.g. a picture to thumbnail).
    pub async fn read_all(&self) -> Result<Bytes, StagingError> {
        let mut out = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        self.open()
            .await?
            .read_to_end(&mut out)
            .await
            .map_err(|e| self.io(e))?;
        Ok(out.into())
    }

    fn io(&self, source: std::io::Error) -> StagingError {
        StagingError::Io {
            dir: self
                .path
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_staged_file_is_sized_hashed_capped_and_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::new(dir.path()).unwrap();
        let mut w = staging.writer(10).await.unwrap();
        w.write(b"hello ").await.unwrap();
        assert!(matches!(
            w.write(b"world!").await,
            Err(StagingError::TooLarge { limit: 10 })
        ));
        w.write(b"you").await.unwrap();
        let staged = w.finish().await.unwrap();
        assert_eq!(staged.size, 9);
        assert_eq!(&staged.head[..], b"hello you");
        assert_eq!(
            staged.sha256,
            <[u8; 32]>::from(Sha256::digest(b"hello you"))
        );
        assert_eq!(&staged.read_all().await.unwrap()[..], b"hello you");
        let path = staged.path.to_path_buf();
        assert!(path.exists());
        let copy = staged.clone();
        drop(staged);
        assert!(path.exists(), "a clone keeps it");
        drop(copy);
        assert!(!path.exists(), "the last handle removes it");
    }

    #[tokio::test]
    async fn leftovers_of_a_killed_process_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let old = std::time::SystemTime::now() - LEFTOVER_AGE - std::time::Duration::from_secs(1);
        for name in ["staged-old", "staged-new", "keep.txt"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        for name in ["staged-old", "keep.txt"] {
            let file = std::fs::File::options()
                .write(true)
                .open(dir.path().join(name))
                .unwrap();
            file.set_modified(old).unwrap();
        }
        Staging::new(dir.path()).unwrap();
        assert!(!dir.path().join("staged-old").exists());
        assert!(
            dir.path().join("staged-new").exists(),
            "maybe another process's"
        );
        assert!(dir.path().join("keep.txt").exists());
    }
}
