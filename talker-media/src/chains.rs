//! GStreamer building blocks shared by [`crate::session`] and [`crate::conference`]: sources,
//! encoders, decoders and sinks as small bins, and the RTP/RTCP transport around `rtpbin`.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app::AppSink;

use splitdial_media::{
    AudioSink, AudioSource, BEEP_MS, Codec, MediaSettings, RtpStats, SocketPair, StreamPlan,
    VideoSink, VideoSource,
};

use crate::analyze::{PictureCounter, SoundAnalyzer};
use crate::error::{MediaError, PipelineResult};

/// Sample rate the conference mixes at, and the rate Opus runs at.
pub(crate) const MIX_RATE: u32 = 48_000;
/// Time audio sinks reserve for processing before a buffer is due (GStreamer's default is
/// 20 ms, which adds 20 ms of mouth-to-ear latency; our receive path needs far less).
const PROCESSING_DEADLINE_NS: u64 = 5_000_000;
/// RTP packets stay below this size (leaves room for IP/UDP on a 1500-byte MTU).
const RTP_MTU: u32 = 1200;

/// Makes sure GStreamer is initialised.
pub(crate) fn init() -> Result<(), MediaError> {
    gst::init().map_err(|e| MediaError::Init(e.to_string()))
}

/// One element from its factory, or [`MediaError::MissingElement`].
pub(crate) fn element(factory: &str) -> Result<gst::Element, MediaError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| MediaError::MissingElement(factory.to_owned()))
}

/// A bin from a `gst-launch` style description with ghost pads for its unlinked ends.
fn bin(description: &str) -> Result<gst::Bin, MediaError> {
    gst::parse::bin_from_description(description, true)
        .map_err(|e| MediaError::Pipeline(format!("cannot build `{description}`: {e}")))
}

fn set_location(bin: &gst::Bin, name: &str, path: &std::path::Path) -> Result<(), MediaError> {
    let el = bin
        .by_name(name)
        .ok_or_else(|| MediaError::Pipeline(format!("element {name} missing")))?;
    el.set_property("location", path.to_string_lossy().as_ref());
    Ok(())
}

/// Whether an automatic device element (autoaudiosrc, xvimagesink, ...) can open its device.
fn device_opens(factory: &str) -> bool {
    let Ok(el) = gst::ElementFactory::make(factory).build() else {
        return false;
    };
    let ok = el.set_state(gst::State::Ready).is_ok();
    let _ = el.set_state(gst::State::Null);
    ok
}

/// Sets small device buffers on the real device elements inside an `auto*` bin.
fn small_device_buffers(bin: &gst::Bin, buffer_ms: u32) {
    if buffer_ms == 0 {
        return;
    }
    bin.connect_deep_element_added(move |_, _, el| {
        if el.find_property("processing-deadline").is_some() {
            el.set_property("processing-deadline", PROCESSING_DEADLINE_NS);
        }
        if el.find_property("latency-time").is_some() && el.find_property("buffer-time").is_some() {
            el.set_property("latency-time", i64::from(buffer_ms) * 1000);
            el.set_property("buffer-time", i64::from(buffer_ms) * 3000);
        }
    });
}

/// Raw mono audio at `rate` from the configured source (never called for `none`).
fn audio_source_description(settings: &MediaSettings, rate: u32) -> String {
    let samples = if settings.audio_buffer_ms == 0 {
        String::new()
    } else {
        format!(
            " samplesperbuffer={}",
            MIX_RATE * settings.audio_buffer_ms / 1000
        )
    };
    let src = match &settings.audio_source {
        AudioSource::Tone { frequency_hz } => {
            format!("audiotestsrc is-live=true wave=sine volume=0.3 freq={frequency_hz}{samples}")
        }
        // F32 at the mix rate, so the burst gate can silence samples in place.
        AudioSource::Beeps { frequency_hz } => format!(
            "audiotestsrc name=beeps is-live=true wave=sine volume=0.3 freq={frequency_hz}{samples} ! \
             capsfilter caps=\"audio/x-raw,format=F32LE,rate={MIX_RATE},channels=1\""
        ),
        AudioSource::Auto if device_opens("autoaudiosrc") => "autoaudiosrc name=device".to_owned(),
        AudioSource::Auto => {
            tracing::warn!("no usable audio capture device: sending silence");
            format!("audiotestsrc is-live=true wave=silence{samples}")
        }
        AudioSource::None => format!("audiotestsrc is-live=true wave=silence{samples}"),
        AudioSource::File(_) => {
            "filesrc name=file ! decodebin ! audioconvert ! audioresample ! identity sync=true"
                .to_owned()
        }
    };
    format!(
        "{src} ! audioconvert ! audioresample ! capsfilter caps=\"audio/x-raw,rate={MIX_RATE},channels=1\" ! \
         audioconvert ! audioresample ! capsfilter caps=\"audio/x-raw,rate={rate},channels=1\""
    )
}

/// A bin with one src pad giving raw mono audio at `rate` from the configured source.
pub(crate) fn audio_source(settings: &MediaSettings, rate: u32) -> Result<gst::Bin, MediaError> {
    let b = bin(&audio_source_description(settings, rate))?;
    if let AudioSource::File(path) = &settings.audio_source {
        set_location(&b, "file", path)?;
    }
    if let Some(beeps) = b.by_name("beeps") {
        gate_to_whole_seconds(&beeps);
    }
    if let Some(device) = b
        .by_name("device")
        .and_then(|d| d.downcast::<gst::Bin>().ok())
    {
        small_device_buffers(&device, settings.audio_buffer_ms);
    }
    Ok(b)
}

/// Silences a `beeps:` source outside its bursts. A sample sounds when its capture time (the
/// buffer's running time on the pipeline clock, carried over to the wall clock) lies within
/// [`BEEP_MS`] after a whole second, so every burst's onset is known on any synchronised clock.
fn gate_to_whole_seconds(source: &gst::Element) {
    let Some(pad) = source.static_pad("src") else {
        return;
    };
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(element) = pad.parent_element() else {
            return gst::PadProbeReturn::Ok;
        };
        let (Some(clock), Some(base)) = (element.clock(), element.base_time()) else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(buffer) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(pts) = buffer.pts() else {
            return gst::PadProbeReturn::Ok;
        };
        // A live test source stamps buffers with running time: base + pts is the capture
        // moment on the pipeline clock; the pipeline clock's distance to the wall clock,
        // read now, moves it there.
        let wall_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let clock_now = i128::from(clock.time().nseconds());
        let captured =
            wall_now - clock_now + i128::from(base.nseconds()) + i128::from(pts.nseconds());
        let buffer = buffer.make_mut();
        if let Ok(mut map) = buffer.map_writable() {
            silence_outside_bursts(map.as_mut_slice(), captured, MIX_RATE);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Zeroes the F32LE mono samples of `data`, the first captured at `captured_ns` (wall clock,
/// ns since the epoch), that do not lie within [`BEEP_MS`] after a whole second.
pub(crate) fn silence_outside_bursts(data: &mut [u8], captured_ns: i128, rate: u32) {
    const SECOND_NS: i128 = 1_000_000_000;
    let burst_ns = i128::from(BEEP_MS) * 1_000_000;
    for (i, sample) in data.chunks_exact_mut(4).enumerate() {
        let at = captured_ns + i as i128 * SECOND_NS / i128::from(rate.max(1));
        if at.rem_euclid(SECOND_NS) >= burst_ns {
            sample.copy_from_slice(&0f32.to_le_bytes());
        }
    }
}

/// Encoder + payloader for an audio codec: raw audio in, RTP out. Has a `volume` named `mute`.
pub(crate) fn audio_encoder(
    codec: Codec,
    pt: u8,
    settings: &MediaSettings,
) -> Result<gst::Bin, MediaError> {
    let desc = match codec {
        Codec::Opus => format!(
            "audioconvert ! audioresample ! capsfilter caps=\"audio/x-raw,rate=48000,channels=1\" ! volume name=mute ! \
             opusenc frame-size={} bitrate=32000 complexity=5 inband-fec=true audio-type=voice ! \
             rtpopuspay pt={pt} mtu={RTP_MTU}",
            opus_frame(settings.opus_frame_ms)
        ),
        Codec::Pcmu | Codec::Pcma => {
            let (enc, pay) = if codec == Codec::Pcmu {
                ("mulawenc", "rtppcmupay")
            } else {
                ("alawenc", "rtppcmapay")
            };
            format!(
                "audioconvert ! audioresample ! capsfilter caps=\"audio/x-raw,rate=8000,channels=1\" ! volume name=mute ! \
                 {enc} ! {pay} pt={pt} mtu={RTP_MTU} min-ptime=20000000 max-ptime=20000000"
            )
        }
        Codec::Vp8 => return Err(MediaError::Plan("VP8 is not an audio codec".into())),
    };
    bin(&desc)
}

fn opus_frame(ms: u32) -> &'static str {
    match ms {
        0..=5 => "5",
        6..=10 => "10",
        11..=20 => "20",
        21..=40 => "40",
        _ => "60",
    }
}

/// Depayloader + decoder: RTP in, raw mono audio out (at `rate` when given).
pub(crate) fn audio_decoder(codec: Codec, rate: Option<u32>) -> Result<gst::Bin, MediaError> {
    let dec = match codec {
        // No use-inband-fec: opusdec then declares 120 ms of latency (one maximal frame).
        Codec::Opus => "rtpopusdepay ! opusdec plc=true",
        Codec::Pcmu => "rtppcmudepay ! mulawdec",
        Codec::Pcma => "rtppcmadepay ! alawdec",
        Codec::Vp8 => return Err(MediaError::Plan("VP8 is not an audio codec".into())),
    };
    let caps = match rate {
        Some(r) => format!("audio/x-raw,rate={r},channels=1"),
        None => "audio/x-raw,channels=1".to_owned(),
    };
    bin(&format!(
        "{dec} ! audioconvert ! audioresample ! capsfilter caps=\"{caps}\""
    ))
}

/// The configured audio sink as a bin with one sink pad taking raw audio.
pub(crate) fn audio_sink(
    sink: &AudioSink,
    buffer_ms: u32,
    analyzer: Option<&Arc<SoundAnalyzer>>,
) -> Result<gst::Bin, MediaError> {
    let b = match sink {
        AudioSink::Analyze => {
            let b = bin(&format!(
                "audioconvert ! capsfilter caps=\"audio/x-raw,format=F32LE,channels=1\" ! \
                 appsink name=analyze sync=true max-buffers=100 drop=true processing-deadline={PROCESSING_DEADLINE_NS}"
            ))?;
            if let Some(analyzer) = analyzer {
                attach_sound_analyzer(&b, Arc::clone(analyzer))?;
            }
            b
        }
        AudioSink::Auto if device_opens("autoaudiosink") => {
            let b = bin("audioconvert ! audioresample ! autoaudiosink name=device")?;
            if let Some(device) = b
                .by_name("device")
                .and_then(|d| d.downcast::<gst::Bin>().ok())
            {
                small_device_buffers(&device, buffer_ms);
            }
            b
        }
        AudioSink::Auto => {
            tracing::warn!("no usable audio playback device: received audio is discarded");
            bin(&format!(
                "fakesink sync=true processing-deadline={PROCESSING_DEADLINE_NS}"
            ))?
        }
        AudioSink::File(path) => {
            let b = bin("audioconvert ! wavenc ! filesink name=file")?;
            set_location(&b, "file", path)?;
            b
        }
        AudioSink::None => bin("fakesink sync=false")?,
    };
    Ok(b)
}

fn attach_sound_analyzer(b: &gst::Bin, analyzer: Arc<SoundAnalyzer>) -> Result<(), MediaError> {
    let sink = b
        .by_name("analyze")
        .and_then(|e| e.downcast::<AppSink>().ok())
        .ok_or_else(|| MediaError::Pipeline("appsink missing".into()))?;
    sink.set_callbacks(
        gstreamer_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let rate = sample
                    .caps()
                    .and_then(|c| c.structure(0))
                    .and_then(|st| st.get::<i32>("rate").ok())
                    .and_then(|r| u32::try_from(r).ok())
                    .unwrap_or(0);
                if let Some(buffer) = sample.buffer()
                    && let Ok(map) = buffer.map_readable()
                {
                    let samples: Vec<f32> = map
                        .as_slice()
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                    analyzer.push(&samples, rate);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(())
}

/// VP8 encoder + payloader fed by the configured video source (never called for `none`).
pub(crate) fn video_sender(
    settings: &MediaSettings,
    source: &VideoSource,
    pt: u8,
) -> Result<gst::Bin, MediaError> {
    let f = settings.video_format;
    let src = match source {
        VideoSource::TestPattern => "videotestsrc is-live=true pattern=smpte".to_owned(),
        VideoSource::Auto if device_opens("autovideosrc") => "autovideosrc".to_owned(),
        VideoSource::Auto | VideoSource::None => {
            tracing::warn!("no usable camera: sending a black picture");
            "videotestsrc is-live=true pattern=black".to_owned()
        }
        VideoSource::File(_) => "filesrc name=file ! decodebin ! identity sync=true".to_owned(),
    };
    let desc = format!(
        "{src} ! videoconvert ! videoscale ! videorate ! \
         video/x-raw,format=I420,width={},height={},framerate={}/1 ! \
         vp8enc deadline=1 cpu-used=8 end-usage=cbr target-bitrate=1000000 keyframe-max-dist=60 \
         lag-in-frames=0 threads=1 ! \
         rtpvp8pay pt={pt} mtu={RTP_MTU} picture-id-mode=15-bit",
        f.width, f.height, f.fps
    );
    let b = bin(&desc)?;
    if let VideoSource::File(path) = source {
        set_location(&b, "file", path)?;
    }
    Ok(b)
}

/// Depayloader, decoder and the configured video sink: RTP in.
pub(crate) fn video_receiver(
    sink: &VideoSink,
    counter: Option<&Arc<PictureCounter>>,
) -> Result<gst::Bin, MediaError> {
    let depay = "rtpvp8depay request-keyframe=true wait-for-keyframe=true";
    let b = match sink {
        VideoSink::Analyze => {
            let b = bin(&format!(
                "{depay} ! vp8dec ! appsink name=picture sync=false max-buffers=5 drop=true"
            ))?;
            if let Some(counter) = counter {
                attach_picture_counter(&b, Arc::clone(counter))?;
            }
            b
        }
        VideoSink::Auto => {
            let display = std::env::var_os("DISPLAY").is_some();
            match ["xvimagesink", "ximagesink"]
                .into_iter()
                .find(|f| display && device_opens(f))
            {
                Some(factory) => bin(&format!(
                    "{depay} ! vp8dec ! videoconvert ! {factory} sync=true"
                ))?,
                None => {
                    tracing::warn!("no usable display: received video is discarded");
                    bin(&format!("{depay} ! vp8dec ! fakesink sync=true"))?
                }
            }
        }
        VideoSink::File(path) => {
            let b = bin(&format!("{depay} ! webmmux ! filesink name=file"))?;
            set_location(&b, "file", path)?;
            b
        }
        VideoSink::None => bin("fakesink sync=false")?,
    };
    Ok(b)
}

fn attach_picture_counter(b: &gst::Bin, counter: Arc<PictureCounter>) -> Result<(), MediaError> {
    let sink = b
        .by_name("picture")
        .and_then(|e| e.downcast::<AppSink>().ok())
        .ok_or_else(|| MediaError::Pipeline("appsink missing".into()))?;
    sink.set_callbacks(
        gstreamer_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let size = sample.caps().and_then(|c| c.structure(0)).map(|st| {
                    (
                        st.get::<i32>("width").unwrap_or(0),
                        st.get::<i32>("height").unwrap_or(0),
                    )
                });
                if let Some((w, h)) = size {
                    counter.frame(u32::try_from(w).unwrap_or(0), u32::try_from(h).unwrap_or(0));
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(())
}

/// RTP caps for a negotiated stream.
pub(crate) fn rtp_caps(plan: &StreamPlan) -> gst::Caps {
    let media = if plan.codec.is_audio() {
        "audio"
    } else {
        "video"
    };
    gst::Caps::builder("application/x-rtp")
        .field("media", media)
        .field(
            "clock-rate",
            i32::try_from(plan.codec.clock_rate()).unwrap_or(8000),
        )
        .field("encoding-name", plan.codec.encoding_name())
        .field("payload", i32::from(plan.payload_type))
        .build()
}

/// A new `rtpbin` with the LAN jitter buffer and the payload-type map for its streams
/// (`streams[i]` is RTP session `i`).
pub(crate) fn rtpbin(
    jitter_ms: u32,
    streams: Vec<Option<StreamPlan>>,
) -> Result<gst::Element, MediaError> {
    let rtpbin = element("rtpbin")?;
    rtpbin.set_property("latency", jitter_ms);
    rtpbin.set_property("do-lost", true);
    rtpbin.connect("request-pt-map", false, move |args| {
        let session = args.get(1).and_then(|v| v.get::<u32>().ok());
        let pt = args.get(2).and_then(|v| v.get::<u32>().ok());
        let caps = session
            .and_then(|s| streams.get(s as usize))
            .and_then(Option::as_ref)
            .filter(|plan| Some(u32::from(plan.payload_type)) == pt)
            .map(rtp_caps);
        Some(caps.to_value())
    });
    Ok(rtpbin)
}

/// Turns a reserved std socket into the GIO socket udpsrc/udpsink share.
fn gio_socket(socket: std::net::UdpSocket) -> Result<gio::Socket, MediaError> {
    gio::Socket::from_fd(OwnedFd::from(socket))
        .map_err(|e| MediaError::Pipeline(format!("socket: {e}")))
}

fn udpsink(socket: &gio::Socket, to: SocketAddr) -> Result<gst::Element, MediaError> {
    let sink = element("udpsink")?;
    match to.ip() {
        IpAddr::V4(_) => sink.set_property("socket", socket),
        IpAddr::V6(_) => sink.set_property("socket-v6", socket),
    }
    sink.set_property("close-socket", false);
    sink.set_property("host", to.ip().to_string());
    sink.set_property("port", i32::from(to.port()));
    sink.set_property("sync", false);
    sink.set_property("async", false);
    Ok(sink)
}

fn udpsrc(socket: &gio::Socket, caps: &gst::Caps) -> Result<gst::Element, MediaError> {
    let src = element("udpsrc")?;
    src.set_property("socket", socket);
    src.set_property("close-socket", false);
    src.set_property("caps", caps);
    Ok(src)
}

fn pad(el: &gst::Element, name: &str) -> Result<gst::Pad, MediaError> {
    el.static_pad(name)
        .or_else(|| el.request_pad_simple(name))
        .ok_or_else(|| MediaError::Pipeline(format!("no pad {name} on {}", el.name())))
}

/// Links `src` pad to `sink` pad with a readable error.
pub(crate) fn link(src: &gst::Pad, sink: &gst::Pad) -> Result<(), MediaError> {
    src.link(sink).map(|_| ()).map_err(|e| {
        MediaError::Pipeline(format!(
            "cannot link {} to {}: {e:?}",
            src.name(),
            sink.name()
        ))
    })
}

/// Drops RTP packets whose payload type is not the negotiated one (comfort noise, DTMF, ...)
/// so they never reach the payload demuxer.
fn keep_only_payload_type(src: &gst::Element, pt: u8) {
    if let Some(p) = src.static_pad("src") {
        p.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let keep = info
                .buffer()
                .and_then(|b| b.map_readable().ok())
                .is_some_and(|m| m.len() >= 12 && m[0] >> 6 == 2 && m[1] & 0x7f == pt);
            if keep {
                gst::PadProbeReturn::Ok
            } else {
                gst::PadProbeReturn::Drop
            }
        });
    }
}

/// Elements created for one RTP session, so they can be removed again.
pub(crate) struct Transport {
    /// Every element added to the pipeline for it.
    pub(crate) elements: Vec<gst::Element>,
    /// The rtpbin pad the sender feeds, when sending.
    pub(crate) send_sink: Option<gst::Pad>,
}

/// Wires RTP session `id` of `rtpbin` to the socket pair: RTCP both ways always, RTP out when
/// the plan sends, RTP in (filtered to the negotiated payload type) when it receives.
pub(crate) fn transport(
    pipeline: &gst::Pipeline,
    rtpbin: &gst::Element,
    id: u32,
    plan: &StreamPlan,
    pair: SocketPair,
) -> Result<Transport, MediaError> {
    let rtp = gio_socket(pair.rtp)?;
    let rtcp = gio_socket(pair.rtcp)?;
    let mut elements = Vec::new();

    let rtcp_out = udpsink(&rtcp, plan.remote_rtcp)?;
    let rtcp_in = udpsrc(&rtcp, &gst::Caps::builder("application/x-rtcp").build())?;
    pipeline.add_many([&rtcp_out, &rtcp_in]).pipeline()?;
    elements.extend([rtcp_out.clone(), rtcp_in.clone()]);
    link(
        &pad(rtpbin, &format!("send_rtcp_src_{id}"))?,
        &pad(&rtcp_out, "sink")?,
    )?;
    link(
        &pad(&rtcp_in, "src")?,
        &pad(rtpbin, &format!("recv_rtcp_sink_{id}"))?,
    )?;

    let mut send_sink = None;
    if plan.direction.sends() {
        let sink_pad = pad(rtpbin, &format!("send_rtp_sink_{id}"))?;
        let rtp_out = udpsink(&rtp, plan.remote_rtp)?;
        pipeline.add(&rtp_out).pipeline()?;
        elements.push(rtp_out.clone());
        link(
            &pad(rtpbin, &format!("send_rtp_src_{id}"))?,
            &pad(&rtp_out, "sink")?,
        )?;
        send_sink = Some(sink_pad);
    }
    if plan.direction.receives() {
        let rtp_in = udpsrc(&rtp, &rtp_caps(plan))?;
        keep_only_payload_type(&rtp_in, plan.payload_type);
        pipeline.add(&rtp_in).pipeline()?;
        elements.push(rtp_in.clone());
        link(
            &pad(&rtp_in, "src")?,
            &pad(rtpbin, &format!("recv_rtp_sink_{id}"))?,
        )?;
    }
    Ok(Transport {
        elements,
        send_sink,
    })
}

/// Links each new `recv_rtp_src_<session>_<ssrc>_<pt>` pad of `rtpbin` to the receiver's sink
/// pad for that session (`receivers[session]`), replacing an earlier source (new SSRC). A
/// source whose RTP comes from one of the `refused` addresses (where the peer was before its
/// session moved) is discarded instead of played.
pub(crate) fn route_received(
    rtpbin: &gst::Element,
    receivers: Vec<Option<gst::Pad>>,
    refused: Vec<SocketAddr>,
) {
    let receivers = Arc::new(Mutex::new(receivers));
    rtpbin.connect_pad_added(move |rtpbin, new_pad| {
        let name = new_pad.name();
        let Some(rest) = name.strip_prefix("recv_rtp_src_") else {
            return;
        };
        let mut fields = rest.split('_');
        let Some(session) = fields.next().and_then(|s| s.parse::<usize>().ok()) else {
            return;
        };
        let ssrc = fields.next().and_then(|s| s.parse::<u32>().ok());
        if !refused.is_empty()
            && let Some(from) = ssrc.and_then(|ssrc| sender_of(rtpbin, session, ssrc))
            && refused.contains(&from)
        {
            tracing::info!(session, stream = %name, %from, "discarding media from the peer's former address");
            discard(rtpbin, new_pad);
            return;
        }
        let guard = receivers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(Some(sink)) = guard.get(session) else {
            return;
        };
        if let Some(old) = sink.peer() {
            let _ = old.unlink(sink);
        }
        match new_pad.link(sink) {
            // The first packet of a new source has left the jitter buffer: the
            // moment media starts to play (set-up benchmarks time it).
            Ok(_) => tracing::info!(session, stream = %name, "receiving media"),
            Err(e) => tracing::warn!("cannot link received stream {name}: {e:?}"),
        }
    });
}

/// How many of a peer's former addresses a session or leg keeps refusing.
const REFUSED_ADDRESSES: usize = 8;

/// The peer addresses to refuse after a stream moves from `before` to `now` (the RTP
/// addresses of each stream): those refused so far and those moved away from, less any the
/// plan moves back to; the latest few.
pub(crate) fn refused_senders(
    refused: &[SocketAddr],
    before: &[Option<SocketAddr>],
    now: &[Option<SocketAddr>],
) -> Vec<SocketAddr> {
    let mut kept: Vec<SocketAddr> = Vec::new();
    for address in refused.iter().chain(before.iter().flatten()) {
        if !now.contains(&Some(*address)) && !kept.contains(address) {
            kept.push(*address);
        }
    }
    let excess = kept.len().saturating_sub(REFUSED_ADDRESSES);
    kept.drain(..excess);
    kept
}

/// Where a remote source's RTP comes from, as rtpbin's session noted it (`rtp-from`).
fn sender_of(rtpbin: &gst::Element, session: usize, ssrc: u32) -> Option<SocketAddr> {
    let id = u32::try_from(session).ok()?;
    let internal = rtpbin.emit_by_name::<Option<glib::Object>>("get-internal-session", &[&id])?;
    let source = internal.emit_by_name::<Option<glib::Object>>("get-source-by-ssrc", &[&ssrc])?;
    let stats = source.property::<gst::Structure>("stats");
    stats.get::<String>("rtp-from").ok()?.parse().ok()
}

/// Sends a received stream nowhere: a linked pad keeps the jitter buffer flowing, where an
/// unlinked one would stop the socket's source.
fn discard(rtpbin: &gst::Element, pad: &gst::Pad) {
    let Some(bin) = rtpbin.parent().and_then(|p| p.downcast::<gst::Bin>().ok()) else {
        return;
    };
    let Ok(sink) = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
    else {
        return;
    };
    if bin.add(&sink).is_err() {
        return;
    }
    let _ = sink.sync_state_with_parent();
    if let Some(sink_pad) = sink.static_pad("sink") {
        let _ = pad.link(&sink_pad);
    }
}

/// What RTP session `id` of `rtpbin` sent, received and lost so far.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RtpCounters {
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) lost: u64,
    pub(crate) jitter_ms: f64,
}

impl RtpCounters {
    /// These counters carried on by a later pipeline's (`jitter_ms` is the later one's).
    pub(crate) fn plus(self, later: RtpCounters) -> RtpCounters {
        RtpCounters {
            sent: self.sent + later.sent,
            received: self.received + later.received,
            lost: self.lost + later.lost,
            jitter_ms: later.jitter_ms,
        }
    }

    /// These counters as statistics of a stream of `plan`.
    pub(crate) fn stats(self, plan: &StreamPlan) -> RtpStats {
        RtpStats {
            codec: plan.codec,
            direction: plan.direction,
            packets_sent: self.sent,
            packets_received: self.received,
            packets_lost: self.lost,
            jitter_ms: self.jitter_ms,
        }
    }
}

/// Sent/received counters of RTP session `id`, from rtpbin's per-source statistics.
pub(crate) fn session_counters(rtpbin: &gst::Element, id: u32) -> RtpCounters {
    let Some(session) = rtpbin.emit_by_name::<Option<glib::Object>>("get-internal-session", &[&id])
    else {
        return RtpCounters::default();
    };
    let stats = session.property::<gst::Structure>("stats");
    let Ok(sources) = stats.get::<glib::ValueArray>("source-stats") else {
        return RtpCounters::default();
    };
    let (mut sent, mut received, mut lost, mut jitter_ms) = (0u64, 0u64, 0u64, 0.0f64);
    for value in sources.iter() {
        let Ok(s) = value.get::<gst::Structure>() else {
            continue;
        };
        if s.get::<bool>("internal").unwrap_or(false) {
            sent += s.get::<u64>("packets-sent").unwrap_or(0);
        } else {
            received += s.get::<u64>("packets-received").unwrap_or(0);
            lost += u64::try_from(s.get::<i32>("packets-lost").unwrap_or(0)).unwrap_or(0);
            let clock = s.get::<i32>("clock-rate").unwrap_or(0);
            let jitter = s.get::<u32>("jitter").unwrap_or(0);
            if clock > 0 {
                jitter_ms = jitter_ms.max(f64::from(jitter) * 1000.0 / f64::from(clock));
            }
        }
    }
    RtpCounters {
        sent,
        received,
        lost,
        jitter_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(data: &[u8]) -> Vec<f32> {
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn a_burst_sounds_from_each_whole_second_for_its_length() {
        // 1 kHz "samples" of 1.0 captured from 0.9 s to 1.4 s past some second.
        let start_ns: i128 = 1_700_000_000 * 1_000_000_000 + 900_000_000;
        let mut data: Vec<u8> = std::iter::repeat_n(1.0f32.to_le_bytes(), 500)
            .flatten()
            .collect();
        silence_outside_bursts(&mut data, start_ns, 1000);
        let out = samples(&data);
        let sounding: Vec<usize> = (0..out.len()).filter(|&i| out[i] != 0.0).collect();
        // Sample i is at 0.9 s + i ms: it sounds from 1.000 s (i = 100) to 1.000 s + BEEP_MS.
        assert_eq!(sounding.first(), Some(&100));
        assert_eq!(sounding.last(), Some(&(100 + BEEP_MS as usize - 1)));
        assert_eq!(sounding.len(), BEEP_MS as usize);
    }

    #[test]
    fn a_moved_stream_refuses_where_it_was_until_it_moves_back() {
        let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        assert!(refused_senders(&[], &[Some(at(1))], &[Some(at(1))]).is_empty());
        let moved = refused_senders(&[], &[Some(at(1)), None], &[Some(at(2)), None]);
        assert_eq!(moved, vec![at(1)]);
        let again = refused_senders(&moved, &[Some(at(2))], &[Some(at(3))]);
        assert_eq!(again, vec![at(1), at(2)]);
        assert_eq!(
            refused_senders(&again, &[Some(at(3))], &[Some(at(1))]),
            vec![at(2), at(3)]
        );
        let many: Vec<SocketAddr> = (10..30).map(at).collect();
        let bounded = refused_senders(&many, &[Some(at(40))], &[Some(at(41))]);
        assert_eq!(bounded.len(), REFUSED_ADDRESSES);
        assert_eq!(bounded.last(), Some(&at(40)));
    }

    #[test]
    fn the_gate_ignores_a_trailing_partial_sample_and_a_zero_rate() {
        let mut data = vec![0x3f; 7];
        silence_outside_bursts(&mut data, 500_000_000, 0);
        assert_eq!(&data[..4], &0f32.to_le_bytes());
        assert_eq!(&data[4..], &[0x3f; 3]);
    }
}
