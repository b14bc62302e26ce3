//! RTSP cameras (feature `rtsp`): one retina session per camera over
//! TCP-interleaved RTP, H.264 and H.265 decoded by libavcodec
//! (ffmpeg-next) on a dedicated thread, sampled into a latest-frame slot.
//!
//! - Every network await has a timeout (retina has none of its own).
//! - `run()` loops `run_once()` with capped exponential backoff and jitter;
//!   a camera that reboots or a server that restarts is reconnected to
//!   without help.
//! - Credentials are never part of the URL (rejected) nor of logs.
//! - Every frame is decoded (H.26x needs them all, in order); frames are
//!   then sampled at the configured rate into a [`FrameSlot`] that keeps
//!   only the newest one (lossy by design) and counts what it overwrote.

use crate::frame::{CameraHandle, CameraHealth, Frame, FrameSlot};
use crate::source::{CameraSource, RtspTransport};
use anju_backoff::Backoff;
use ffmpeg_next as ffmpeg;
use futures_util::StreamExt as _;
use retina::client::{
    Credentials, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions,
    Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument as _};

/// Timeout around each RTSP request and each wait for the next packet.
pub const RETINA_TIMEOUT: Duration = Duration::from_secs(10);

/// A camera to pull from.
#[derive(Clone)]
pub struct CameraConfig {
    pub id: String,
    /// `rtsp://host:port/path`, without credentials.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Frames per second put into the slot (detection rate).
    pub sample_fps: f64,
    pub timeout: Duration,
    /// TCP-interleaved (default) or UDP.
    pub transport: RtspTransport,
}

impl std::fmt::Debug for CameraConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraConfig")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("sample_fps", &self.sample_fps)
            .field("transport", &self.transport)
            .finish()
    }
}

impl CameraConfig {
    pub fn new(id: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            url: url.into(),
            username: None,
            password: None,
            sample_fps: 5.0,
            timeout: RETINA_TIMEOUT,
            transport: RtspTransport::Tcp,
        }
    }
}

impl CameraSource for CameraConfig {
    fn spawn(self, cancel: CancellationToken) -> anyhow::Result<CameraHandle> {
        spawn_camera(self, cancel)
    }
}

enum Packet {
    Data(ffmpeg::codec::Id, Vec<u8>),
    Reset,
}

/// Starts the camera's network task and decoder thread. Both end when
/// `cancel` fires.
///
/// # Errors
/// Credentials in the URL, an unparsable URL, libavcodec that cannot
/// initialise, a thread that cannot be spawned.
pub fn spawn_camera(cfg: CameraConfig, cancel: CancellationToken) -> anyhow::Result<CameraHandle> {
    let url = url::Url::parse(&cfg.url)
        .map_err(|e| anyhow::anyhow!("camera {}: bad URL: {e}", cfg.id))?;
    anyhow::ensure!(
        url.username().is_empty() && url.password().is_none(),
        "camera {}: the RTSP URL must not include credentials; configure them separately",
        cfg.id
    );
    ffmpeg::init().map_err(|e| anyhow::anyhow!("libavcodec init: {e}"))?;
    let slot = Arc::new(FrameSlot::default());
    let health = Arc::new(CameraHealth::default());
    let (tx, rx) = mpsc::channel::<Packet>(64);
    {
        let (slot, health, id, fps) =
            (slot.clone(), health.clone(), cfg.id.clone(), cfg.sample_fps);
        std::thread::Builder::new()
            .name(format!("decode-{}", cfg.id))
            .spawn(move || decode_loop(rx, &id, fps, &slot, &health))?;
    }
    let span = tracing::info_span!("camera", camera = %cfg.id);
    let h = health.clone();
    tokio::spawn(
        async move {
            let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
            loop {
                if cancel.is_cancelled() {
                    break;
                }
                let r = run_once(&cfg, &url, &tx, &h, &cancel, &mut backoff).await;
                h.connected.store(false, Ordering::Relaxed);
                if tx.send(Packet::Reset).await.is_err() {
                    break;
                }
                match r {
                    Ok(()) => break,
                    Err(e) => {
                        h.connection_errors.fetch_add(1, Ordering::Relaxed);
                        warn!(error = %format!("{e:#}"), "Camera stream failed; reconnecting with backoff.");
                        if !backoff.wait(&cancel).await {
                            break;
                        }
                    }
                }
            }
        }
        .instrument(span),
    );
    Ok(CameraHandle { slot, health })
}

async fn timed<T, E: std::fmt::Display>(
    what: &str,
    d: Duration,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(d, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(anyhow::anyhow!("{what}: {e}")),
        Err(_) => Err(anyhow::anyhow!("{what}: timed out after {d:?}")),
    }
}

/// One session: DESCRIBE, SETUP (TCP), PLAY, then frames until an error
/// (`Err`) or cancellation (`Ok`).
async fn run_once(
    cfg: &CameraConfig,
    url: &url::Url,
    tx: &mpsc::Sender<Packet>,
    health: &CameraHealth,
    cancel: &CancellationToken,
    backoff: &mut Backoff,
) -> anyhow::Result<()> {
    let creds = match (&cfg.username, &cfg.password) {
        (Some(u), Some(p)) => Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        }),
        _ => None,
    };
    let opts = SessionOptions::default()
        .creds(creds)
        .user_agent("anju-edge".to_owned());
    let mut session = timed(
        "DESCRIBE",
        cfg.timeout,
        Session::describe(url.clone(), opts),
    )
    .await?;
    let (i, codec) = session
        .streams()
        .iter()
        .enumerate()
        .find_map(|(i, s)| {
            if s.media() != "video" {
                return None;
            }
            match s.encoding_name() {
                "h264" => Some((i, ffmpeg::codec::Id::H264)),
                "h265" => Some((i, ffmpeg::codec::Id::HEVC)),
                _ => None,
            }
        })
        .ok_or_else(|| anyhow::anyhow!("no H.264/H.265 video stream"))?;
    timed(
        "SETUP",
        cfg.timeout,
        session.setup(
            i,
            SetupOptions::default()
                .transport(match cfg.transport {
                    RtspTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
                    RtspTransport::Udp => Transport::Udp(UdpTransportOptions::default()),
                })
                .frame_format(FrameFormat::SIMPLE),
        ),
    )
    .await?;
    let playing = timed("PLAY", cfg.timeout, session.play(PlayOptions::default())).await?;
    let mut demuxed = playing
        .demuxed()
        .map_err(|e| anyhow::anyhow!("demux: {e}"))?;
    if health.sessions.fetch_add(1, Ordering::Relaxed) > 0 {
        health.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    health.connected.store(true, Ordering::Relaxed);
    info!("Camera stream playing.");
    let mut first = true;
    loop {
        let item = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(()),
            r = tokio::time::timeout(cfg.timeout, demuxed.next()) => r,
        };
        match item {
            Err(_) => anyhow::bail!("no data for {:?}", cfg.timeout),
            Ok(None) => anyhow::bail!("stream ended"),
            Ok(Some(Err(e))) => anyhow::bail!("stream: {e}"),
            Ok(Some(Ok(CodecItem::VideoFrame(f)))) => {
                if first {
                    backoff.reset();
                    first = false;
                }
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return Ok(()),
                    r = tx.send(Packet::Data(codec, f.into_data())) => {
                        if r.is_err() {
                            return Ok(());
                        }
                    }
                }
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// The decoder thread: decodes everything, samples into the slot.
fn decode_loop(
    mut rx: mpsc::Receiver<Packet>,
    camera: &str,
    sample_fps: f64,
    slot: &FrameSlot,
    health: &CameraHealth,
) {
    let interval = if sample_fps > 0.0 {
        Duration::from_secs_f64(1.0 / sample_fps)
    } else {
        Duration::ZERO
    };
    let mut decoder: Option<(ffmpeg::codec::Id, ffmpeg::decoder::Video)> = None;
    let mut scaler: Option<(
        ffmpeg::format::Pixel,
        u32,
        u32,
        ffmpeg::software::scaling::Context,
    )> = None;
    let mut frame = ffmpeg::frame::Video::empty();
    let mut last_sample: Option<Instant> = None;
    let mut seq = 0u64;
    let mut fps_window = (Instant::now(), 0u64);
    while let Some(p) = rx.blocking_recv() {
        let (codec, data) = match p {
            Packet::Reset => {
                decoder = None;
                continue;
            }
            Packet::Data(c, d) => (c, d),
        };
        if decoder.as_ref().is_none_or(|(c, _)| *c != codec) {
            decoder = open_decoder(codec).map(|d| (codec, d)).ok();
        }
        let Some((_, dec)) = decoder.as_mut() else {
            health.decode_errors.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        if dec.send_packet(&ffmpeg::Packet::copy(&data)).is_err() {
            health.decode_errors.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        while dec.receive_frame(&mut frame).is_ok() {
            seq += 1;
            let now = chrono::Utc::now();
            health.frames_decoded.fetch_add(1, Ordering::Relaxed);
            health
                .last_frame_ms
                .store(now.timestamp_millis(), Ordering::Relaxed);
            fps_window.1 += 1;
            let el = fps_window.0.elapsed();
            if el >= Duration::from_secs(1) {
                let fps = fps_window.1 as f64 / el.as_secs_f64();
                health.set_fps(fps);
                fps_window = (Instant::now(), 0);
            }
            let Some(next) = sample_due(last_sample, Instant::now(), interval) else {
                continue;
            };
            last_sample = Some(next);
            match to_rgb(&frame, &mut scaler) {
                Some((w, h, rgb)) => {
                    health.frames_sampled.fetch_add(1, Ordering::Relaxed);
                    slot.put(Arc::new(Frame {
                        camera: camera.to_owned(),
                        seq,
                        decoded_at: now,
                        width: w,
                        height: h,
                        rgb,
                    }));
                }
                None => {
                    health.decode_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Whether a frame decoded at `now` is sampled, and the sampling instant to
/// remember if so. The schedule advances by whole `interval`s rather than
/// restarting at `now`, so that frames arriving on a grid (every 40 ms at
/// 25 fps) are sampled at the configured rate (5 fps: every 5th frame)
/// instead of drifting to the next frame after each interval (every 5th or
/// 6th, ~4.5 fps). After a gap of more than one interval it restarts at
/// `now` (no burst to catch up).
fn sample_due(last: Option<Instant>, now: Instant, interval: Duration) -> Option<Instant> {
    let Some(last) = last else {
        return Some(now);
    };
    // Frames may arrive slightly early (network, decoder jitter): a frame
    // within an eighth of an interval of the schedule counts as due.
    let elapsed = now.saturating_duration_since(last);
    if elapsed + interval / 8 < interval {
        return None;
    }
    Some(if elapsed >= 2 * interval {
        now
    } else {
        last + interval
    })
}

fn open_decoder(codec: ffmpeg::codec::Id) -> anyhow::Result<ffmpeg::decoder::Video> {
    let c =
        ffmpeg::decoder::find(codec).ok_or_else(|| anyhow::anyhow!("no decoder for {codec:?}"))?;
    let ctx = ffmpeg::codec::context::Context::new_with_codec(c);
    Ok(ctx.decoder().video()?)
}

fn to_rgb(
    frame: &ffmpeg::frame::Video,
    scaler: &mut Option<(
        ffmpeg::format::Pixel,
        u32,
        u32,
        ffmpeg::software::scaling::Context,
    )>,
) -> Option<(u32, u32, Vec<u8>)> {
    let (fmt, w, h) = (frame.format(), frame.width(), frame.height());
    if w == 0 || h == 0 {
        return None;
    }
    if scaler
        .as_ref()
        .is_none_or(|(f, sw, sh, _)| *f != fmt || *sw != w || *sh != h)
    {
        let ctx = ffmpeg::software::scaling::Context::get(
            fmt,
            w,
            h,
            ffmpeg::format::Pixel::RGB24,
            w,
            h,
            ffmpeg::software::scaling::Flags::BILINEAR,
        )
        .ok()?;
        *scaler = Some((fmt, w, h, ctx));
    }
    let (_, _, _, ctx) = scaler.as_mut()?;
    let mut rgb = ffmpeg::frame::Video::empty();
    ctx.run(frame, &mut rgb).ok()?;
    let stride = rgb.stride(0);
    let row = w as usize * 3;
    let src = rgb.data(0);
    let mut out = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        out.extend_from_slice(src.get(y * stride..y * stride + row)?);
    }
    Some((w, h, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames every 40 ms (25 fps) sampled at 5 fps: every 5th frame, also
    /// with a millisecond of jitter either way.
    #[test]
    fn samples_every_fifth_frame_at_25_fps() {
        let interval = Duration::from_millis(200);
        let t0 = Instant::now();
        for jitter in [0i64, 1, -1] {
            let mut last = None;
            let mut n = 0;
            for i in 0..250u64 {
                let j = if i % 2 == 0 { jitter } else { -jitter };
                let at = t0 + Duration::from_millis(1000 + i * 40);
                let at = if j >= 0 {
                    at + Duration::from_millis(j.unsigned_abs())
                } else {
                    at - Duration::from_millis(j.unsigned_abs())
                };
                if let Some(next) = sample_due(last, at, interval) {
                    last = Some(next);
                    n += 1;
                }
            }
            assert_eq!(n, 50, "jitter {jitter} ms");
        }
    }

    #[test]
    fn restarts_after_a_gap() {
        let interval = Duration::from_millis(200);
        let t0 = Instant::now();
        let first = sample_due(None, t0, interval);
        assert_eq!(first, Some(t0));
        let late = t0 + Duration::from_secs(3);
        assert_eq!(sample_due(first, late, interval), Some(late));
        assert_eq!(
            sample_due(Some(late), late + Duration::from_millis(100), interval),
            None
        );
    }
}
