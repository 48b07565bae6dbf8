//! Secrets at rest: vendor API keys are stored encrypted (ChaCha20-Poly1305) with a 32-byte key
//! from config (`secret_key`, base64) or, without one, a key generated once into
//! `<data-dir>/secret.key` (mode 0600) so demo mode and `admin` commands just work.
//! [`Secret`] keeps a plaintext out of `Debug` output and logs.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

/// A string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The plaintext, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// `abcd…wxyz` for display.
    pub fn masked(&self) -> String {
        let n = self.0.chars().count();
        if n <= 8 {
            return "****".into();
        }
        let head: String = self.0.chars().take(4).collect();
        let tail: String = self.0.chars().skip(n - 4).collect();
        format!("{head}…{tail}")
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret_key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("cannot read or create the secret key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("stored secret cannot be decrypted (was the secret key changed?)")]
    Decrypt,
}

/// Encrypts and decrypts secrets at rest.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
    links: LinkSigner,
}

/// Signs short-lived `/idfile` links to uploaded input files (for vendors that fetch inputs by
/// URL): HMAC-SHA256 over `<id>:<expiry>` with a key derived from the secret key, so every
/// process with the same secret signs and checks the same links.
#[derive(Clone)]
pub struct LinkSigner {
    /// One HMAC-SHA256 block: the key size that needs no fallible padding.
    key: [u8; 64],
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner")
    }
}

impl LinkSigner {
    fn mac(&self, id: &str, expires: i64) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        use hmac::digest::KeyInit;
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new(&self.key.into());
        mac.update(format!("{id}:{expires}").as_bytes());
        mac
    }

    /// The signature of a link to `id` valid until `expires` (unix seconds).
    pub fn sign(&self, id: &str, expires: i64) -> String {
        use hmac::Mac;
        hex::encode(self.mac(id, expires).finalize().into_bytes())
    }

    /// Whether `signature` is valid for `id` and `expires`, and `expires` is in the future
    /// (constant-time comparison).
    pub fn verify(&self, id: &str, expires: i64, signature: &str, now_secs: i64) -> bool {
        use hmac::Mac;
        let Ok(bytes) = hex::decode(signature) else {
            return false;
        };
        expires > now_secs && self.mac(id, expires).verify_slice(&bytes).is_ok()
    }
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox")
    }
}

impl SecretBox {
    /// From a configured base64 key, else from (or into) `<data_dir>/secret.key`.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> Result<SecretBox, SecretError> {
        let key = match configured {
            Some(b64) => decode_key(b64)?,
            None => key_file(&data_dir.join("secret.key"))?,
        };
        let links = {
            use sha2::Digest;
            let half = |label: &[u8]| -> [u8; 32] {
                let mut hasher = sha2::Sha256::new();
                hasher.update(label);
                hasher.update(key);
                hasher.finalize().into()
            };
            let mut link_key = [0u8; 64];
            link_key[..32].copy_from_slice(&half(b"llmage idfile links v1 a:"));
            link_key[32..].copy_from_slice(&half(b"llmage idfile links v1 b:"));
            LinkSigner { key: link_key }
        };
        Ok(SecretBox {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            links,
        })
    }

    /// The signer of input-file links.
    pub fn links(&self) -> LinkSigner {
        self.links.clone()
    }

    /// `v1:` + base64(nonce ‖ ciphertext).
    pub fn seal(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption with a fresh nonce and an in-memory buffer cannot fail.
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("v1:{}", STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<Secret, SecretError> {
        let raw = sealed.strip_prefix("v1:").ok_or(SecretError::Decrypt)?;
        let bytes = STANDARD.decode(raw).map_err(|_| SecretError::Decrypt)?;
        if bytes.len() < 12 {
            return Err(SecretError::Decrypt);
        }
        let (nonce, data) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), data)
            .map_err(|_| SecretError::Decrypt)?;
        String::from_utf8(plain)
            .map(Secret)
            .map_err(|_| SecretError::Decrypt)
    }
}

fn decode_key(b64: &str) -> Result<[u8; 32], SecretError> {
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|_| SecretError::BadKey)?;
    bytes.try_into().map_err(|_| SecretError::BadKey)
}

fn key_file(path: &Path) -> Result<[u8; 32], SecretError> {
    let err = |source| SecretError::KeyFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => decode_key(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(path) {
                Ok(mut file) => {
                    file.write_all(STANDARD.encode(key).as_bytes())
                        .map_err(err)?;
                    Ok(key)
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    decode_key(&std::fs::read_to_string(path).map_err(err)?)
                }
                Err(e) => Err(err(e)),
            }
        }
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_key_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretBox::load(None, dir.path()).unwrap();
        let sealed = a.seal("sk-vendor-secret");
        assert!(!sealed.contains("vendor"));
        let b = SecretBox::load(None, dir.path()).unwrap();
        assert_eq!(b.open(&sealed).unwrap().expose(), "sk-vendor-secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secret.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = SecretBox::load(Some(&STANDARD.encode([7u8; 32])), dir.path()).unwrap();
        assert!(other.open(&sealed).is_err());
        assert_eq!(format!("{:?}", Secret::new("x")), "Secret(****)");
        assert_eq!(Secret::new("sk-1234567890").masked(), "sk-1…7890");
    }
}

#[cfg(test)]
mod link_tests {
    #[test]
    fn links_verify_only_unexpired_and_untampered() {
        let dir = tempfile::tempdir().unwrap();
        let signer = super::SecretBox::load(None, dir.path()).unwrap().links();
        let sig = signer.sign("abc", 2_000);
        assert!(signer.verify("abc", 2_000, &sig, 1_000));
        assert!(!signer.verify("abc", 2_000, &sig, 2_000), "expired");
        assert!(!signer.verify("abd", 2_000, &sig, 1_000), "other file");
        assert!(!signer.verify("abc", 2_001, &sig, 1_000), "other expiry");
        assert!(!signer.verify("abc", 2_000, "zz", 1_000));
        let other = super::SecretBox::load(None, tempfile::tempdir().unwrap().path())
            .unwrap()
            .links();
        assert!(!other.verify("abc", 2_000, &sig, 1_000), "other secret");
    }
}
