//! Against GStreamer's RTSP server (tests/rtsp/server.py): frames arrive
//! decoded; the server killed and restarted is reconnected to without help.
#![cfg(feature = "rtsp")]

mod common;

use anju_camera::rtsp::{spawn_camera, CameraConfig};
use anju_camera::{CameraHandle, Frame};
use common::wait_for;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn start_server(port: u16) -> Server {
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/rtsp/server.py");
    let python = std::env::var("ANJU_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let child = Command::new(python)
        .arg(script)
        .arg(port.to_string())
        .arg("cam")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the GStreamer RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0)");
    let server = Server(child);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "RTSP server did not listen"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server
}

/// Waits until the camera has sampled a few frames, then takes one.
async fn sampled_frame(cam: &CameraHandle, what: &str) -> std::sync::Arc<Frame> {
    let h = cam.health.clone();
    wait_for(what, 60, || h.frames_sampled.load(Ordering::Relaxed) >= 3).await;
    tokio::time::timeout(Duration::from_secs(30), cam.slot.take())
        .await
        .expect("a frame")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_arrive_and_a_restarted_server_is_reconnected() {
    let port = free_port();
    let server = start_server(port).await;
    let cancel = CancellationToken::new();
    let mut cfg = CameraConfig::new("cam-t", format!("rtsp://127.0.0.1:{port}/cam"));
    cfg.sample_fps = 5.0;
    cfg.timeout = Duration::from_secs(5);
    let cam = spawn_camera(cfg, cancel.clone()).expect("camera");

    let h = cam.health.clone();
    let f = sampled_frame(&cam, "decoded frames").await;
    assert_eq!((f.width, f.height), (640, 360));
    assert_eq!(f.rgb.len(), 640 * 360 * 3);
    assert!(h.last_frame().is_some());

    // The camera "reboots".
    drop(server);
    let h2 = h.clone();
    wait_for("the loss to be noticed", 60, move || {
        h2.connection_errors.load(Ordering::Relaxed) >= 1
    })
    .await;
    let before = h.frames_decoded.load(Ordering::Relaxed);
    let _server = start_server(port).await;
    let h3 = h.clone();
    wait_for("reconnection and new frames", 120, move || {
        h3.reconnects.load(Ordering::Relaxed) >= 1
            && h3.frames_decoded.load(Ordering::Relaxed) > before + 5
    })
    .await;
    eprintln!(
        "decoded {} frames, fps {:.1}, dropped from slot {}, reconnects {}",
        h.frames_decoded.load(Ordering::Relaxed),
        h.fps(),
        cam.slot.dropped.load(Ordering::Relaxed),
        h.reconnects.load(Ordering::Relaxed)
    );
    cancel.cancel();
}

/// `--rtsp-transport udp`: RTP on its own UDP ports from the same server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_arrive_over_udp() {
    let port = free_port();
    let _server = start_server(port).await;
    let cancel = CancellationToken::new();
    let mut cfg = CameraConfig::new("cam-u", format!("rtsp://127.0.0.1:{port}/cam"));
    cfg.transport = anju_camera::RtspTransport::Udp;
    cfg.timeout = Duration::from_secs(5);
    let cam = spawn_camera(cfg, cancel.clone()).expect("camera");
    let h = cam.health.clone();
    let f = sampled_frame(&cam, "frames over UDP").await;
    assert_eq!((f.width, f.height), (640, 360));
    assert_eq!(h.connection_errors.load(Ordering::Relaxed), 0);
    cancel.cancel();
}
