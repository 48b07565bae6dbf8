//! File type sniffing from leading bytes ("magic numbers"): JPEG, PNG and WebP pictures, MP4
//! video, MP3 and WAV audio. Nothing else is recognised, so callers can refuse it.

/// What a sniffed file is, broadly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// A still picture.
    Image,
    /// A video.
    Video,
    /// Sound.
    Audio,
}

/// A recognised file type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sniffed {
    /// Image, video or audio.
    pub kind: MediaKind,
    /// Its MIME type, e.g. `image/png`.
    pub mime: &'static str,
    /// Its usual file extension, without the dot, e.g. `png`.
    pub ext: &'static str,
}

const fn found(kind: MediaKind, mime: &'static str, ext: &'static str) -> Option<Sniffed> {
    Some(Sniffed { kind, mime, ext })
}

/// ISO BMFF brands of still pictures (HEIF/AVIF) and of audio-only files, which share MP4's
/// `ftyp` box but are not videos.
const NOT_VIDEO_BRANDS: [&[u8; 4]; 8] = [
    b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1", b"M4A ", b"M4B ",
];

/// The type of a file from its first bytes, or `None` if it is none of JPEG, PNG, WebP, MP4,
/// MP3 or WAV.
///
/// - JPEG: `FF D8 FF`; PNG: the 8-byte PNG signature.
/// - WebP and WAV: a `RIFF` header whose form type is `WEBP` or `WAVE`.
/// - MP4: an ISO BMFF `ftyp` box first (HEIF/AVIF pictures and M4A audio are not taken as video).
/// - MP3: an `ID3` tag, or an MPEG audio Layer III frame header (e.g. `FF FB`).
pub fn sniff(bytes: &[u8]) -> Option<Sniffed> {
    use MediaKind::{Audio, Image, Video};
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => found(Image, "image/jpeg", "jpg"),
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => found(Image, "image/png", "png"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => found(Image, "image/webp", "webp"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'A',
            b'V',
            b'E',
            ..,
        ] => found(Audio, "audio/wav", "wav"),
        [s0, s1, s2, s3, b'f', b't', b'y', b'p', b0, b1, b2, b3, ..] => {
            let size = u32::from_be_bytes([*s0, *s1, *s2, *s3]);
            let brand = [*b0, *b1, *b2, *b3];
            // A real ftyp box holds at least its header, major brand and minor version.
            let plausible = size == 0 || size >= 16;
            (plausible && !NOT_VIDEO_BRANDS.contains(&&brand)).then_some(Sniffed {
                kind: Video,
                mime: "video/mp4",
                ext: "mp4",
            })
        }
        [b'I', b'D', b'3', major, ..] if (2..=4).contains(major) => {
            found(Audio, "audio/mpeg", "mp3")
        }
        [0xFF, b1, b2, ..] if is_mp3_frame_header(*b1, *b2) => found(Audio, "audio/mpeg", "mp3"),
        _ => None,
    }
}

/// Whether `FF b1 b2` starts an MPEG-1/2/2.5 Layer III frame with a valid bitrate and sample rate.
fn is_mp3_frame_header(b1: u8, b2: u8) -> bool {
    let sync = b1 & 0xE0 == 0xE0;
    let version = (b1 >> 3) & 0b11; // 01 is reserved
    let layer = (b1 >> 1) & 0b11; // 01 is Layer III
    let bitrate = b2 >> 4; // 1111 is invalid ("free" 0000 is allowed)
    let rate = (b2 >> 2) & 0b11; // 11 is reserved
    sync && version != 0b01 && layer == 0b01 && bitrate != 0b1111 && rate != 0b11
}

#[cfg(test)]
mod tests {
    use super::*;

    fn riff(form: &[u8; 4]) -> Vec<u8> {
        let mut b = b"RIFF".to_vec();
        b.extend_from_slice(&100u32.to_le_bytes());
        b.extend_from_slice(form);
        b.extend_from_slice(&[0u8; 20]);
        b
    }

    fn ftyp(brand: &[u8; 4]) -> Vec<u8> {
        let mut b = 24u32.to_be_bytes().to_vec();
        b.extend_from_slice(b"ftyp");
        b.extend_from_slice(brand);
        b.extend_from_slice(&[0, 0, 2, 0]);
        b.extend_from_slice(b"isomavc1");
        b
    }

    #[test]
    fn recognises_hand_made_headers() {
        let cases: Vec<(Vec<u8>, MediaKind, &str, &str)> = vec![
            (
                vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10],
                MediaKind::Image,
                "image/jpeg",
                "jpg",
            ),
            (
                b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
                MediaKind::Image,
                "image/png",
                "png",
            ),
            (riff(b"WEBP"), MediaKind::Image, "image/webp", "webp"),
            (riff(b"WAVE"), MediaKind::Audio, "audio/wav", "wav"),
            (ftyp(b"isom"), MediaKind::Video, "video/mp4", "mp4"),
            (ftyp(b"mp42"), MediaKind::Video, "video/mp4", "mp4"),
            (
                b"ID3\x04\0\0\0\0\0\x21".to_vec(),
                MediaKind::Audio,
                "audio/mpeg",
                "mp3",
            ),
            (
                vec![0xFF, 0xFB, 0x90, 0x64, 0, 0],
                MediaKind::Audio,
                "audio/mpeg",
                "mp3",
            ),
            (
                vec![0xFF, 0xF3, 0x48, 0xC4],
                MediaKind::Audio,
                "audio/mpeg",
                "mp3",
            ),
        ];
        for (bytes, kind, mime, ext) in cases {
            assert_eq!(
                sniff(&bytes),
                Some(Sniffed { kind, mime, ext }),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn refuses_everything_else() {
        let mut lcg = 0x1234_5678_u32;
        let random: Vec<u8> = (0..256)
            .map(|_| {
                lcg = lcg.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (lcg >> 24) as u8
            })
            .collect();
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0xFF],
            vec![0xFF, 0xD8],
            b"hello, world: this is plain text".to_vec(),
            b"{\"prompt\": \"a cat\"}".to_vec(),
            b"<!DOCTYPE html><html></html>".to_vec(),
            b"%PDF-1.7\n".to_vec(),
            random,
            riff(b"AVI "),
            b"RIFF".to_vec(),
            ftyp(b"avif"),
            ftyp(b"heic"),
            ftyp(b"M4A "),
            vec![0, 0, 0, 4, b'f', b't', b'y', b'p', b'i', b's', b'o', b'm'],
            vec![0xFF, 0xF1, 0x50, 0x80], // ADTS AAC, not MP3
            vec![0xFF, 0xFB, 0xF0, 0x00], // invalid bitrate index
            vec![0xFF, 0xFB, 0x9C, 0x00], // reserved sample rate
            b"ID3".to_vec(),
        ];
        for bytes in cases {
            assert_eq!(sniff(&bytes), None, "{bytes:02x?}");
        }
    }
}
