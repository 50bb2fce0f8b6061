//! The logo as a PDF image: a JPEG passes through (DCTDecode); a PNG is
//! decoded and its alpha flattened onto white, because PDF/A documents we
//! write carry no transparency. Anything else is left out.

pub(crate) struct Image {
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// `DeviceRGB` or `DeviceGray`.
    pub(crate) colour_space: &'static str,
    /// `DCTDecode` for JPEG data, `FlateDecode` for pixels compressed here.
    pub(crate) filter: &'static str,
    pub(crate) data: Vec<u8>,
}

pub(crate) fn load(bytes: &[u8]) -> Option<Image> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        jpeg(bytes)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        png(bytes)
    } else {
        None
    }
}

/// Size and components from the first start-of-frame marker.
fn jpeg(bytes: &[u8]) -> Option<Image> {
    let mut at = 2;
    while at + 9 < bytes.len() {
        if bytes[at] != 0xFF {
            return None;
        }
        let marker = bytes[at + 1];
        if marker == 0xFF {
            at += 1;
            continue;
        }
        let len = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let height = u16::from_be_bytes([bytes[at + 5], bytes[at + 6]]) as u32;
            let width = u16::from_be_bytes([bytes[at + 7], bytes[at + 8]]) as u32;
            let colour_space = match bytes[at + 9] {
                1 => "DeviceGray",
                3 => "DeviceRGB",
                _ => return None, // CMYK would not match the sRGB output intent
            };
            if bytes[at + 4] != 8 || width == 0 || height == 0 {
                return None;
            }
            return Some(Image { width, height, colour_space, filter: "DCTDecode", data: bytes.to_vec() });
        }
        at += 2 + len;
    }
    None
}

fn png(bytes: &[u8]) -> Option<Image> {
    let mut at = 8;
    let (mut width, mut height, mut depth, mut colour, mut interlace) = (0u32, 0u32, 0u8, 0u8, 0u8);
    let mut palette: &[u8] = &[];
    let mut trns: &[u8] = &[];
    let mut idat = Vec::new();
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().ok()?) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = bytes.get(at + 8..at + 8 + len)?;
        match kind {
            b"IHDR" if len >= 13 => {
                width = u32::from_be_bytes(data[0..4].try_into().ok()?);
                height = u32::from_be_bytes(data[4..8].try_into().ok()?);
                depth = data[8];
                colour = data[9];
                interlace = data[12];
            }
            b"PLTE" => palette = data,
            b"tRNS" => trns = data,
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    if width == 0 || height == 0 || interlace != 0 || width > 8000 || height > 8000 {
        return None;
    }
    let channels = match colour {
        0 => 1,
        2 => 3,
        3 => 1,
        4 => 2,
        6 => 4,
        _ => return None,
    };
    if !(depth == 8 || depth == 16 || (colour == 3 && matches!(depth, 1 | 2 | 4))) {
        return None;
    }
    let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&idat).ok()?;
    let bits_pp = channels * depth as usize;
    let stride = (width as usize * bits_pp).div_ceil(8);
    let bpp = bits_pp.div_ceil(8).max(1);
    if raw.len() < (stride + 1) * height as usize {
        return None;
    }
    // Undo the per-row filters.
    let mut pixels = vec![0u8; stride * height as usize];
    for y in 0..height as usize {
        let filter = raw[y * (stride + 1)];
        let src = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        let (done, rest) = pixels.split_at_mut(y * stride);
        let prev = if y == 0 { None } else { Some(&done[(y - 1) * stride..]) };
        let row = &mut rest[..stride];
        for x in 0..stride {
            let a = if x >= bpp { row[x - bpp] as i16 } else { 0 };
            let b = prev.map_or(0, |p| p[x] as i16);
            let c = if x >= bpp { prev.map_or(0, |p| p[x - bpp] as i16) } else { 0 };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                _ => return None,
            };
            row[x] = src[x].wrapping_add(predicted as u8);
        }
    }
    // To 8-bit RGB over white.
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    let sample = |row: &[u8], i: usize| -> u8 {
        if depth == 16 {
            row[2 * i]
        } else if depth == 8 {
            row[i]
        } else {
            let per = 8 / depth as usize;
            let byte = row[i / per];
            let shift = 8 - depth as usize * (i % per + 1);
            (byte >> shift) & ((1u8 << depth) - 1)
        }
    };
    let over_white = |v: u8, alpha: u8| -> u8 { ((v as u16 * alpha as u16 + 255 * (255 - alpha as u16)) / 255) as u8 };
    for y in 0..height as usize {
        let row = &pixels[y * stride..(y + 1) * stride];
        for x in 0..width as usize {
            let (r, g, b, a) = match colour {
                0 => {
                    let v = sample(row, x);
                    (v, v, v, 255)
                }
                2 => (sample(row, 3 * x), sample(row, 3 * x + 1), sample(row, 3 * x + 2), 255),
                3 => {
                    let i = sample(row, x) as usize;
                    let p = palette.get(3 * i..3 * i + 3)?;
                    (p[0], p[1], p[2], trns.get(i).copied().unwrap_or(255))
                }
                4 => {
                    let v = sample(row, 2 * x);
                    (v, v, v, sample(row, 2 * x + 1))
                }
                _ => (sample(row, 4 * x), sample(row, 4 * x + 1), sample(row, 4 * x + 2), sample(row, 4 * x + 3)),
            };
            rgb.extend_from_slice(&[over_white(r, a), over_white(g, a), over_white(b, a)]);
        }
    }
    Some(Image {
        width,
        height,
        colour_space: "DeviceRGB",
        filter: "FlateDecode",
        data: miniz_oxide::deflate::compress_to_vec_zlib(&rgb, 6),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg_header(components: u8) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00];
        j.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 8, 0x00, 0x20, 0x00, 0x40, components]);
        j.extend_from_slice(&[0; 12]);
        j
    }

    #[test]
    fn a_jpeg_passes_through_with_its_size() {
        let img = load(&jpeg_header(3)).unwrap();
        assert_eq!((img.width, img.height, img.colour_space, img.filter), (64, 32, "DeviceRGB", "DCTDecode"));
        assert_eq!(load(&jpeg_header(1)).unwrap().colour_space, "DeviceGray");
        assert!(load(&jpeg_header(4)).is_none(), "CMYK would break the sRGB output intent");
    }

    #[test]
    fn other_files_are_left_out() {
        assert!(load(b"GIF89a....").is_none());
        assert!(load(b"\x89PNG\r\n\x1a\n").is_none());
        assert!(load(&[0xFF, 0xD8, 0xFF]).is_none());
    }
}
