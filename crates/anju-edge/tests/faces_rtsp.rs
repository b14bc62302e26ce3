//! Faces end to end against GStreamer's RTSP server (tests/rtsp/server.py,
//! started through [`anju_camera::sim_camera`]):
//! the server serves a still photo of a person as live H.264; the person is
//! enrolled from another photo; the camera's frames go through the face
//! engine and the tracker, and the worker stores a `Sighting` of that person
//! (with a direction and a best-face snapshot) in the local store.
//!
//! Needs the pinned test photos (`bash models/fetch-test-photos.sh`) and
//! ONNX Runtime (`bash models/setup-ort.sh`); without them it is skipped
//! with a loud message.
#![cfg(feature = "rtsp")]
#![allow(clippy::unwrap_used)]

mod common;

use anju_bus::MqttConfig;
use anju_camera::rtsp::{spawn_camera, CameraConfig};
use anju_camera::simcam::default_script;
use anju_camera::{sim_camera, SimCameraConfig};
use anju_core::{Direction, Event, FacesDirection};
use anju_edge::{spawn_ingest, WorkerConfig};
use anju_faces::analysis::{Analysis, AnalysisConfig, AnalysisStats};
use anju_rules::RulesConfig;
use anju_store::Store;
use anju_vision::{EngineConfig, FaceWorker};
use common::{mqtt_url, unique};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Run {
    sightings: Vec<anju_core::Sighting>,
    analysis: Arc<Analysis>,
    local: Store,
    slot_drops: u64,
    _dir: tempfile::TempDir,
}

/// Serves `served` over RTSP to an analysed camera of a fresh estate whose
/// gallery holds `templates` (for P1/P2), until `want` sightings are stored.
async fn run_camera_until(
    served: &std::path::Path,
    templates: &[(String, Vec<f32>)],
    want: usize,
    stored: Option<Vec<anju_store::StoredStranger>>,
) -> Run {
    let estate = unique("F");
    let registry = common::registry(&estate);
    let dir = tempfile::tempdir().unwrap();
    let local = Store::connect(&format!("sqlite://{}/edge.db", dir.path().display()))
        .await
        .unwrap();
    for s in stored.unwrap_or_default() {
        let mut s = s;
        s.estate = estate.clone();
        local.upsert_stranger(&s).await.unwrap();
    }
    let cancel = CancellationToken::new();
    let ingest = spawn_ingest(
        &MqttConfig::new(mqtt_url(), unique("faces")),
        WorkerConfig::new(estate.clone()),
        Arc::new(registry.clone()),
        "Asia/Shanghai".parse().unwrap(),
        RulesConfig::default(),
        local.clone(),
        &anju_backoff::Tasks::new(),
        cancel.clone(),
    )
    .unwrap();
    let snapshots = dir.path().join("snapshots");
    let mut cfg = AnalysisConfig::default();
    cfg.tracker.max_hits = 4;
    cfg.snapshots = Some(snapshots.clone());
    let analysis = Analysis::start(
        &estate,
        cfg,
        &registry,
        templates,
        local.clone(),
        ingest.inject.clone(),
    )
    .await
    .expect("analysis");
    assert_eq!(analysis.gallery().len(), templates.len());

    let port = free_port();
    let mut sc = SimCameraConfig::new(default_script(), port, "face");
    sc.photo = Some(served.to_path_buf());
    if let Ok(py) = std::env::var("ANJU_TEST_PYTHON") {
        sc.python = py.into();
    }
    let server = sim_camera(&sc)
        .await
        .expect("the GStreamer RTSP server (python3-gi)");
    assert_eq!(server.url, format!("rtsp://127.0.0.1:{port}/face"));
    let mut cam = CameraConfig::new("cam-e1", server.url.clone());
    cam.sample_fps = 5.0;
    cam.timeout = Duration::from_secs(5);
    let cam = spawn_camera(cam, cancel.clone()).unwrap();
    let task = tokio::spawn(analysis.clone().run_camera(
        "cam-e1".into(),
        Some(FacesDirection::In),
        cam.slot.clone(),
        cancel.clone(),
    ));
    // A deadlock guard, not a speed requirement.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let sightings = loop {
        let evs = local.events_after(0, 1000).await.unwrap();
        let found: Vec<_> = evs
            .into_iter()
            .filter_map(|(_, e)| match e {
                Event::Sighting { body, .. } => Some(body),
                _ => None,
            })
            .collect();
        if found.len() >= want {
            break found;
        }
        let st = &analysis.stats;
        assert!(
            tokio::time::Instant::now() < deadline,
            "no sighting stored: frames analysed {}, faces {}, tracks {}, undecided {}, errors {}",
            AnalysisStats::get(&st.frames_analysed),
            AnalysisStats::get(&st.faces),
            AnalysisStats::get(&st.tracks_closed),
            AnalysisStats::get(&st.undecided),
            AnalysisStats::get(&st.errors),
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    cancel.cancel();
    task.await.unwrap().unwrap();
    ingest.join().await;
    server.stop().await;
    Run {
        sightings,
        analysis,
        local,
        slot_drops: cam.slot.dropped.load(std::sync::atomic::Ordering::Relaxed),
        _dir: dir,
    }
}

fn photos() -> Option<PathBuf> {
    let photos = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/test-photos");
    if ["obama.jpg", "obama2.jpg", "biden.jpg"]
        .iter()
        .all(|f| photos.join(f).is_file())
    {
        Some(photos)
    } else {
        eprintln!(
            "\n!!! SKIPPED: test photos missing in {} — run `bash models/fetch-test-photos.sh`\n",
            photos.display()
        );
        None
    }
}

/// Template of the one face of a photo; `None` (skip, loudly) without ONNX Runtime.
async fn enrol(photo: PathBuf) -> Option<Vec<f32>> {
    let worker = tokio::task::spawn_blocking(|| FaceWorker::spawn(EngineConfig::default(), 2))
        .await
        .unwrap();
    let worker = match worker {
        Ok(w) => w,
        Err(e) => {
            eprintln!("\n!!! SKIPPED: the face engine cannot start ({e}) — run `bash models/setup-ort.sh`\n");
            return None;
        }
    };
    let bytes = std::fs::read(&photo).unwrap();
    let t = tokio::task::spawn_blocking(move || {
        worker
            .call(move |e| e.enrol_photo(&bytes))
            .unwrap()
            .unwrap()
    })
    .await
    .unwrap();
    Some(t.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_face_on_camera_is_stored_as_a_sighting_of_that_person() {
    let Some(photos) = photos() else { return };
    let Some(template) = enrol(photos.join("obama2.jpg")).await else {
        return;
    };
    let run = run_camera_until(
        &photos.join("obama.jpg"),
        &[("P1".to_owned(), template)],
        1,
        None,
    )
    .await;
    let sighting = run.sightings[0].clone();
    let analysis = run.analysis.clone();
    assert_eq!(sighting.person.as_ref().map(|p| p.as_str()), Some("P1"));
    assert!(sighting.stranger.is_none());
    assert_eq!(sighting.camera.as_str(), "cam-e1");
    assert_eq!(sighting.direction, Some(Direction::In));
    assert!(sighting.score.is_some_and(|s| s > 0.9));
    // Evidence cites the snapshot by its API path; the JPEG is in the
    // local store (forwarded to the centre with the events).
    let url = sighting.snapshot.expect("a snapshot");
    let key = url
        .strip_prefix("/api/v1/snapshots/")
        .unwrap_or_else(|| panic!("not an API path: {url}"));
    let stored = analysis
        .local
        .get_snapshot(key)
        .await
        .unwrap()
        .expect("the snapshot in the local store");
    let img = image::load_from_memory(&stored.jpeg).expect("the snapshot is a JPEG");
    assert!(img.width() >= 64);
    assert_eq!(AnalysisStats::get(&analysis.stats.sightings_stranger), 0);
    eprintln!(
        "frames analysed {}, dropped by the engine queue {}, slot drops {}, faces {}, tracks {}",
        AnalysisStats::get(&analysis.stats.frames_analysed),
        AnalysisStats::get(&analysis.stats.frames_dropped),
        run.slot_drops,
        AnalysisStats::get(&analysis.stats.faces),
        AnalysisStats::get(&analysis.stats.tracks_closed),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_face_gets_the_same_stranger_id_across_tracks_and_restarts() {
    let Some(photos) = photos() else { return };
    let Some(template) = enrol(photos.join("obama2.jpg")).await else {
        return;
    };
    let templates = [("P1".to_owned(), template)];
    let run = run_camera_until(&photos.join("biden.jpg"), &templates, 2, None).await;
    let ids: Vec<_> = run
        .sightings
        .iter()
        .map(|s| (s.person.clone(), s.stranger.clone().map(|x| x.to_string())))
        .collect();
    let first = ids[0].1.clone().expect("a stranger");
    assert!(first.ends_with("-1"), "{first}");
    assert!(ids
        .iter()
        .all(|(p, s)| p.is_none() && s.as_deref() == Some(first.as_str())));
    // Only templates are kept for strangers; the stored gallery reloads.
    let estate = run.analysis.estate.clone();
    let stored = run
        .local
        .strangers(&estate, anju_faces::analysis::DEFAULT_MODEL)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].samples >= 2);
    // Another day, another worker (fresh estate, gallery carried over): same id.
    let again = run_camera_until(&photos.join("biden.jpg"), &templates, 1, Some(stored)).await;
    let id = again.sightings[0]
        .stranger
        .clone()
        .expect("a stranger")
        .to_string();
    assert_eq!(id, first);
}

/// A person enrolled after the analysis started is recognised once the
/// gallery is refreshed; an unchanged template list leaves it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gallery_takes_in_later_enrolments() {
    let Some(photos) = photos() else { return };
    let Some(template) = enrol(photos.join("obama2.jpg")).await else {
        return;
    };
    let estate = unique("G");
    let registry = common::registry(&estate);
    let dir = tempfile::tempdir().unwrap();
    let local = Store::connect(&format!("sqlite://{}/edge.db", dir.path().display()))
        .await
        .unwrap();
    let (inject, _rx) = tokio::sync::mpsc::channel(16);
    let analysis = Analysis::start(
        &estate,
        AnalysisConfig::default(),
        &registry,
        &[],
        local,
        inject,
    )
    .await
    .expect("analysis");
    let q = anju_vision::Template::from_raw(template.clone()).unwrap();
    assert!(analysis.gallery().identify(&q).best.is_none());
    let templates = vec![("P1".to_owned(), template)];
    assert_eq!(
        analysis
            .refresh_gallery(&registry, &templates)
            .await
            .unwrap(),
        Some(1)
    );
    let id = analysis.gallery().identify(&q);
    assert_eq!(id.decision, anju_vision::Decision::Identified);
    assert_eq!(id.best.unwrap().person_id, "P1");
    // The same list again: nothing to do.
    assert_eq!(
        analysis
            .refresh_gallery(&registry, &templates)
            .await
            .unwrap(),
        None
    );
    // A template of someone who is neither an occupant nor on the watch
    // list is not taken in.
    let stranger = vec![("NOBODY".to_owned(), templates[0].1.clone())];
    assert_eq!(
        analysis
            .refresh_gallery(&registry, &stranger)
            .await
            .unwrap(),
        Some(0)
    );
    assert!(analysis.gallery().identify(&q).best.is_none());
}
