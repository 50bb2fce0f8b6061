//! Photos: metadata stripping and renditions. Pure functions on bytes, no I/O:
//! [`crate::files`] calls them on a blocking thread.
//!
//! - The stored original keeps its pixels untouched but loses what can locate
//!   or identify someone: for JPEG the APP1 (EXIF, XMP), APP13 (IPTC) and
//!   comment segments are dropped without re-encoding, and a minimal EXIF
//!   block holding only the orientation is written back so viewers still turn
//!   the photo the right way; for PNG the `eXIf` and text chunks; for WebP the
//!   `EXIF` and `XMP ` chunks. GIF files carry no EXIF and are kept as sent.
//! - Renditions are decoded from the upload, turned upright (EXIF
//!   orientation), scaled down to fit [`THUMB_MAX`] and [`DISPLAY_MAX`]
//!   pixels (never up), and encoded twice: lossy WebP and, for browsers
//!   without WebP, JPEG (transparent pixels on white).
//! - An image that does not decode completely is refused as damaged.

use image::{DynamicImage, ImageDecoder, ImageFormat};
use std::io::Cursor;

/// Longest side of a thumbnail, in pixels.
pub const THUMB_MAX: u32 = 320;
/// Longest side of the display rendition, in pixels.
pub const DISPLAY_MAX: u32 = 1600;
/// Larger images are refused before decoding (decompression bombs).
pub const MAX_SIDE: u32 = 12_000;
const WEBP_QUALITY: f32 = 80.0;
const JPEG_QUALITY: u8 = 82;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenditionFormat {
    Webp,
    Jpeg,
}

impl RenditionFormat {
    pub fn ext(self) -> &'static str {
        match self {
            RenditionFormat::Webp => "webp",
            RenditionFormat::Jpeg => "jpeg",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            RenditionFormat::Webp => "image/webp",
            RenditionFormat::Jpeg => "image/jpeg",
        }
    }
}

/// One encoded rendition: `thumb` or `display`, in one format.
#[derive(Debug, Clone)]
pub struct Rendition {
    pub variant: &'static str,
    pub format: RenditionFormat,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

/// What an uploaded photo becomes.
#[derive(Debug)]
pub struct Processed {
    /// The upload without its location and identifying metadata.
    pub original: Vec<u8>,
    /// Size of the upright image.
    pub width: u32,
    pub height: u32,
    pub renditions: Vec<Rendition>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("The image is damaged or incomplete and cannot be read.")]
    Corrupt,
    #[error("The image is too large: at most {MAX_SIDE} pixels on each side.")]
    TooLarge,
    #[error("The image could not be converted: {0}")]
    Encode(String),
}

/// Strips metadata, decodes, and produces every rendition. CPU-bound: run it
/// on a blocking thread.
pub fn process(format: ImageFormat, bytes: &[u8]) -> Result<Processed, ImageError> {
    let (img, orientation) = decode(format, bytes)?;
    let original = strip_metadata(format, bytes, orientation)?;
    let (width, height) = (img.width(), img.height());
    let display = fit(&img, DISPLAY_MAX);
    let thumb = fit(&display, THUMB_MAX);
    let mut renditions = Vec::with_capacity(4);
    for (variant, im) in [("thumb", &thumb), ("display", &display)] {
        for format in [RenditionFormat::Webp, RenditionFormat::Jpeg] {
            renditions.push(Rendition {
                variant,
                format,
                width: im.width(),
                height: im.height(),
                bytes: encode(im, format)?,
            });
        }
    }
    Ok(Processed { original, width, height, renditions })
}

/// Checks a photo from its headers (format, size within the limits, a JPEG
/// not cut short) and strips its metadata, without decoding its pixels or
/// making renditions: they come later, from the stripped original (a photo
/// whose pixels turn out damaged then keeps no rendition).
pub fn check(format: ImageFormat, bytes: &[u8]) -> Result<Processed, ImageError> {
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImageError::Corrupt);
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(map_decode_error)?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(ImageError::TooLarge);
    }
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms).to_exif();
    let original = strip_metadata(format, bytes, orientation)?;
    // Orientations 5 to 8 turn the picture a quarter.
    let (width, height) = if orientation >= 5 { (h, w) } else { (w, h) };
    Ok(Processed { original, width, height, renditions: Vec::new() })
}

/// Only the thumbnail, as JPEG: what the benchmark measures.
pub fn thumbnail(format: ImageFormat, bytes: &[u8], format_out: RenditionFormat) -> Result<Rendition, ImageError> {
    let (img, _) = decode(format, bytes)?;
    let t = fit(&img, THUMB_MAX);
    Ok(Rendition {
        variant: "thumb",
        format: format_out,
        width: t.width(),
        height: t.height(),
        bytes: encode(&t, format_out)?,
    })
}

/// Decodes the whole image (so a truncated file is caught) and turns it
/// upright; returns the EXIF orientation it had (1 to 8).
fn decode(format: ImageFormat, bytes: &[u8]) -> Result<(DynamicImage, u8), ImageError> {
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImageError::Corrupt);
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(map_decode_error)?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(map_decode_error)?;
    img.apply_orientation(orientation);
    let img = if img.color().has_alpha() {
        DynamicImage::ImageRgba8(img.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(img.into_rgb8())
    };
    Ok((img, orientation.to_exif()))
}

fn map_decode_error(e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Limits(_) => ImageError::TooLarge,
        _ => ImageError::Corrupt,
    }
}

/// A JPEG cut short (an interrupted upload) lacks its end-of-image marker;
/// some decoders would fill the missing part with grey instead of failing.
fn jpeg_is_complete(b: &[u8]) -> bool {
    let end = b.iter().rposition(|&x| x != 0 && x != b'\n' && x != b'\r' && x != b' ').map_or(0, |i| i + 1);
    end >= 4 && b[end - 2..end] == [0xFF, 0xD9]
}

/// Scales down (never up) so the longest side is at most `max`.
fn fit(img: &DynamicImage, max: u32) -> DynamicImage {
    if img.width() <= max && img.height() <= max {
        img.clone()
    } else {
        img.thumbnail(max, max)
    }
}

fn encode(img: &DynamicImage, format: RenditionFormat) -> Result<Vec<u8>, ImageError> {
    match format {
        RenditionFormat::Webp => {
            let enc = match img {
                DynamicImage::ImageRgba8(b) => webp::Encoder::from_rgba(b.as_raw(), b.width(), b.height()),
                DynamicImage::ImageRgb8(b) => webp::Encoder::from_rgb(b.as_raw(), b.width(), b.height()),
                _ => return Err(ImageError::Encode("unexpected pixel layout".into())),
            };
            enc.encode_simple(false, WEBP_QUALITY).map(|m| m.to_vec()).map_err(|e| ImageError::Encode(format!("{e:?}")))
        }
        RenditionFormat::Jpeg => {
            let rgb = match img {
                DynamicImage::ImageRgba8(b) => {
                    // JPEG has no transparency: compose on white.
                    let mut out = image::RgbImage::new(b.width(), b.height());
                    for (o, p) in out.pixels_mut().zip(b.pixels()) {
                        let a = p[3] as u32;
                        for c in 0..3 {
                            o[c] = ((p[c] as u32 * a + 255 * (255 - a)) / 255) as u8;
                        }
                    }
                    out
                }
                other => other.to_rgb8(),
            };
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
                .encode_image(&rgb)
                .map_err(|e| ImageError::Encode(e.to_string()))?;
            Ok(out)
        }
    }
}

/// The upload without EXIF, XMP, IPTC and comments (see the module doc).
pub fn strip_metadata(format: ImageFormat, bytes: &[u8], orientation: u8) -> Result<Vec<u8>, ImageError> {
    match format {
        ImageFormat::Jpeg => strip_jpeg(bytes, orientation).ok_or(ImageError::Corrupt),
        ImageFormat::Png => strip_png(bytes).ok_or(ImageError::Corrupt),
        ImageFormat::WebP => strip_webp(bytes).ok_or(ImageError::Corrupt),
        _ => Ok(bytes.to_vec()),
    }
}

fn strip_jpeg(b: &[u8], orientation: u8) -> Option<Vec<u8>> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    if (2..=8).contains(&orientation) {
        out.extend_from_slice(&orientation_exif(orientation));
    }
    let mut i = 2;
    loop {
        if *b.get(i)? != 0xFF {
            return None;
        }
        while b.get(i) == Some(&0xFF) {
            i += 1; // fill bytes before a marker
        }
        let marker = *b.get(i)?;
        i += 1;
        match marker {
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&[0xFF, marker]);
                continue;
            }
            0xD9 => {
                out.extend_from_slice(&[0xFF, 0xD9]);
                return Some(out);
            }
            _ => {}
        }
        let len = u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]) as usize;
        if len < 2 || i + len > b.len() {
            return None;
        }
        // APP1: EXIF and XMP; APP13: Photoshop/IPTC; COM: free text.
        if !matches!(marker, 0xE1 | 0xED | 0xFE) {
            out.extend_from_slice(&[0xFF, marker]);
            out.extend_from_slice(&b[i..i + len]);
        }
        i += len;
        if marker == 0xDA {
            // Start of scan: the compressed image follows, copied as is.
            out.extend_from_slice(&b[i..]);
            return Some(out);
        }
    }
}

/// An APP1 segment with a one-entry EXIF directory: the orientation.
fn orientation_exif(orientation: u8) -> Vec<u8> {
    let mut tiff = Vec::with_capacity(26);
    tiff.extend_from_slice(b"MM\x00\x2A");
    tiff.extend_from_slice(&8u32.to_be_bytes()); // first directory right after the header
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // one value
    tiff.extend_from_slice(&[0, orientation, 0, 0]); // the value, left-justified
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next directory
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    seg.extend_from_slice(b"Exif\x00\x00");
    seg.extend_from_slice(&tiff);
    seg
}

fn strip_png(b: &[u8]) -> Option<Vec<u8>> {
    const SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !b.starts_with(SIG) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(SIG);
    let mut i = SIG.len();
    while i < b.len() {
        let len = u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?) as usize;
        let end = i.checked_add(12)?.checked_add(len)?;
        let kind = b.get(i + 4..i + 8)?;
        if end > b.len() {
            return None;
        }
        if !matches!(kind, b"eXIf" | b"tEXt" | b"zTXt" | b"iTXt" | b"tIME") {
            out.extend_from_slice(&b[i..end]);
        }
        i = end;
        if kind == b"IEND" {
            break;
        }
    }
    Some(out)
}

fn strip_webp(b: &[u8]) -> Option<Vec<u8>> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WEBP" {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[0..12]);
    let mut i = 12;
    while i + 8 <= b.len() {
        let fourcc = &b[i..i + 4];
        let len = u32::from_le_bytes(b[i + 4..i + 8].try_into().ok()?) as usize;
        let end = (i + 8).checked_add(len + (len & 1))?.min(b.len());
        if i + 8 + len > b.len() {
            return None;
        }
        if !matches!(fourcc, b"EXIF" | b"XMP ") {
            let start = out.len();
            out.extend_from_slice(&b[i..end]);
            if fourcc == b"VP8X" && len > 0 {
                out[start + 8] &= !(0x08 | 0x04); // no more EXIF and XMP flags
            }
        }
        i = end;
    }
    let size = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&size.to_le_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80).encode_image(&img).unwrap();
        out
    }

    /// A JPEG with an APP1 EXIF segment (orientation 6 and a marker string)
    /// and a comment, both of which must go.
    fn with_exif(j: &[u8]) -> Vec<u8> {
        let mut app1 = orientation_exif(6);
        app1.extend_from_slice(b"GPS-SECRET-48.8566");
        let len = (app1.len() - 2) as u16;
        app1[2..4].copy_from_slice(&len.to_be_bytes());
        let mut out = j[..2].to_vec();
        out.extend_from_slice(&app1);
        out.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x08]);
        out.extend_from_slice(b"secret");
        out.extend_from_slice(&j[2..]);
        out
    }

    #[test]
    fn jpeg_metadata_is_stripped_and_orientation_kept() {
        let src = with_exif(&jpeg(400, 300));
        let p = process(ImageFormat::Jpeg, &src).unwrap();
        assert!(!p.original.windows(10).any(|w| w == b"GPS-SECRET"));
        assert!(!p.original.windows(6).any(|w| w == b"secret"));
        // Orientation 6 (turn 90°): upright it is 300 wide, 400 high.
        assert_eq!((p.width, p.height), (300, 400));
        let again = image::load_from_memory(&p.original).unwrap();
        assert_eq!((again.width(), again.height()), (400, 300), "the pixels are untouched");
        let mut dec = image::codecs::jpeg::JpegDecoder::new(Cursor::new(&p.original)).unwrap();
        assert_eq!(dec.orientation().unwrap().to_exif(), 6, "orientation written back");
        let thumb = p.renditions.iter().find(|r| r.variant == "thumb" && r.format == RenditionFormat::Jpeg).unwrap();
        assert_eq!((thumb.width, thumb.height), (240, 320));
    }

    #[test]
    fn truncated_jpeg_is_refused() {
        let j = jpeg(200, 100);
        assert!(matches!(process(ImageFormat::Jpeg, &j[..j.len() / 2]), Err(ImageError::Corrupt)));
    }

    #[test]
    fn png_text_chunks_are_dropped() {
        let img = image::RgbaImage::from_pixel(10, 10, image::Rgba([1, 2, 3, 128]));
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png).unwrap();
        // Insert a tEXt chunk after IHDR (8 + 25 bytes).
        let mut chunk = Vec::new();
        let data = b"Comment\0GPS-SECRET";
        chunk.extend_from_slice(&(data.len() as u32).to_be_bytes());
        chunk.extend_from_slice(b"tEXt");
        chunk.extend_from_slice(data);
        chunk.extend_from_slice(&[0, 0, 0, 0]);
        let mut src = png[..33].to_vec();
        src.extend_from_slice(&chunk);
        src.extend_from_slice(&png[33..]);
        let out = strip_png(&src).unwrap();
        assert_eq!(out, png);
    }
}
