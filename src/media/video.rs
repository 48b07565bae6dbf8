//! Synthetic video: the prompt's scene animated (its shapes orbit, a bar along the bottom edge
//! shows progress), drawn straight into 4:2:0 YUV planes, encoded to H.264 by OpenH264 and
//! written as an MP4 (`avc1` track) by the pure-Rust `mp4` crate. Also [`probe_mp4`], which
//! reads an MP4's basic facts back.
//!
//! OpenH264 emits Annex-B NAL units; the MP4 wants its SPS/PPS in the `avcC` box and every
//! other NAL unit with a 4-byte length prefix, one sample per frame, IDR frames marked sync.

use std::io::Cursor;

use bytes::Bytes;
use mp4::{
    AvcConfig, FourCC, MediaConfig, Mp4Config, Mp4Reader, Mp4Sample, Mp4Writer, TrackConfig,
    TrackType,
};
use openh264::encoder::{Encoder, EncoderConfig, FrameRate, IntraFramePeriod, RateControlMode};
use openh264::formats::YUVSource;
use openh264::{OpenH264API, Timestamp};

use super::MediaError;
use super::png::encode_jpeg;
use super::scene::{Plane, Rgb, Scene, Shape};

/// Frames per second of sandbox videos.
pub const FPS: u32 = 8;
/// Longest sandbox video, in seconds.
pub const MAX_SECONDS: u32 = 60;
/// The shorter side of every sandbox video, in pixels.
pub const SHORT_SIDE: u32 = 240;
/// Track timescale (ticks per second): 90 kHz, the usual one for video.
const TRACK_TIMESCALE: u32 = 90_000;
/// Movie timescale (ticks per second) of the `mvhd` box.
const MOVIE_TIMESCALE: u32 = 1_000;
/// Ticks of one frame; exact, as the assertion below guarantees.
const FRAME_TICKS: u32 = TRACK_TIMESCALE / FPS;
const _: () = assert!(TRACK_TIMESCALE.is_multiple_of(FPS) && MOVIE_TIMESCALE.is_multiple_of(FPS));
/// Height of the progress bar along the bottom edge, in pixels.
const BAR_HEIGHT: f32 = 4.0;

/// A sandbox video and its cover.
#[derive(Debug, Clone)]
pub struct SandboxVideo {
    /// The MP4 file: one H.264 (`avc1`, 4:2:0) video track, no audio.
    pub mp4: Vec<u8>,
    /// A JPEG of the first frame, at the video's size.
    pub cover_jpeg: Vec<u8>,
    /// Frame width in pixels (even).
    pub width: u32,
    /// Frame height in pixels (even).
    pub height: u32,
    /// Number of frames: duration × fps.
    pub frames: u32,
    /// Frames per second.
    pub fps: u32,
}

/// Basic facts about an MP4 file's first video track.
#[derive(Debug, Clone, PartialEq)]
pub struct Mp4Info {
    /// Track duration in seconds.
    pub duration_secs: f64,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Number of samples (frames) in the track.
    pub samples: u32,
    /// The sample entry's four-character code, e.g. `avc1`.
    pub codec: String,
}

/// A real, playable H.264 MP4 of `duration_secs` seconds animating the picture of `prompt`.
///
/// The frame has the aspect `ratio` (`W:H` such as `16:9`, `9:16`, `4:3`, `3:4`, `1:1`, with
/// sides up to 100 and at most 4:1 either way; `adaptive` means 16:9) and a shorter side of
/// 240 pixels, so 16:9 is 426×240 and 9:16 is 240×426 (sides rounded to even). It runs at
/// 8 fps, so it holds `duration_secs × 8` frames, with an IDR frame every 2 seconds. The same
/// prompt draws the same scene; its shapes move along orbits and a bar fills the bottom edge.
///
/// # Errors
///
/// [`MediaError::InvalidRatio`], [`MediaError::InvalidDuration`] (0 or over 60 s), or an
/// encoding/container failure.
pub fn sandbox_video(
    prompt: &str,
    ratio: &str,
    duration_secs: u32,
) -> Result<SandboxVideo, MediaError> {
    if duration_secs == 0 || duration_secs > MAX_SECONDS {
        return Err(MediaError::InvalidDuration(duration_secs));
    }
    let (width, height) = frame_size(ratio)?;
    let frames = duration_secs * FPS;
    let scene = Scene::from_prompt(prompt);

    let mut picture = scene.background_rgb(width, height);
    let background = YuvFrame::from_rgb(&picture, width, height);
    let mut frame = background.clone();
    let mut encoder = Encoder::with_api_config(OpenH264API::from_source(), encoder_config())
        .map_err(encode_error)?;
    let mut params = ParameterSets::default();
    let mut samples = Vec::with_capacity(frames as usize);
    for index in 0..frames {
        let t = index as f32 / FPS as f32;
        frame.copy_from(&background);
        for (shape, color) in scene.shapes(width, height, t) {
            frame.fill(&shape, color);
        }
        let done = (index + 1) as f32 / frames as f32;
        let h = height as f32;
        let bar = Shape::Rect {
            x0: 0.0,
            y0: h - BAR_HEIGHT,
            x1: width as f32 * done,
            y1: h,
        };
        frame.fill(&bar, scene.accent);

        let stream = encoder
            .encode_at(
                &frame,
                Timestamp::from_millis(u64::from(index) * 1000 / u64::from(FPS)),
            )
            .map_err(encode_error)?;
        let mut nals = Vec::new();
        for l in 0..stream.num_layers() {
            let Some(layer) = stream.layer(l) else {
                continue;
            };
            nals.extend(
                (0..layer.nal_count()).filter_map(|n| layer.nal_unit(n).map(<[u8]>::to_vec)),
            );
        }
        let sample = params.make_sample(nals.iter().map(Vec::as_slice))?;
        if sample.bytes.is_empty() {
            return Err(MediaError::Encode(format!(
                "frame {index} produced no picture"
            )));
        }
        samples.push(sample);
    }

    let mp4 = write_mp4(width, height, params, samples)?;
    scene.draw_shapes_rgb(&mut picture, width, height, 0.0);
    let cover_jpeg = encode_jpeg(&picture, width, height)?;
    Ok(SandboxVideo {
        mp4,
        cover_jpeg,
        width,
        height,
        frames,
        fps: FPS,
    })
}

/// Frame `(width, height)` for an aspect ratio: shorter side [`SHORT_SIDE`], both even.
fn frame_size(ratio: &str) -> Result<(u32, u32), MediaError> {
    let invalid = || MediaError::InvalidRatio(ratio.to_owned());
    let ratio_trimmed = ratio.trim();
    let (w, h) = if ratio_trimmed.eq_ignore_ascii_case("adaptive") {
        (16, 9)
    } else {
        let (w, h) = ratio_trimmed.split_once(':').ok_or_else(invalid)?;
        let parse = |s: &str| {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=100).contains(n))
        };
        (parse(w).ok_or_else(invalid)?, parse(h).ok_or_else(invalid)?)
    };
    if w > 4 * h || h > 4 * w {
        return Err(invalid());
    }
    // The nearest even number to SHORT_SIDE × long / short.
    let long_side = |long: u32, short: u32| 2 * ((SHORT_SIDE * long + short) / (2 * short));
    Ok(if w >= h {
        (long_side(w, h), SHORT_SIDE)
    } else {
        (SHORT_SIDE, long_side(h, w))
    })
}

fn encoder_config() -> EncoderConfig {
    EncoderConfig::new()
        .max_frame_rate(FrameRate::from_hz(FPS as f32))
        // A fixed quantiser (OpenH264's default QP 26): flat synthetic pictures need no rate
        // control, and with it off the encoder neither skips frames nor warns on stderr that
        // it cannot hit a bitrate.
        .rate_control_mode(RateControlMode::Off)
        // Every frame must come out: the MP4 has exactly duration × fps samples.
        .skip_frames(false)
        // IDR frames exactly every two seconds, not at guessed scene cuts.
        .scene_change_detect(false)
        .intra_frame_period(IntraFramePeriod::from_num_frames(2 * FPS))
        .num_threads(1)
}

fn encode_error(e: openh264::Error) -> MediaError {
    MediaError::Encode(e.to_string())
}

fn mp4_error(e: mp4::Error) -> MediaError {
    MediaError::Mp4(e.to_string())
}

/// One 4:2:0 frame: full-size luma, half-size chroma, rows packed.
#[derive(Debug, Clone)]
struct YuvFrame {
    width: usize,
    height: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

/// BT.601 limited range, the H.264 default when the stream says nothing about colour.
fn rgb_to_yuv([r, g, b]: Rgb) -> [u8; 3] {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    [y, u, v].map(|c| c.clamp(0, 255) as u8)
}

impl YuvFrame {
    /// Converts interleaved RGB (even `width` and `height`); chroma averages each 2×2 block.
    fn from_rgb(rgb: &[u8], width: u32, height: u32) -> YuvFrame {
        let (w, h) = (width as usize, height as usize);
        let pixel = |x: usize, y: usize| -> Rgb {
            let i = (y * w + x) * 3;
            match rgb.get(i..i + 3) {
                Some(&[r, g, b]) => [r, g, b],
                _ => [0, 0, 0],
            }
        };
        let mut y_plane = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                y_plane.push(rgb_to_yuv(pixel(x, y))[0]);
            }
        }
        let (cw, ch) = (w / 2, h / 2);
        let (mut u_plane, mut v_plane) = (Vec::with_capacity(cw * ch), Vec::with_capacity(cw * ch));
        for cy in 0..ch {
            for cx in 0..cw {
                let block = [
                    pixel(2 * cx, 2 * cy),
                    pixel(2 * cx + 1, 2 * cy),
                    pixel(2 * cx, 2 * cy + 1),
                    pixel(2 * cx + 1, 2 * cy + 1),
                ];
                let mean =
                    |c: usize| ((block.iter().map(|p| u32::from(p[c])).sum::<u32>() + 2) / 4) as u8;
                let [_, u, v] = rgb_to_yuv([mean(0), mean(1), mean(2)]);
                u_plane.push(u);
                v_plane.push(v);
            }
        }
        YuvFrame {
            width: w,
            height: h,
            y: y_plane,
            u: u_plane,
            v: v_plane,
        }
    }

    /// Overwrites this frame with `other` (same size).
    fn copy_from(&mut self, other: &YuvFrame) {
        self.y.clone_from(&other.y);
        self.u.clone_from(&other.u);
        self.v.clone_from(&other.v);
    }

    /// Paints `shape` in `color` on all three planes.
    fn fill(&mut self, shape: &Shape, color: Rgb) {
        let [y, u, v] = rgb_to_yuv(color);
        let (w, h) = (self.width, self.height);
        Plane {
            data: &mut self.y,
            width: w,
            height: h,
            channels: 1,
            scale: 1.0,
        }
        .fill(shape, &[y]);
        Plane {
            data: &mut self.u,
            width: w / 2,
            height: h / 2,
            channels: 1,
            scale: 0.5,
        }
        .fill(shape, &[u]);
        Plane {
            data: &mut self.v,
            width: w / 2,
            height: h / 2,
            channels: 1,
            scale: 0.5,
        }
        .fill(shape, &[v]);
    }
}

impl YUVSource for YuvFrame {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (self.width, self.width / 2, self.width / 2)
    }

    fn y(&self) -> &[u8] {
        &self.y
    }

    fn u(&self) -> &[u8] {
        &self.u
    }

    fn v(&self) -> &[u8] {
        &self.v
    }
}

/// The stream's first SPS and PPS (OpenH264 keeps their ids constant, so the first ones hold).
#[derive(Debug, Default)]
struct ParameterSets {
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

/// A NAL unit without its Annex-B start code (`00 00 01` or `00 00 00 01`).
fn strip_start_code(nal: &[u8]) -> &[u8] {
    let zeros = nal.iter().take_while(|&&b| b == 0).count();
    match nal.get(zeros) {
        Some(1) if zeros >= 2 => &nal[zeros + 1..],
        _ => nal,
    }
}

impl ParameterSets {
    /// One frame's Annex-B NAL units as an MP4 sample: SPS/PPS are kept aside, access unit
    /// delimiters dropped, the rest length-prefixed; the sample is sync if it holds an IDR slice.
    fn make_sample<'a>(
        &mut self,
        nals: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Mp4Sample, MediaError> {
        let mut bytes = Vec::new();
        let mut is_sync = false;
        for nal in nals.into_iter().map(strip_start_code) {
            let Some(header) = nal.first() else { continue };
            match header & 0x1F {
                7 if self.sps.is_none() => self.sps = Some(nal.to_vec()),
                8 if self.pps.is_none() => self.pps = Some(nal.to_vec()),
                7 | 8 => {}
                9 => {}
                kind => {
                    is_sync |= kind == 5;
                    let len = u32::try_from(nal.len())
                        .map_err(|_| MediaError::Encode("NAL unit over 4 GiB".into()))?;
                    bytes.extend_from_slice(&len.to_be_bytes());
                    bytes.extend_from_slice(nal);
                }
            }
        }
        Ok(Mp4Sample {
            start_time: 0,
            duration: FRAME_TICKS,
            rendering_offset: 0,
            is_sync,
            bytes: Bytes::from(bytes),
        })
    }
}

/// Writes the MP4: `ftyp`, `mdat` with the samples in order, then `moov`.
fn write_mp4(
    width: u32,
    height: u32,
    params: ParameterSets,
    samples: Vec<Mp4Sample>,
) -> Result<Vec<u8>, MediaError> {
    let (Some(sps), Some(pps)) = (params.sps, params.pps) else {
        return Err(MediaError::Encode("the encoder produced no SPS/PPS".into()));
    };
    let side = |n: u32| {
        u16::try_from(n)
            .map_err(|_| MediaError::Mp4(format!("frame side {n} does not fit the track header")))
    };
    let brand = |b: &[u8; 4]| FourCC { value: *b };
    let config = Mp4Config {
        major_brand: brand(b"isom"),
        minor_version: 512,
        compatible_brands: vec![
            brand(b"isom"),
            brand(b"iso2"),
            brand(b"avc1"),
            brand(b"mp41"),
        ],
        timescale: MOVIE_TIMESCALE,
    };
    let mut writer = Mp4Writer::write_start(Cursor::new(Vec::new()), &config).map_err(mp4_error)?;
    writer
        .add_track(&TrackConfig {
            track_type: TrackType::Video,
            timescale: TRACK_TIMESCALE,
            language: "und".into(),
            media_conf: MediaConfig::AvcConfig(AvcConfig {
                width: side(width)?,
                height: side(height)?,
                seq_param_set: sps,
                pic_param_set: pps,
            }),
        })
        .map_err(mp4_error)?;
    for (index, mut sample) in samples.into_iter().enumerate() {
        sample.start_time = index as u64 * u64::from(FRAME_TICKS);
        writer.write_sample(1, &sample).map_err(mp4_error)?;
    }
    writer.write_end().map_err(mp4_error)?;
    Ok(writer.into_writer().into_inner())
}

/// Duration, size, sample count and codec of the first video track of an MP4, read with the
/// `mp4` crate.
///
/// Meant for tests and sanity checks of files we made; a parser panic on a malformed file is
/// caught and reported as an error.
///
/// # Errors
///
/// [`MediaError::Mp4`] if the bytes are not an MP4 with a video track.
pub fn probe_mp4(bytes: &[u8]) -> Result<Mp4Info, MediaError> {
    std::panic::catch_unwind(|| probe(bytes)).unwrap_or_else(|_| {
        Err(MediaError::Mp4(
            "the MP4 parser failed on malformed input".into(),
        ))
    })
}

/// Boxes that hold other boxes (the ones the MP4 parser descends into).
const CONTAINER_BOXES: [&[u8; 4]; 10] = [
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"udta", b"mvex", b"moof",
];

/// Check the box tree before the `mp4` crate reads it: every box at least 8 bytes and inside its
/// parent, size 0 ("to the end") only at the top level. The crate can loop forever on a zero-sized
/// box inside a container, so malformed input must not reach it.
fn check_box_tree(bytes: &[u8], depth: usize) -> Result<(), MediaError> {
    let bad = |why: &str| Err(MediaError::Mp4(format!("malformed MP4 box tree: {why}")));
    if depth > 16 {
        return bad("nested too deep");
    }
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + 8) else {
            return bad("truncated box header");
        };
        let small = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = [header[4], header[5], header[6], header[7]];
        let (size, header_len) = match small {
            0 if depth == 0 => (bytes.len() - at, 8),
            0 => return bad("zero-sized box inside a container"),
            1 => {
                let Some(large) = bytes.get(at + 8..at + 16) else {
                    return bad("truncated 64-bit box size");
                };
                let mut raw = [0u8; 8];
                raw.copy_from_slice(large);
                (
                    usize::try_from(u64::from_be_bytes(raw)).unwrap_or(usize::MAX),
                    16,
                )
            }
            n => (n, 8),
        };
        if size < header_len {
            return bad("box smaller than its header");
        }
        let Some(end) = at.checked_add(size).filter(|end| *end <= bytes.len()) else {
            return bad("box runs past its parent");
        };
        if CONTAINER_BOXES.contains(&&kind) {
            check_box_tree(&bytes[at + header_len..end], depth + 1)?;
        }
        at = end;
    }
    Ok(())
}

fn probe(bytes: &[u8]) -> Result<Mp4Info, MediaError> {
    check_box_tree(bytes, 0)?;
    let reader =
        Mp4Reader::read_header(Cursor::new(bytes), bytes.len() as u64).map_err(mp4_error)?;
    let track = reader
        .tracks()
        .values()
        .filter(|t| matches!(t.track_type(), Ok(TrackType::Video)))
        .min_by_key(|t| t.track_id())
        .ok_or_else(|| MediaError::Mp4("no video track".into()))?;
    let mdhd = &track.trak.mdia.mdhd;
    if mdhd.timescale == 0 {
        return Err(MediaError::Mp4(
            "the video track has a zero timescale".into(),
        ));
    }
    let codec = track.box_type().map_err(mp4_error)?;
    Ok(Mp4Info {
        duration_secs: mdhd.duration as f64 / f64::from(mdhd.timescale),
        width: u32::from(track.width()),
        height: u32::from(track.height()),
        samples: track.sample_count(),
        codec: String::from_utf8_lossy(&codec.value).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use openh264::decoder::Decoder;

    use super::*;
    use crate::media::{MediaKind, sniff};

    #[test]
    fn fifteen_seconds_of_16_9_video() {
        let started = Instant::now();
        let video = sandbox_video("a paper boat on a rainy street", "16:9", 15).unwrap();
        let elapsed = started.elapsed();
        eprintln!("15 s video: {elapsed:?}, {} bytes", video.mp4.len());

        assert_eq!(
            (video.width, video.height, video.fps, video.frames),
            (426, 240, FPS, 15 * FPS)
        );
        let info = probe_mp4(&video.mp4).unwrap();
        assert!(
            (info.duration_secs - 15.0).abs() <= 1.0 / f64::from(FPS),
            "{info:?}"
        );
        assert_eq!((info.width, info.height), (426, 240));
        assert_eq!(info.codec, "avc1");
        assert_eq!(info.samples, 15 * FPS);

        let s = sniff(&video.mp4).unwrap();
        assert_eq!(
            (s.kind, s.mime, s.ext),
            (MediaKind::Video, "video/mp4", "mp4")
        );
        let s = sniff(&video.cover_jpeg).unwrap();
        assert_eq!(
            (s.kind, s.mime, s.ext),
            (MediaKind::Image, "image/jpeg", "jpg")
        );
        let cover =
            image::load_from_memory_with_format(&video.cover_jpeg, image::ImageFormat::Jpeg)
                .unwrap();
        assert_eq!((cover.width(), cover.height()), (426, 240));
    }

    #[test]
    fn every_ratio_gets_its_shape() {
        let cases = [
            ("16:9", 426, 240),
            ("9:16", 240, 426),
            ("4:3", 320, 240),
            ("3:4", 240, 320),
            ("1:1", 240, 240),
            ("adaptive", 426, 240),
            (" 21:9 ", 560, 240),
        ];
        for (ratio, w, h) in cases {
            assert_eq!(frame_size(ratio).unwrap(), (w, h), "{ratio}");
        }
        for (ratio, w, h) in &cases[..5] {
            let video = sandbox_video("ratios", ratio, 1).unwrap();
            let info = probe_mp4(&video.mp4).unwrap();
            assert_eq!((info.width, info.height), (*w, *h), "{ratio}");
            assert_eq!((video.width, video.height), (*w, *h), "{ratio}");
            assert_eq!(info.samples, FPS);
            assert!((info.duration_secs - 1.0).abs() <= 1.0 / f64::from(FPS));
            let (rw, rh) = ratio
                .split_once(':')
                .map(|(a, b)| (a.parse::<f64>().unwrap(), b.parse::<f64>().unwrap()))
                .unwrap();
            assert!(
                (f64::from(*w) / f64::from(*h) - rw / rh).abs() < 0.01,
                "{ratio}"
            );
        }
    }

    #[test]
    fn bad_ratios_and_durations_are_refused() {
        for ratio in [
            "", "16", "16:0", "0:9", "a:b", "1:5", "101:100", "16:9:1", "wide",
        ] {
            assert!(
                matches!(
                    sandbox_video("x", ratio, 1),
                    Err(MediaError::InvalidRatio(_))
                ),
                "{ratio:?}"
            );
        }
        for secs in [0, MAX_SECONDS + 1] {
            assert!(matches!(
                sandbox_video("x", "1:1", secs),
                Err(MediaError::InvalidDuration(_))
            ));
        }
    }

    /// The samples decode again as H.264, frame by frame, and the picture moves.
    #[test]
    fn the_stream_decodes_and_moves() {
        let video = sandbox_video("a kite over the sea", "4:3", 2).unwrap();
        let mut reader =
            Mp4Reader::read_header(Cursor::new(&video.mp4[..]), video.mp4.len() as u64).unwrap();
        let (track_id, sps, pps) = {
            let track = reader.tracks().values().next().unwrap();
            (
                track.track_id(),
                track.sequence_parameter_set().unwrap().to_vec(),
                track.picture_parameter_set().unwrap().to_vec(),
            )
        };
        let annex_b = |nal: &[u8]| [&[0, 0, 0, 1][..], nal].concat();
        let mut decoder = Decoder::new().unwrap();
        let mut first_luma = None;
        let mut last_luma = None;
        let mut decoded = 0;
        let mut packet = [annex_b(&sps), annex_b(&pps)].concat();
        for id in 1..=reader.sample_count(track_id).unwrap() {
            let sample = reader.read_sample(track_id, id).unwrap().unwrap();
            assert_eq!(sample.is_sync, (id - 1) % (2 * FPS) == 0, "sample {id}");
            let mut rest = &sample.bytes[..];
            while rest.len() >= 4 {
                let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                packet.extend(annex_b(&rest[4..4 + len]));
                rest = &rest[4 + len..];
            }
            assert!(rest.is_empty());
            if let Some(yuv) = decoder.decode(&packet).unwrap() {
                assert_eq!(yuv.dimensions(), (320, 240));
                let (stride, _, _) = yuv.strides();
                let luma: Vec<u8> = yuv
                    .y()
                    .chunks(stride)
                    .take(240)
                    .flat_map(|row| row[..320].to_vec())
                    .collect();
                first_luma.get_or_insert_with(|| luma.clone());
                last_luma = Some(luma);
                decoded += 1;
            }
            packet.clear();
        }
        decoded += decoder.flush_remaining().unwrap().len();
        assert_eq!(decoded, 2 * FPS as usize);
        let (first, last) = (first_luma.unwrap(), last_luma.unwrap());
        let changed = first
            .iter()
            .zip(&last)
            .filter(|(a, b)| a.abs_diff(**b) > 20)
            .count();
        assert!(
            changed > first.len() / 50,
            "only {changed} luma samples changed"
        );
    }

    #[test]
    fn probe_refuses_what_is_not_mp4() {
        assert!(probe_mp4(b"").is_err());
        assert!(probe_mp4(b"not an mp4 at all, just some text").is_err());
        let png = crate::media::sandbox_image("p", 8, 8).unwrap();
        assert!(probe_mp4(&png).is_err());
    }

    #[test]
    fn start_codes_are_stripped() {
        assert_eq!(strip_start_code(&[0, 0, 0, 1, 0x67, 1]), [0x67, 1]);
        assert_eq!(strip_start_code(&[0, 0, 1, 0x68]), [0x68]);
        assert_eq!(strip_start_code(&[0x65, 0, 0, 1]), [0x65, 0, 0, 1]);
    }
}
