//! dlib's 5-point landmarks in Rust against the Python reference (`models/convert_shape5.py
//! --golden`, itself checked against dlib: equal after dlib's rounding to whole pixels), on a
//! synthetic image whose formula both sides share. Needs no photo and no ONNX Runtime.
#![allow(clippy::unwrap_used)]

use anju_vision::ShapePredictor;
use image::RgbImage;
use std::path::Path;

fn synthetic() -> RgbImage {
    RgbImage::from_fn(240, 200, |x, y| {
        let (x, y) = (i64::from(x), i64::from(y));
        let r = (x * 3 + y * 5 + (x * y) % 23 * 4) % 256;
        let g = (x * 7 + y * 2 + ((x - 120).pow(2) + (y - 100).pow(2)) / 40) % 256;
        let b = (x + y * 9) % 256;
        image::Rgb([r as u8, g as u8, b as u8])
    })
}

#[test]
fn five_points_match_the_reference() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sp = ShapePredictor::load(&root.join("models/dlib_shape5.bin")).unwrap();
    assert_eq!(sp.points(), 5);
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("crates/anju-vision/tests/data/shape5_golden.json"))
            .unwrap(),
    )
    .unwrap();
    let img = synthetic();
    let rects = golden["rects"].as_array().unwrap();
    let points = golden["points"].as_array().unwrap();
    for (r, want) in rects.iter().zip(points) {
        let r: Vec<f32> = r
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let got = sp.predict(&img, [r[0], r[1], r[2], r[3]]);
        for (g, w) in got.iter().zip(want.as_array().unwrap()) {
            let (wx, wy) = (w[0].as_f64().unwrap() as f32, w[1].as_f64().unwrap() as f32);
            assert!(
                (g[0] - wx).abs() < 0.02 && (g[1] - wy).abs() < 0.02,
                "rect {r:?}: {g:?} vs {wx},{wy}"
            );
        }
    }
}
