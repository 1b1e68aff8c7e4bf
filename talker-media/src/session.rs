//! One call leg's media: a GStreamer pipeline around `rtpbin`, started only when the call is
//! answered and torn down with an EOS when it ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use splitdial_media::{
    AllocatedPorts, AudioSink, Direction, MediaSettings, MediaStats, Negotiated, RtpStats,
    SocketPair, StreamPlan, VideoSink, VideoSource,
};

use crate::analyze::{PictureCounter, SoundAnalyzer};
use crate::chains;
use crate::error::{MediaError, PipelineResult};

/// How long [`MediaSession::stop`] waits for the EOS to drain (files finalised, RTCP BYE sent).
const EOS_TIMEOUT: Duration = Duration::from_secs(2);
/// RTP session ids inside `rtpbin`.
const AUDIO_SESSION: u32 = 0;
const VIDEO_SESSION: u32 = 1;

/// Watches a pipeline's bus on its own thread: logs errors, keeps latency right, notes EOS.
pub(crate) struct BusWatch {
    stop: Arc<AtomicBool>,
    eos: Arc<AtomicBool>,
    errors: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl BusWatch {
    pub(crate) fn start(pipeline: &gst::Pipeline, label: String) -> Result<Self, MediaError> {
        let bus = pipeline
            .bus()
            .ok_or_else(|| MediaError::Pipeline("pipeline without a bus".into()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let eos = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let weak = pipeline.downgrade();
        let (s, e, errs) = (Arc::clone(&stop), Arc::clone(&eos), Arc::clone(&errors));
        let thread = std::thread::Builder::new()
            .name(format!("media-bus-{label}"))
            .spawn(move || {
                while !s.load(Ordering::Acquire) {
                    let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
                        continue;
                    };
                    match msg.view() {
                        gst::MessageView::Error(err) => {
                            let text = format!(
                                "{}: {}",
                                err.src()
                                    .map(|s| s.path_string().to_string())
                                    .unwrap_or_default(),
                                err.error()
                            );
                            tracing::warn!(session = %label, "media error: {text}");
                            let mut list = errs
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            if list.len() < 16 {
                                list.push(text);
                            }
                        }
                        gst::MessageView::Warning(w) => {
                            tracing::debug!(session = %label, "media warning: {}", w.error());
                        }
                        gst::MessageView::Latency(_) => {
                            if let Some(p) = weak.upgrade() {
                                let _ = p.recalculate_latency();
                            }
                        }
                        gst::MessageView::Eos(_) => e.store(true, Ordering::Release),
                        _ => {}
                    }
                }
            })
            .map_err(|e| MediaError::Pipeline(format!("cannot start bus thread: {e}")))?;
        Ok(Self {
            stop,
            eos,
            errors,
            thread: Some(thread),
        })
    }

    pub(crate) fn errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Sends EOS, waits (bounded) until it drained, then stops the pipeline and the thread.
    pub(crate) fn shut_down(&mut self, pipeline: &gst::Pipeline, drain: bool) {
        if drain && pipeline.send_event(gst::event::Eos::new()) {
            let deadline = Instant::now() + EOS_TIMEOUT;
            while !self.eos.load(Ordering::Acquire) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = pipeline.set_state(gst::State::Null);
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Running {
    pipeline: gst::Pipeline,
    rtpbin: gst::Element,
    watch: BusWatch,
}

/// A running media session (one per call leg): RTP + RTCP on `rtpbin`, sources and sinks as
/// configured. Nothing is sent or received before [`MediaSession::start`].
pub struct MediaSession {
    running: Option<Running>,
    /// Another handle on the audio sockets, so the party can move into a conference on
    /// ports that stay bound ([`MediaSession::stop_keeping_audio_sockets`]).
    audio_sockets: Option<SocketPair>,
    plan: Negotiated,
    sound: Option<Arc<SoundAnalyzer>>,
    picture: Option<Arc<PictureCounter>>,
}

impl MediaSession {
    /// Builds and starts the pipeline for a negotiated plan on the reserved ports. A plan with
    /// only inactive streams starts nothing (and sends nothing).
    pub fn start(
        plan: &Negotiated,
        settings: &MediaSettings,
        ports: AllocatedPorts,
    ) -> Result<Self, MediaError> {
        let (audio_pair, video_pair) = ports.into_sockets();
        let mut session = Self {
            audio_sockets: audio_pair.try_clone().ok(),
            running: None,
            plan: plan.clone(),
            sound: None,
            picture: None,
        };
        if !plan.carries_media() {
            return Ok(session);
        }
        chains::init()?;
        let pipeline = gst::Pipeline::with_name("media-session");
        let rtpbin = chains::rtpbin(
            settings.jitter_ms,
            vec![plan.audio.clone(), plan.video.clone()],
        )?;
        pipeline.add(&rtpbin).pipeline()?;
        let mut receivers = vec![None, None];

        if let Some(audio) = plan
            .audio
            .as_ref()
            .filter(|a| a.direction != Direction::Inactive)
        {
            let t = chains::transport(&pipeline, &rtpbin, AUDIO_SESSION, audio, audio_pair)?;
            if let Some(send_sink) = t.send_sink {
                let source = chains::audio_source(settings, chains::MIX_RATE)?;
                let encoder = chains::audio_encoder(audio.codec, audio.payload_type, settings)?;
                add_chain(
                    &pipeline,
                    &[source.upcast_ref(), encoder.upcast_ref()],
                    &send_sink,
                )?;
            }
            if audio.direction.receives() {
                if settings.audio_sink == AudioSink::Analyze {
                    session.sound = Some(Arc::new(SoundAnalyzer::new()));
                }
                let decoder = chains::audio_decoder(audio.codec, None)?;
                let sink = chains::audio_sink(
                    &settings.audio_sink,
                    settings.audio_buffer_ms,
                    session.sound.as_ref(),
                )?;
                receivers[AUDIO_SESSION as usize] = Some(add_receiver(
                    &pipeline,
                    &[decoder.upcast_ref(), sink.upcast_ref()],
                )?);
            }
        }
        if let Some(video) = plan
            .video
            .as_ref()
            .filter(|v| v.direction != Direction::Inactive)
        {
            let pair = video_pair.ok_or_else(|| {
                MediaError::Plan("video negotiated but no video ports reserved".into())
            })?;
            let t = chains::transport(&pipeline, &rtpbin, VIDEO_SESSION, video, pair)?;
            if let Some(send_sink) = t.send_sink {
                let source = settings.video_source.clone().unwrap_or(VideoSource::None);
                let sender = chains::video_sender(settings, &source, video.payload_type)?;
                add_chain(&pipeline, &[sender.upcast_ref()], &send_sink)?;
            }
            if video.direction.receives() {
                if settings.video_sink == VideoSink::Analyze {
                    session.picture = Some(Arc::new(PictureCounter::default()));
                }
                let receiver =
                    chains::video_receiver(&settings.video_sink, session.picture.as_ref())?;
                receivers[VIDEO_SESSION as usize] =
                    Some(add_receiver(&pipeline, &[receiver.upcast_ref()])?);
            }
        }
        chains::route_received(&rtpbin, receivers);
        let watch = BusWatch::start(&pipeline, format!("{:?}", settings.local_ip))?;
        let mut running = Running {
            pipeline,
            rtpbin,
            watch,
        };
        if let Err(e) = running.pipeline.set_state(gst::State::Playing) {
            running.watch.shut_down(&running.pipeline, false);
            let detail = running.watch.errors().join("; ");
            return Err(MediaError::Pipeline(format!("cannot start: {e} {detail}")));
        }
        tracing::info!(audio = ?plan.audio.as_ref().map(|a| (a.codec, a.direction, a.remote_rtp)),
            video = ?plan.video.as_ref().map(|v| (v.codec, v.direction, v.remote_rtp)), "media session started");
        session.running = Some(running);
        Ok(session)
    }

    /// The plan this session runs.
    pub fn plan(&self) -> &Negotiated {
        &self.plan
    }

    /// Current counters and measurements.
    pub fn stats(&self) -> MediaStats {
        let rtp = |plan: &Option<StreamPlan>, id: u32| {
            plan.as_ref().map(|p| {
                let (packets_sent, packets_received, packets_lost, jitter_ms) = self
                    .running
                    .as_ref()
                    .map(|r| chains::session_counters(&r.rtpbin, id))
                    .unwrap_or_default();
                RtpStats {
                    codec: p.codec,
                    direction: p.direction,
                    packets_sent,
                    packets_received,
                    packets_lost,
                    jitter_ms,
                }
            })
        };
        MediaStats {
            audio: rtp(&self.plan.audio, AUDIO_SESSION),
            video: rtp(&self.plan.video, VIDEO_SESSION),
            sound: self.sound.as_ref().map(|s| s.stats()),
            picture: self.picture.as_ref().map(|p| p.stats()),
            errors: self
                .running
                .as_ref()
                .map(|r| r.watch.errors())
                .unwrap_or_default(),
        }
    }

    /// When sound last began after silence at an `analyze` sink (monotonic clock).
    pub fn sound_onset(&self) -> Option<Instant> {
        self.sound.as_ref().and_then(|s| s.onset())
    }

    /// Mutes or unmutes the outgoing audio (silence is still sent, so timing is kept).
    pub fn set_muted(&self, muted: bool) {
        if let Some(r) = &self.running {
            set_mute(r.pipeline.upcast_ref(), muted);
        }
    }

    /// Ends the session cleanly: EOS (RTCP BYE, files finalised), then teardown.
    pub fn stop(mut self) {
        self.shut_down(true);
    }

    /// Stops cleanly like [`MediaSession::stop`] but keeps the audio sockets bound, for a
    /// conference leg that takes the party over (its peer goes on sending to these ports).
    pub fn stop_keeping_audio_sockets(mut self) -> Result<AllocatedPorts, MediaError> {
        let sockets = self.audio_sockets.take();
        self.shut_down(true);
        let sockets = sockets
            .ok_or_else(|| MediaError::Plan("the session's audio sockets were not kept".into()))?;
        AllocatedPorts::from_audio_sockets(sockets)
    }

    fn shut_down(&mut self, drain: bool) {
        if let Some(mut r) = self.running.take() {
            r.watch.shut_down(&r.pipeline, drain);
            tracing::info!("media session stopped");
        }
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        self.shut_down(false);
    }
}

/// Sets `mute` on every `volume` element named `mute` inside `bin`.
pub(crate) fn set_mute(bin: &gst::Bin, muted: bool) {
    for el in bin.iterate_recurse().into_iter().flatten() {
        if el.name().starts_with("mute") && el.find_property("mute").is_some() {
            el.set_property("mute", muted);
        }
    }
}

/// Adds bins to the pipeline, links them in a row, and the last one's src pad to `sink`.
pub(crate) fn add_chain(
    pipeline: &gst::Pipeline,
    parts: &[&gst::Element],
    sink: &gst::Pad,
) -> Result<(), MediaError> {
    pipeline.add_many(parts.iter().copied()).pipeline()?;
    gst::Element::link_many(parts.iter().copied()).pipeline()?;
    let last = parts
        .last()
        .and_then(|p| p.static_pad("src"))
        .ok_or_else(|| MediaError::Pipeline("chain without a src pad".into()))?;
    chains::link(&last, sink)
}

/// Adds bins to the pipeline linked in a row; returns the first one's sink pad.
pub(crate) fn add_receiver(
    pipeline: &gst::Pipeline,
    parts: &[&gst::Element],
) -> Result<gst::Pad, MediaError> {
    pipeline.add_many(parts.iter().copied()).pipeline()?;
    if parts.len() > 1 {
        gst::Element::link_many(parts.iter().copied()).pipeline()?;
    }
    parts
        .first()
        .and_then(|p| p.static_pad("sink"))
        .ok_or_else(|| MediaError::Pipeline("receiver without a sink pad".into()))
}
