//! Integration tests with the committed ONNX models. Need ONNX Runtime (`bash models/setup-ort.sh`);
//! the photo tests need `bash models/fetch-test-photos.sh` (run automatically; skipped loudly if
//! the fetch fails, e.g. offline).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anju_vision::{EngineConfig, EnrolError, FaceEngine, Template};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn engine() -> &'static Mutex<FaceEngine> {
    static E: OnceLock<Mutex<FaceEngine>> = OnceLock::new();
    E.get_or_init(|| {
        Mutex::new(
            FaceEngine::new(EngineConfig::default())
                .expect("engine (run bash models/setup-ort.sh)"),
        )
    })
}

/// The 4-point pipeline of the Python reference (`models/reference.py`), for golden comparisons.
fn engine4() -> &'static Mutex<FaceEngine> {
    static E: OnceLock<Mutex<FaceEngine>> = OnceLock::new();
    E.get_or_init(|| {
        Mutex::new(
            FaceEngine::new(EngineConfig {
                landmarks: Some("none".into()),
                ..EngineConfig::default()
            })
            .expect("engine (run bash models/setup-ort.sh)"),
        )
    })
}

fn golden() -> serde_json::Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden.json"),
    )
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn vec_of(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Same formula as `golden_input()` in models/reference.py.
fn golden_chip() -> Vec<f32> {
    let mut out = Vec::with_capacity(150 * 150 * 3);
    for y in 0..150 {
        for x in 0..150 {
            for c in 0..3 {
                let (xf, yf, cf) = (x as f64, y as f64, c as f64);
                let v = 127.5
                    + 100.0
                        * (xf * (0.05 + 0.01 * cf) + yf * 0.031 * (cf + 1.0)).sin()
                        * (yf * 0.043 - cf).cos();
                out.push(v as f32);
            }
        }
    }
    out
}

fn photos() -> Option<PathBuf> {
    let dir = repo().join(".cache/test-photos");
    let ok = std::process::Command::new("bash")
        .arg(repo().join("models/fetch-test-photos.sh"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Some(dir)
    } else {
        eprintln!("\n!!!!! SKIPPING photo tests: fetching face_recognition==1.3.0 test photos failed !!!!!\n");
        None
    }
}

#[test]
fn golden_embedding_matches_python_reference() {
    let g = golden();
    let mut e = engine().lock().unwrap();
    let chip = golden_chip();
    let raw = e.embedder().embed_raw(&[&chip]).unwrap();
    let t = Template::from_raw(raw[0].clone()).unwrap();
    let reference = Template::from_raw(vec_of(&g["embedding"])).unwrap();
    let cos = t.similarity(&reference);
    assert!(cos >= 0.999, "cosine to Python reference {cos}");
    // Batched: two chips in one call give the same embeddings.
    let mirrored = anju_vision::embedder::mirror(&chip, 150, 150);
    let raw2 = e.embedder().embed_raw(&[&chip, &mirrored]).unwrap();
    let flipped_ref = Template::from_raw(vec_of(&g["embedding_flipped"])).unwrap();
    assert!(
        Template::from_raw(raw2[0].clone())
            .unwrap()
            .similarity(&reference)
            >= 0.999
    );
    assert!(
        Template::from_raw(raw2[1].clone())
            .unwrap()
            .similarity(&flipped_ref)
            >= 0.999
    );
}

#[test]
fn photos_same_person_matches_different_does_not() {
    let Some(dir) = photos() else { return };
    let g = golden();
    // The 4-point pipeline against the Python reference.
    {
        let mut e4 = engine4().lock().unwrap();
        for name in [
            "obama.jpg",
            "obama2.jpg",
            "obama3.jpg",
            "obama_partial_face.jpg",
            "biden.jpg",
        ] {
            let img = image::open(dir.join(name)).unwrap().to_rgb8();
            let (_, t) = e4.embed_largest(&img).unwrap().unwrap();
            // Whole pipeline (resize differs slightly from Pillow) against the Python reference.
            let reference = Template::from_raw(vec_of(&g["photos"][name]["embedding"])).unwrap();
            let cos = t.similarity(&reference);
            assert!(cos >= 0.98, "{name}: cosine to Python pipeline {cos}");
        }
    }
    // The default pipeline (dlib's 5-point alignment) decides same and different people.
    let mut e = engine().lock().unwrap();
    assert!(e.has_landmarks());
    let thr = e.thresholds().far_1e2;
    let mut ts = Vec::new();
    for name in [
        "obama.jpg",
        "obama2.jpg",
        "obama3.jpg",
        "obama_partial_face.jpg",
        "biden.jpg",
    ] {
        let img = image::open(dir.join(name)).unwrap().to_rgb8();
        let (_, t) = e
            .embed_largest(&img)
            .unwrap()
            .unwrap_or_else(|| panic!("no face in {name}"));
        ts.push((name, t));
    }
    for (i, (a, ta)) in ts.iter().enumerate() {
        for (b, tb) in &ts[i + 1..] {
            let s = ta.similarity(tb);
            let same = a.starts_with("obama") == b.starts_with("obama");
            assert_eq!(
                s >= thr,
                same,
                "{a} vs {b}: similarity {s}, threshold {thr}"
            );
        }
    }
    // Enrolment + gallery: obama enrolled from two photos, biden from one.
    let mut gal = e.new_gallery("FCY");
    for (name, person) in [
        ("obama.jpg", "p-obama"),
        ("obama2.jpg", "p-obama"),
        ("biden.jpg", "p-biden"),
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let t = e.enrol_photo(&bytes).unwrap();
        gal.add(person, false, &t).unwrap();
    }
    gal.thresholds.accept = thr;
    let probe = &ts[2].1; // obama3
    let id = gal.identify(probe);
    assert_eq!(id.best.as_ref().unwrap().person_id, "p-obama");
    assert_eq!(id.decision, anju_vision::Decision::Identified);
}

#[test]
fn photo_without_face_is_reported() {
    let mut e = engine().lock().unwrap();
    // A smooth synthetic gradient with no face.
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x / 3) as u8, (y / 2) as u8, 128])
    });
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    match e.enrol_photo(&png) {
        Err(EnrolError::NoFace) => {}
        other => panic!("expected NoFace, got {other:?}"),
    }
    assert!(e.analyze(&img).unwrap().is_empty());
    assert!(matches!(
        e.enrol_photo(b"not an image"),
        Err(EnrolError::Decode(_))
    ));
}

#[test]
fn small_faces_found_by_tiles_in_1080p() {
    let Some(dir) = photos() else { return };
    let face = image::open(dir.join("obama2.jpg")).unwrap().to_rgb8();
    // Paste a downscaled photo (face ≈ 80-100 px wide) into a grey 1080p frame.
    let small = image::imageops::resize(&face, 160, 307, image::imageops::FilterType::Triangle);
    let mut frame = image::RgbImage::from_pixel(1920, 1080, image::Rgb([90, 90, 90]));
    image::imageops::overlay(&mut frame, &small, 1500, 600);
    let mut e = engine().lock().unwrap();
    let full = e
        .detector()
        .detect(&frame, &anju_vision::DetectRegion::Full)
        .unwrap();
    let tiled = e
        .detector()
        .detect(
            &frame,
            &anju_vision::DetectRegion::Tiles {
                tile: 640,
                overlap: 0.25,
            },
        )
        .unwrap();
    assert_eq!(
        tiled.len(),
        1,
        "tiles: {tiled:?} (full frame found {})",
        full.len()
    );
    assert!(
        tiled[0].bbox[0] > 1500.0 && tiled[0].bbox[2] < 1660.0,
        "{:?}",
        tiled[0]
    );
}

#[test]
fn worker_thread_runs_jobs() {
    let w = anju_vision::FaceWorker::spawn(EngineConfig::default(), 2).unwrap();
    let chip = golden_chip();
    let r = w.call(move |e| e.embed_chips(&[chip])).unwrap().unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].as_ref().unwrap().0.len(), 128);
}

/// A pool of two engines: jobs sent from several threads at once all come back, with the same
/// embedding whichever engine ran them, on both engine threads.
#[test]
fn engine_pool_runs_jobs_in_parallel() {
    let w = std::sync::Arc::new(
        anju_vision::FaceWorker::spawn_pool(EngineConfig::default(), 8, 2).unwrap(),
    );
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let w = w.clone();
            std::thread::spawn(move || {
                let chip = golden_chip();
                w.call(move |e| {
                    let name = std::thread::current().name().unwrap_or("").to_owned();
                    (e.embed_chips(&[chip]).unwrap(), name)
                })
                .unwrap()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let first = results[0].0[0].clone().unwrap();
    for (r, name) in &results {
        assert!(name.starts_with("face-engine-"), "{name}");
        assert!(r[0].as_ref().unwrap().similarity(&first) > 0.9999);
    }
    assert!(w.health().up.load(std::sync::atomic::Ordering::Relaxed));
}
