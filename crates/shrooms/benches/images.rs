//! Photo processing: a generated 12-megapixel JPEG (4000x3000, gradients and
//! noise like a real photo, quality 90) turned into a thumbnail, and into
//! everything an upload produces (metadata stripped, thumbnail and display
//! renditions in WebP and JPEG). `cargo bench -p shrooms --bench images`
//! (RUNS=10 to change the number of runs). Prints the median and the slowest run.

use shrooms_core::images::{self, RenditionFormat};
use std::time::{Duration, Instant};

fn photo(w: u32, h: u32) -> Vec<u8> {
    let mut seed: u32 = 0x9E37_79B9;
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = (seed % 24) as u32;
        image::Rgb([((x * 200 / w) + n) as u8, ((y * 200 / h) + n) as u8, (((x + y) * 100 / (w + h)) + 60 + n) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&img).expect("encode");
    out
}

fn measure(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[times.len() / 2], times[times.len() - 1])
}

fn main() {
    let runs: usize = std::env::var("RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10).max(1);
    let src = photo(4000, 3000);
    println!("source: 4000x3000 JPEG, {:.1} MB", src.len() as f64 / 1e6);
    let (median, max) = measure(runs, || {
        let t = images::thumbnail(image::ImageFormat::Jpeg, &src, RenditionFormat::Jpeg).expect("thumbnail");
        assert_eq!((t.width, t.height), (320, 240));
    });
    println!(
        "thumbnail (decode, orient, scale to 320 px, JPEG): median {median:.2?}, slowest {max:.2?} over {runs} runs"
    );
    let (median, max) = measure(runs, || {
        let p = images::process(image::ImageFormat::Jpeg, &src).expect("process");
        assert_eq!(p.renditions.len(), 4);
    });
    println!("whole upload (strip, decode, 320 and 1600 px in WebP and JPEG): median {median:.2?}, slowest {max:.2?} over {runs} runs");
}
