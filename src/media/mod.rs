//! Media made and recognised in memory: the offline sandbox vendor's synthetic pictures and
//! videos, and sniffing of uploaded files.
//!
//! Everything here is a pure function over bytes: no files, no network, no clock.
//!
//! - [`sandbox_image`] draws a PNG whose colours and layout derive from a hash of the prompt.
//! - [`sandbox_video`] animates the same kind of picture into a real H.264 MP4 (plus a JPEG cover).
//! - [`sniff`] tells an image, a video or an audio file from its first bytes.
//! - [`thumbnail_jpeg`] makes the gallery's small JPEG of an archived picture.
//! - [`probe_mp4`] reads back an MP4's duration, size, sample count and codec (for tests and checks).
//!
//! The drawing itself lives in `scene`, the encoders in `png` and `video`, the sniffing in `sniff`.

mod png;
mod scene;
mod sniff;
mod thumb;
mod video;

pub use png::sandbox_image;
pub use sniff::{MediaKind, Sniffed, sniff};
pub use thumb::{THUMB_SIDE, thumbnail_jpeg};
pub use video::{Mp4Info, SandboxVideo, probe_mp4, sandbox_video};

/// Why synthetic media could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The requested picture size is zero or too large.
    #[error("image size {width}x{height} is out of range (each side 1..={max})", max = png::MAX_SIDE)]
    InvalidSize {
        /// Requested width in pixels.
        width: u32,
        /// Requested height in pixels.
        height: u32,
    },
    /// The aspect ratio is not `W:H` (or `adaptive`) within the supported range.
    #[error("unsupported aspect ratio {0:?} (expected e.g. 16:9, 9:16, 4:3, 3:4, 1:1 or adaptive)")]
    InvalidRatio(String),
    /// The video duration is zero or too long.
    #[error("video duration {0}s is out of range (1..={max}s)", max = video::MAX_SECONDS)]
    InvalidDuration(u32),
    /// The PNG or JPEG encoder failed.
    #[error("image encoding failed: {0}")]
    Image(#[from] image::ImageError),
    /// The H.264 encoder failed or produced something unusable.
    #[error("H.264 encoding failed: {0}")]
    Encode(String),
    /// Writing or reading the MP4 container failed.
    #[error("MP4 container error: {0}")]
    Mp4(String),
}
