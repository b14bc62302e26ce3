//! Simulated cameras (`anju sim camera`, the demo, tests): GStreamer's RTSP
//! server (`tests/rtsp/server.py`, run by a Python with `gi`) serving a
//! photo frozen into a live H.264 stream, a test pattern, or a scene the
//! caller changes (an empty view or one of several photos: a face appears,
//! stays, leaves).

use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How to run the server script.
#[derive(Debug, Clone)]
pub struct SimCameraConfig {
    /// `tests/rtsp/server.py`.
    pub script: PathBuf,
    /// A Python with GStreamer's `gi` bindings (Debian: `/usr/bin/python3`).
    pub python: PathBuf,
    pub port: u16,
    pub mount: String,
    /// A JPEG/PNG photo to serve; `None`: a moving test pattern.
    pub photo: Option<PathBuf>,
    /// Frame size of the stream (the photo is scaled into it, aspect kept).
    pub size: (u32, u32),
    /// Scene mode: these photos, none shown at first; switched with
    /// [`SimCamera::show`] and [`SimCamera::empty`]. Takes precedence over
    /// `photo`.
    pub scene: Vec<PathBuf>,
}

impl SimCameraConfig {
    pub fn new(script: impl Into<PathBuf>, port: u16, mount: impl Into<String>) -> Self {
        Self {
            script: script.into(),
            python: PathBuf::from("/usr/bin/python3"),
            port,
            mount: mount.into(),
            photo: None,
            size: (640, 480),
            scene: Vec::new(),
        }
    }
}

/// A running simulated camera; the server is killed when this is dropped.
#[derive(Debug)]
pub struct SimCamera {
    pub url: String,
    child: Child,
    /// Scene mode: the server's stdin and the rest of its output.
    control: Option<(ChildStdin, Lines<BufReader<ChildStdout>>)>,
}

impl SimCamera {
    /// Scene mode: shows photo `n` (from 1) once the server made the switch.
    ///
    /// # Errors
    /// Not a scene camera, the server gone or not answering in 10 s.
    pub async fn show(&mut self, n: usize) -> anyhow::Result<()> {
        self.switch(&format!("show {n}")).await
    }

    /// Scene mode: an empty view.
    ///
    /// # Errors
    /// As [`SimCamera::show`].
    pub async fn empty(&mut self) -> anyhow::Result<()> {
        self.switch("empty").await
    }

    async fn switch(&mut self, what: &str) -> anyhow::Result<()> {
        let (stdin, lines) = self.control.as_mut().context("not a scene camera")?;
        stdin.write_all(format!("{what}\n").as_bytes()).await?;
        stdin.flush().await?;
        tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(l) = lines.next_line().await? {
                if l.starts_with("SHOWN") {
                    return Ok(());
                }
            }
            anyhow::bail!("the RTSP server exited")
        })
        .await
        .context("the RTSP server did not switch the scene in 10 s")?
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        if let Err(e) = self.child.kill().await {
            tracing::debug!(error = %e, "Simulated camera already stopped.");
        }
    }
}

/// Starts a simulated camera and waits (at most 30 s) until it listens.
///
/// # Errors
/// The Python or the script cannot be run (missing GStreamer packages), the
/// photo does not exist, the server does not become ready.
pub async fn sim_camera(cfg: &SimCameraConfig) -> anyhow::Result<SimCamera> {
    let mut cmd = Command::new(&cfg.python);
    cmd.arg(&cfg.script)
        .arg(cfg.port.to_string())
        .arg(&cfg.mount);
    let scene = !cfg.scene.is_empty();
    if scene {
        cmd.arg("scene");
        for p in &cfg.scene {
            anyhow::ensure!(p.is_file(), "photo {} not found", p.display());
            cmd.arg(p);
        }
        cmd.stdin(Stdio::piped());
    } else {
        cmd.arg("h264");
    }
    if let (false, Some(p)) = (scene, &cfg.photo) {
        anyhow::ensure!(p.is_file(), "photo {} not found", p.display());
        cmd.arg(p)
            .arg(cfg.size.0.to_string())
            .arg(cfg.size.1.to_string());
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "running {} {} (Debian: python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp)",
                cfg.python.display(),
                cfg.script.display()
            )
        })?;
    let out = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout from the RTSP server"))?;
    let mut lines = BufReader::new(out).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = lines.next_line().await? {
            if let Some(url) = l.strip_prefix("READY ") {
                return Ok::<_, std::io::Error>(Some(url.trim().to_owned()));
            }
        }
        Ok(None)
    })
    .await;
    match ready {
        Ok(Ok(Some(url))) => {
            let control = match child.stdin.take() {
                Some(stdin) if scene => Some((stdin, lines)),
                _ => None,
            };
            Ok(SimCamera {
                url,
                child,
                control,
            })
        }
        Ok(Ok(None)) => anyhow::bail!("the RTSP server exited before it was ready"),
        Ok(Err(e)) => Err(e).context("reading the RTSP server's output"),
        Err(_) => anyhow::bail!("the RTSP server was not ready within 30 s"),
    }
}

/// `tests/rtsp/server.py` of this repository (for the demo and tests).
pub fn default_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/rtsp/server.py")
}
