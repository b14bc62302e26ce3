//! Decode throughput of the edge's libavcodec path against
//! `ffmpeg -threads 1 -i FILE -f null -` on the same file
//! (bench/ingest/run.sh, bench/README.md "Edge ingest").
//!
//! `bench_decode FILE [ROUNDS]`: each round, interleaved so that both see
//! the same machine load,
//! - **ffmpeg**: `ffmpeg -benchmark -threads 1 -i FILE -f null -`, timed by
//!   its own `-benchmark` real time (`rtime`: demux, parse, decode, without
//!   process start-up and probing; the process's wall time is printed too);
//! - **edge**: libavformat demuxes FILE into packets (H.264/H.265 Annex B,
//!   parameter sets in band, as retina hands them over from RTSP), then they
//!   are decoded the way the camera decoder thread does (`src/rtsp.rs`
//!   `open_decoder`): `Context::new_with_codec` with no stream parameters,
//!   libavcodec's default thread count (1), `send_packet` / `receive_frame`
//!   per packet; timed from opening the file to the last frame;
//! - **edge+rgb**: the same, plus every frame converted to packed RGB24 by
//!   swscale (bilinear) and copied out, as `rtsp.rs` `to_rgb` does for each
//!   *sampled* frame (5/s of a 25 fps camera in production).
//!
//! Prints one JSON line per measurement, then the best of each and the
//! ratios edge / ffmpeg in frames per second.
//!
//! Build with `--features rtsp`.

#[cfg(feature = "rtsp")]
fn main() -> anyhow::Result<()> {
    use ffmpeg_next as ffmpeg;
    use std::process::{Command, Stdio};
    use std::time::Instant;

    /// Demux + decode (+ RGB); returns (frames, seconds, width, height).
    fn edge(path: &str, rgb: bool) -> anyhow::Result<(u64, f64, u32, u32)> {
        let t0 = Instant::now();
        let mut input = ffmpeg::format::input(&path)?;
        let stream = input
            .streams()
            .best(ffmpeg::media::Type::Video)
            .ok_or_else(|| anyhow::anyhow!("no video stream in {path}"))?;
        let (index, codec) = (stream.index(), stream.parameters().id());
        // As in rtsp.rs `open_decoder`.
        let c = ffmpeg::decoder::find(codec)
            .ok_or_else(|| anyhow::anyhow!("no decoder for {codec:?}"))?;
        let mut dec = ffmpeg::codec::context::Context::new_with_codec(c)
            .decoder()
            .video()?;
        let mut frame = ffmpeg::frame::Video::empty();
        let mut scaler: Option<ffmpeg::software::scaling::Context> = None;
        let mut out_bytes = 0usize;
        let mut frames = 0u64;
        let mut size = (0, 0);
        let mut on_frame = |frame: &ffmpeg::frame::Video| -> anyhow::Result<()> {
            if !rgb {
                return Ok(());
            }
            let (w, h) = (frame.width(), frame.height());
            if scaler.is_none() {
                scaler = Some(ffmpeg::software::scaling::Context::get(
                    frame.format(),
                    w,
                    h,
                    ffmpeg::format::Pixel::RGB24,
                    w,
                    h,
                    ffmpeg::software::scaling::Flags::BILINEAR,
                )?);
            }
            let Some(ctx) = scaler.as_mut() else {
                return Ok(());
            };
            let mut out = ffmpeg::frame::Video::empty();
            ctx.run(frame, &mut out)?;
            let (stride, row) = (out.stride(0), w as usize * 3);
            let src = out.data(0);
            let mut v = Vec::with_capacity(row * h as usize);
            for y in 0..h as usize {
                v.extend_from_slice(
                    src.get(y * stride..y * stride + row)
                        .ok_or_else(|| anyhow::anyhow!("short RGB frame"))?,
                );
            }
            out_bytes += v.len();
            Ok(())
        };
        for (s, p) in input.packets() {
            if s.index() != index {
                continue;
            }
            let Some(d) = p.data() else { continue };
            // A copy per packet, as the decoder thread receives owned
            // `Vec<u8>`s from the network task.
            if dec.send_packet(&ffmpeg::Packet::copy(d)).is_err() {
                continue;
            }
            while dec.receive_frame(&mut frame).is_ok() {
                frames += 1;
                size = (frame.width(), frame.height());
                on_frame(&frame)?;
            }
        }
        dec.send_eof().ok();
        while dec.receive_frame(&mut frame).is_ok() {
            frames += 1;
            size = (frame.width(), frame.height());
            on_frame(&frame)?;
        }
        anyhow::ensure!(!rgb || out_bytes > 0 || frames == 0, "no RGB output");
        Ok((frames, t0.elapsed().as_secs_f64(), size.0, size.1))
    }

    /// Runs the peer; returns its own `-benchmark` real time (the decode
    /// loop, without process start-up and probing) and the process's wall
    /// time.
    fn ffmpeg_cli(path: &str) -> anyhow::Result<(f64, f64)> {
        let t0 = Instant::now();
        let out = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-nostats",
                "-v",
                "info",
                "-benchmark",
                "-threads",
                "1",
                "-i",
                path,
                "-f",
                "null",
                "-",
            ])
            .stdin(Stdio::null())
            .output()?;
        let wall = t0.elapsed().as_secs_f64();
        anyhow::ensure!(out.status.success(), "ffmpeg failed on {path}");
        let err = String::from_utf8_lossy(&out.stderr);
        let rtime = err
            .split_whitespace()
            .find_map(|w| w.strip_prefix("rtime=")?.strip_suffix('s')?.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no rtime= in ffmpeg -benchmark output"))?;
        Ok((rtime, wall))
    }

    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: bench_decode FILE [ROUNDS]"))?;
    let rounds: usize = args.next().map_or(Ok(3), |s| s.parse())?;
    ffmpeg::init()?;
    // Warm the page cache and the dynamic loader once.
    edge(&path, false)?;
    let (mut b_ff, mut b_edge, mut b_rgb) = (f64::MAX, f64::MAX, f64::MAX);
    let mut n = 0u64;
    let mut size = (0, 0);
    for round in 0..rounds {
        let (t, wall) = ffmpeg_cli(&path)?;
        println!(
            "{{\"round\":{round},\"peer\":\"ffmpeg -threads 1 -f null\",\"secs\":{t:.4},\"process_wall_s\":{wall:.4}}}"
        );
        b_ff = b_ff.min(t);
        let (frames, t, w, h) = edge(&path, false)?;
        println!(
            "{{\"round\":{round},\"peer\":\"edge decode\",\"frames\":{frames},\"secs\":{t:.4},\"size\":\"{w}x{h}\"}}"
        );
        b_edge = b_edge.min(t);
        n = frames;
        size = (w, h);
        let (frames, t, _, _) = edge(&path, true)?;
        println!(
            "{{\"round\":{round},\"peer\":\"edge decode+rgb\",\"frames\":{frames},\"secs\":{t:.4}}}"
        );
        b_rgb = b_rgb.min(t);
    }
    let fps = |t: f64| n as f64 / t;
    println!(
        "{{\"best\":true,\"file\":\"{path}\",\"size\":\"{}x{}\",\"frames\":{n},\"ffmpeg_fps\":{:.1},\"edge_fps\":{:.1},\"edge_rgb_fps\":{:.1},\"ratio_decode\":{:.3},\"ratio_decode_rgb\":{:.3},\"rgb_ms_per_frame\":{:.3}}}",
        size.0,
        size.1,
        fps(b_ff),
        fps(b_edge),
        fps(b_rgb),
        b_ff / b_edge,
        b_ff / b_rgb,
        (b_rgb - b_edge) * 1000.0 / n.max(1) as f64
    );
    Ok(())
}

#[cfg(not(feature = "rtsp"))]
fn main() {
    eprintln!("bench_decode needs --features rtsp");
    std::process::exit(2);
}
