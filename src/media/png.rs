//! Still pictures: the sandbox's PNG drawn from a prompt, and the PNG/JPEG encoding of RGB
//! pixels that the video's cover also uses.

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

use super::MediaError;
use super::scene::Scene;

/// Largest width or height [`sandbox_image`] draws.
pub const MAX_SIDE: u32 = 4096;

/// Quality of JPEG covers (1–100).
const JPEG_QUALITY: u8 = 85;

/// A `width`×`height` PNG drawn from `prompt`.
///
/// The picture (a gradient with a soft glow and a few flat shapes) takes its colours and layout
/// from a hash of the prompt: the same prompt always gives the same bytes, and different
/// prompts give visibly different pictures. No text is drawn.
///
/// # Errors
///
/// [`MediaError::InvalidSize`] if a side is 0 or above 4096; [`MediaError::Image`] if the PNG
/// encoder fails.
pub fn sandbox_image(prompt: &str, width: u32, height: u32) -> Result<Vec<u8>, MediaError> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(MediaError::InvalidSize { width, height });
    }
    let rgb = Scene::from_prompt(prompt).render_rgb(width, height, 0.0);
    encode_png(&rgb, width, height)
}

/// PNG bytes of interleaved RGB pixels.
pub(crate) fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, MediaError> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out).write_image(rgb, width, height, ExtendedColorType::Rgb8)?;
    Ok(out)
}

/// JPEG bytes of interleaved RGB pixels.
pub(crate) fn encode_jpeg(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, MediaError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).write_image(
        rgb,
        width,
        height,
        ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{MediaKind, sniff};

    #[test]
    fn png_has_the_requested_size_and_decodes() {
        let png = sandbox_image("a lighthouse at dusk", 320, 200).unwrap();
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
        assert_eq!((img.width(), img.height()), (320, 200));
        let s = sniff(&png).unwrap();
        assert_eq!(
            (s.kind, s.mime, s.ext),
            (MediaKind::Image, "image/png", "png")
        );
    }

    #[test]
    fn png_is_deterministic_and_differs_between_prompts() {
        let a = sandbox_image("a lighthouse at dusk", 64, 64).unwrap();
        let b = sandbox_image("a lighthouse at dusk", 64, 64).unwrap();
        let c = sandbox_image("a cat in a teacup", 64, 64).unwrap();
        assert_eq!(a, b);
        let pa = image::load_from_memory(&a).unwrap().to_rgb8();
        let pc = image::load_from_memory(&c).unwrap().to_rgb8();
        // Visibly different: a good share of pixels differ by a clear margin.
        let differing = pa
            .pixels()
            .zip(pc.pixels())
            .filter(|(p, q)| {
                p.0.iter()
                    .zip(q.0.iter())
                    .map(|(x, y)| x.abs_diff(*y) as u32)
                    .sum::<u32>()
                    > 60
            })
            .count();
        assert!(differing > 64 * 64 / 4, "only {differing} pixels differ");
    }

    #[test]
    fn odd_and_tiny_sizes_work_and_bad_sizes_are_refused() {
        for (w, h) in [(1, 1), (3, 7), (511, 17)] {
            let png = sandbox_image("x", w, h).unwrap();
            let img = image::load_from_memory(&png).unwrap();
            assert_eq!((img.width(), img.height()), (w, h));
        }
        for (w, h) in [(0, 10), (10, 0), (MAX_SIDE + 1, 10)] {
            assert!(matches!(
                sandbox_image("x", w, h),
                Err(MediaError::InvalidSize { .. })
            ));
        }
    }

    #[test]
    fn jpeg_round_trips() {
        let rgb = Scene::from_prompt("jpeg").render_rgb(48, 32, 0.0);
        let jpeg = encode_jpeg(&rgb, 48, 32).unwrap();
        let img = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((img.width(), img.height()), (48, 32));
    }
}
