//! Gallery thumbnails: a small JPEG of an archived image (or video cover), made once when the
//! result is archived so the gallery never loads full-size originals.

use image::ImageEncoder;
use image::codecs::jpeg::JpegEncoder;

use super::MediaError;

/// Longest side of a thumbnail.
pub const THUMB_SIDE: u32 = 360;
const THUMB_QUALITY: u8 = 72;

/// A JPEG at most [`THUMB_SIDE`] on its longest side, of a JPEG or PNG picture.
///
/// # Errors
///
/// [`MediaError::Image`] if the picture cannot be decoded (e.g. WebP) or the encoder fails.
pub fn thumbnail_jpeg(picture: &[u8]) -> Result<Vec<u8>, MediaError> {
    let img = image::load_from_memory(picture)?;
    let small = img.thumbnail(THUMB_SIDE, THUMB_SIDE).to_rgb8();
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, THUMB_QUALITY).write_image(
        small.as_raw(),
        small.width(),
        small.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_large_picture_becomes_a_small_jpeg() {
        let png = super::super::sandbox_image("一只猫", 1280, 720).unwrap();
        let thumb = super::thumbnail_jpeg(&png).unwrap();
        let img = image::load_from_memory(&thumb).unwrap();
        assert_eq!(img.width(), 360);
        assert!((202..=203).contains(&img.height()), "{}", img.height());
        assert!(
            thumb.len() < png.len() / 2,
            "{} vs {}",
            thumb.len(),
            png.len()
        );
        assert!(super::thumbnail_jpeg(b"not a picture").is_err());
    }
}
