//! Per-call timings, side by side with `models/reference.py bench` / `gallery-bench` (same
//! inputs shape, same ONNX Runtime library, one thread). Run: `bash bench/vision.sh`.

use std::time::Instant;

use anju_vision::imgproc::{letterbox, warp, Rect, Similarity};
use anju_vision::{EngineConfig, FaceEngine, Gallery, MatchThresholds, Template};

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let med = v[v.len() / 2];
    let p99 = v[((v.len() as f64) * 0.99) as usize - 1];
    (med, p99)
}

fn time<F: FnMut()>(warm: usize, n: usize, mut f: F) -> (f64, f64) {
    for _ in 0..warm {
        f();
    }
    stats(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect(),
    )
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut e = FaceEngine::new(EngineConfig::default())?;
    let mut rng = Lcg(7);
    let mut out = serde_json::Map::new();
    let mut put = |k: &str, (m, p): (f64, f64)| {
        out.insert(k.into(), serde_json::json!({"median_ms": (m * 1000.0).round() / 1000.0, "p99_ms": (p * 1000.0).round() / 1000.0}));
    };

    // Detector per call on a 192x192 input (includes letterbox of a 192x192 image + tensor fill).
    let img192 = image::RgbImage::from_fn(192, 192, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 77])
    });
    put(
        "detector",
        time(10, 200, || {
            drop(e.detector().detect_rect(&img192, Rect::full(&img192)))
        }),
    );
    // Embedder per call, batch 1 and batch 8 (per face).
    let chip: Vec<f32> = (0..150 * 150 * 3)
        .map(|_| (rng.next() + 1.0) * 127.5)
        .collect();
    put(
        "embedder",
        time(10, 200, || drop(e.embedder().embed_raw(&[&chip]))),
    );
    let batch: Vec<&[f32]> = (0..8).map(|_| chip.as_slice()).collect();
    let (m, p) = time(3, 30, || drop(e.embedder().embed_raw(&batch)));
    put("embedder_batch8_per_face", (m / 8.0, p / 8.0));
    // Preprocessing: letterbox a 1920x1080 frame to 192, and align one face chip.
    let frame = image::RgbImage::from_fn(1920, 1080, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 77])
    });
    put(
        "letterbox_1080p_to_192",
        time(3, 50, || drop(letterbox(&frame, Rect::full(&frame), 192))),
    );
    let t = Similarity::umeyama(
        &[
            [900.0, 500.0],
            [1000.0, 500.0],
            [950.0, 560.0],
            [950.0, 610.0],
        ],
        &[
            [47.733, 47.140],
            [100.281, 47.123],
            [74.013, 76.562],
            [74.013, 106.009],
        ],
    )
    .ok_or("umeyama")?;
    put(
        "align_chip_150",
        time(10, 200, || drop(warp(&frame, &t, 150, 150, false))),
    );
    // dlib's 5-point landmarks (regression trees) on a face box of a 1080p frame.
    let sp = anju_vision::ShapePredictor::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/dlib_shape5.bin"),
    )?;
    put(
        "landmarks_5pt",
        time(10, 500, || {
            drop(sp.predict(&frame, [880.0, 440.0, 1020.0, 580.0]))
        }),
    );
    // The whole per-face path on a photo (detect + landmarks + align + embed), when the test
    // photos are there (bash models/fetch-test-photos.sh).
    let photo =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/test-photos/obama.jpg");
    if let Ok(img) = image::open(&photo) {
        let img = img.to_rgb8();
        put(
            "face_path_photo",
            time(5, 100, || drop(e.embed_largest(&img))),
        );
        // A camera frame: 640x360 with the photo scaled into it (the same frame
        // `models/reference.py face-path` builds).
        let small = image::imageops::resize(&img, 320, 240, image::imageops::FilterType::Triangle);
        let mut frame = image::RgbImage::from_pixel(640, 360, image::Rgb([90, 90, 90]));
        image::imageops::replace(&mut frame, &small, 160, 60);
        put(
            "face_path_640x360",
            time(10, 200, || drop(e.analyze(&frame))),
        );
    }
    // Gallery: 15,000 x 128 templates, top-2 (best, second, margin).
    let mut g = Gallery::new(
        "bench",
        128,
        MatchThresholds {
            accept: 0.953,
            margin: 0.01,
        },
    );
    for i in 0..15_000 {
        let v: Vec<f32> = (0..128).map(|_| rng.next()).collect();
        g.add(
            &format!("p{}", i / 3),
            false,
            &Template::from_raw(v).ok_or("zero")?,
        )?;
    }
    let qs: Vec<Template> = (0..1000)
        .map(|_| Template::from_raw((0..128).map(|_| rng.next()).collect()).ok_or("zero"))
        .collect::<Result<_, _>>()?;
    let mut i = 0;
    put(
        "gallery_15000x128_top2",
        time(50, 1000, || {
            std::hint::black_box(g.identify(&qs[i % qs.len()]));
            i += 1;
        }),
    );
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
