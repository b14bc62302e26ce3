//! Cameras sustained per machine (bench/ingest/run.sh cameras, bench/README.md
//! "Edge ingest"): N simulated 640x360 H.264 cameras served by GStreamer's
//! RTSP server (`tests/rtsp/server.py … mp4`: a pre-encoded 25 fps clip of a
//! face, one independent media per client, no encoding in the server), N
//! edge camera pipelines (`rtsp::spawn_camera`: retina → libavcodec →
//! latest-frame slot sampled at 5 fps) and N `Analysis::run_camera` tasks on
//! one shared face engine thread (BlazeFace + dlib embedding, as one estate
//! of `anju edge` runs them).
//!
//! `bench_cameras CLIP.mp4 [N,N,..] [SECS] [WARMUP_SECS] [SOURCE_FPS]`
//!
//! Each camera gets its own `Analysis` value sharing the estate's engine
//! worker, gallery and stores but with its own `AnalysisStats`, so frames
//! analysed and frames refused by the engine's queue are counted per camera
//! with the production code. Per N it prints one JSON line per camera and a
//! summary: decoded fps vs the source's, sampled fps (into the slot),
//! analysed fps, frames refused by the engine queue and overwritten in the
//! slot, and the decode backlog (wall time minus decoded frames / source
//! fps) growth over the measured window; CPU of the edge (engine thread,
//! decoder threads, the rest) and of the RTSP server from `/proc`, and the
//! load average. Needs `--features rtsp`, ONNX Runtime and the face models
//! (`models/setup-ort.sh`), `/usr/bin/python3` with GStreamer's `gi`.

#[cfg(feature = "rtsp")]
mod bench {
    use anju_camera::rtsp::{spawn_camera, CameraConfig};
    use anju_camera::CameraHandle;
    use anju_faces::analysis::{Analysis, AnalysisConfig, AnalysisStats};
    use anju_store::Store;
    use std::collections::BTreeMap;
    use std::io::BufRead as _;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use tokio_util::sync::CancellationToken;

    /// Clock ticks per second of /proc times (USER_HZ, 100 on Linux).
    const HZ: f64 = 100.0;

    /// utime + stime (ticks) of a /proc stat line, and the comm.
    fn stat_ticks(path: &str) -> Option<(String, u64)> {
        let s = std::fs::read_to_string(path).ok()?;
        let (l, r) = (s.find('(')?, s.rfind(')')?);
        let comm = s.get(l + 1..r)?.to_owned();
        let f: Vec<&str> = s.get(r + 2..)?.split_whitespace().collect();
        // Fields 14 and 15 of stat; `f` starts at field 3.
        let ut: u64 = f.get(11)?.parse().ok()?;
        let st: u64 = f.get(12)?.parse().ok()?;
        Some((comm, ut + st))
    }

    /// CPU ticks of this process's threads grouped as engine / decode / rest.
    fn own_cpu() -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::from([("engine", 0), ("decode", 0), ("rest", 0)]);
        if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
            for e in rd.flatten() {
                let p = e.path().join("stat");
                let Some((comm, t)) = stat_ticks(&p.to_string_lossy()) else {
                    continue;
                };
                let k = if comm.starts_with("face-engine") {
                    "engine"
                } else if comm.starts_with("decode-") {
                    "decode"
                } else {
                    "rest"
                };
                *m.entry(k).or_default() += t;
            }
        }
        m
    }

    fn process_cpu(pid: u32) -> u64 {
        stat_ticks(&format!("/proc/{pid}/stat")).map_or(0, |(_, t)| t)
    }

    fn loadavg() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    }

    struct Server {
        child: Child,
        url: String,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }

    fn server(clip: &str, port: u16) -> anyhow::Result<Server> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/rtsp/server.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(port.to_string())
            .args(["cam", "mp4", clip])
            .stdout(Stdio::piped())
            .spawn()?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout from server.py"))?;
        let mut line = String::new();
        std::io::BufReader::new(out).read_line(&mut line)?;
        let url = line
            .strip_prefix("READY ")
            .map(|u| u.trim().to_owned())
            .ok_or_else(|| anyhow::anyhow!("server.py: {line}"))?;
        Ok(Server { child, url })
    }

    #[derive(Clone, Copy, Default)]
    struct Snap {
        at: Option<Instant>,
        decoded: u64,
        sampled: u64,
        analysed: u64,
        refused: u64,
        slot_dropped: u64,
        faces: u64,
        templates: u64,
    }

    fn snap(c: &CameraHandle, s: &AnalysisStats) -> Snap {
        Snap {
            at: Some(Instant::now()),
            decoded: c.health.frames_decoded.load(Ordering::Relaxed),
            sampled: c.health.frames_sampled.load(Ordering::Relaxed),
            analysed: AnalysisStats::get(&s.frames_analysed),
            refused: AnalysisStats::get(&s.frames_dropped),
            slot_dropped: c.slot.dropped.load(Ordering::Relaxed),
            faces: AnalysisStats::get(&s.faces),
            templates: AnalysisStats::get(&s.templates),
        }
    }

    fn secs(a: &Snap, b: &Snap) -> f64 {
        match (a.at, b.at) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        }
    }

    #[allow(clippy::too_many_lines)]
    async fn run_n(
        clip: &str,
        n: usize,
        run: Duration,
        warmup: Duration,
        src_fps: f64,
        shared: &Arc<Analysis>,
    ) -> anyhow::Result<bool> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let srv = server(clip, port)?;
        let cancel = CancellationToken::new();
        let mut cams = Vec::new();
        for i in 0..n {
            let id = format!("cam{i}");
            let mut cfg = CameraConfig::new(id.clone(), srv.url.clone());
            cfg.sample_fps = 5.0;
            let cam = spawn_camera(cfg, cancel.clone())?;
            let a = Arc::new(shared.sibling());
            tokio::spawn(
                a.clone()
                    .run_camera(id, None, cam.slot.clone(), cancel.clone()),
            );
            cams.push((cam, a));
        }
        tokio::time::sleep(warmup).await;
        let window = (run / 4).max(Duration::from_secs(5));
        let snaps = |cams: &[(CameraHandle, Arc<Analysis>)]| -> Vec<Snap> {
            cams.iter().map(|(c, a)| snap(c, &a.stats)).collect()
        };
        let (cpu0, srv0, t0) = (own_cpu(), process_cpu(srv.child.id()), Instant::now());
        let a = snaps(&cams);
        tokio::time::sleep(window).await;
        let b = snaps(&cams);
        tokio::time::sleep(run.saturating_sub(2 * window)).await;
        let c = snaps(&cams);
        tokio::time::sleep(window).await;
        let d = snaps(&cams);
        let (cpu1, srv1, wall) = (
            own_cpu(),
            process_cpu(srv.child.id()),
            t0.elapsed().as_secs_f64(),
        );
        cancel.cancel();
        let pct = |t: u64| 100.0 * t as f64 / HZ / wall;
        let cpu =
            |k: &str| pct(cpu1.get(k).copied().unwrap_or(0) - cpu0.get(k).copied().unwrap_or(0));
        let mut ok = true;
        let (mut min_dec, mut min_an, mut max_growth) = (f64::MAX, f64::MAX, f64::MIN);
        let (mut refused, mut slot_dropped) = (0u64, 0u64);
        for (i, (((a, b), c), d)) in a.iter().zip(&b).zip(&c).zip(&d).enumerate() {
            let t = secs(a, d);
            let rate = |x: u64, y: u64, t: f64| (y - x) as f64 / t.max(1e-9);
            let dec = rate(a.decoded, d.decoded, t);
            let sampled = rate(a.sampled, d.sampled, t);
            let an = rate(a.analysed, d.analysed, t);
            let an_start = rate(a.analysed, b.analysed, secs(a, b));
            let an_end = rate(c.analysed, d.analysed, secs(c, d));
            let dec_start = rate(a.decoded, b.decoded, secs(a, b));
            let dec_end = rate(c.decoded, d.decoded, secs(c, d));
            // Wall time minus stream time decoded: how far the decoder fell
            // behind a source paced at `src_fps` during the window.
            let growth = t - (d.decoded - a.decoded) as f64 / src_fps;
            let (rf, sd) = (d.refused - a.refused, d.slot_dropped - a.slot_dropped);
            let frames = (d.analysed - a.analysed).max(1) as f64;
            let faces = (d.faces - a.faces) as f64 / frames;
            let templates = (d.templates - a.templates) as f64 / frames;
            println!(
                "{{\"n\":{n},\"camera\":{i},\"secs\":{t:.1},\"decoded_fps\":{dec:.2},\"source_fps\":{src_fps},\"decoded_fps_start\":{dec_start:.2},\"decoded_fps_end\":{dec_end:.2},\"sampled_fps\":{sampled:.2},\"analysed_fps\":{an:.2},\"analysed_fps_start\":{an_start:.2},\"analysed_fps_end\":{an_end:.2},\"engine_refused\":{rf},\"slot_dropped\":{sd},\"faces_per_frame\":{faces:.2},\"embedded_per_frame\":{templates:.2},\"backlog_growth_s\":{growth:.2}}}"
            );
            min_dec = min_dec.min(dec);
            min_an = min_an.min(an);
            max_growth = max_growth.max(growth);
            refused += rf;
            slot_dropped += sd;
            // Sustained: keeps up with the source, no backlog growth, and
            // every sampled frame analysed (within 5 %: the last one may be
            // in flight), none refused.
            ok &= dec >= 0.97 * src_fps && growth <= 0.5 && an >= 0.95 * sampled && rf == 0;
        }
        let total_an: f64 = a
            .iter()
            .zip(&d)
            .map(|(a, d)| (d.analysed - a.analysed) as f64 / secs(a, d).max(1e-9))
            .sum();
        println!(
            "{{\"n\":{n},\"summary\":true,\"sustained\":{ok},\"secs\":{wall:.1},\"min_decoded_fps\":{min_dec:.2},\"min_analysed_fps\":{min_an:.2},\"total_analysed_fps\":{total_an:.2},\"max_backlog_growth_s\":{max_growth:.2},\"engine_refused\":{refused},\"slot_dropped\":{slot_dropped},\"cpu_pct\":{{\"edge_engine_thread\":{:.0},\"edge_decode_threads\":{:.0},\"edge_rest\":{:.0},\"rtsp_server\":{:.0}}},\"loadavg\":\"{}\"}}",
            cpu("engine"),
            cpu("decode"),
            cpu("rest"),
            pct(srv1 - srv0),
            loadavg()
        );
        drop(srv);
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(ok)
    }

    pub async fn main() -> anyhow::Result<()> {
        let mut args = std::env::args().skip(1);
        let clip = args.next().ok_or_else(|| {
            anyhow::anyhow!(
                "usage: bench_cameras CLIP.mp4 [N,N,..] [SECS] [WARMUP_SECS] [SOURCE_FPS]"
            )
        })?;
        let ns: Vec<usize> = args
            .next()
            .unwrap_or_else(|| "1,2,4,6,8".to_owned())
            .split(',')
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let run = Duration::from_secs(args.next().map_or(Ok(40), |s| s.parse())?);
        let warmup = Duration::from_secs(args.next().map_or(Ok(10), |s| s.parse())?);
        let src_fps: f64 = args.next().map_or(Ok(25.0), |s| s.parse())?;
        let dir = tempfile::tempdir()?;
        let local = Store::connect(&format!("sqlite://{}/edge.db", dir.path().display())).await?;
        let (inject, mut sightings) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move { while sightings.recv().await.is_some() {} });
        // ANJU_ENGINE_THREADS: face-engine threads (default: one per core).
        let mut cfg = AnalysisConfig::default();
        if let Ok(t) = std::env::var("ANJU_ENGINE_THREADS") {
            cfg.engine_threads = t.parse()?;
        }
        let shared = Analysis::start(
            "BENCH",
            cfg,
            &anju_core::Registry::default(),
            &[],
            local,
            inject,
        )
        .await?;
        let mut best = 0;
        for n in ns {
            if run_n(&clip, n, run, warmup, src_fps, &shared).await? {
                best = n;
            } else {
                println!("{{\"stop\":true,\"not_sustained_at\":{n}}}");
                break;
            }
        }
        println!("{{\"cameras_sustained\":{best}}}");
        Ok(())
    }
}

#[cfg(feature = "rtsp")]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bench::main().await
}

#[cfg(not(feature = "rtsp"))]
fn main() {
    eprintln!("bench_cameras needs --features rtsp");
    std::process::exit(2);
}
