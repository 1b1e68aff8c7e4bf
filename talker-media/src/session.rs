//! One call leg's media: a GStreamer pipeline around `rtpbin`, started only when the call is
//! answered, rebuilt on the same sockets when the far end re-offers, and torn down with an
//! EOS when it ends.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use splitdial_media::{
    AllocatedPorts, AudioSink, Direction, MediaSettings, MediaStats, Negotiated, SocketPair,
    StreamPlan, VideoSink, VideoSource,
};

use crate::analyze::{PictureCounter, SoundAnalyzer};
use crate::chains::{self, RtpCounters};
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
        // Wake the bus thread at once (it waits up to 100 ms for a message), before the
        // pipeline's teardown flushes the bus: an update should not wait for it.
        self.stop.store(true, Ordering::Release);
        if let Some(bus) = pipeline.bus() {
            let _ = bus.post(gst::message::Application::new(gst::Structure::new_empty(
                "splitdial-stop",
            )));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = pipeline.set_state(gst::State::Null);
    }
}

/// One pipeline running a plan. An update replaces it with another on the same sockets.
struct Running {
    pipeline: gst::Pipeline,
    rtpbin: gst::Element,
    watch: BusWatch,
}

impl Running {
    fn counters(&self, id: u32) -> RtpCounters {
        chains::session_counters(&self.rtpbin, id)
    }

    /// Sets the pipeline playing; on failure it is torn down and the error says why.
    fn launch(mut self) -> Result<Self, MediaError> {
        if let Err(e) = self.pipeline.set_state(gst::State::Playing) {
            self.watch.shut_down(&self.pipeline, false);
            let detail = self.watch.errors().join("; ");
            return Err(MediaError::Pipeline(format!("cannot start: {e} {detail}")));
        }
        Ok(self)
    }
}

/// The session's own handles on its sockets: each pipeline gets copies, so the ports stay
/// bound (and the peer's packets keep arriving) from one pipeline to the next.
struct Sockets {
    audio: Option<SocketPair>,
    video: Option<SocketPair>,
}

fn copy(pair: Option<&SocketPair>, what: &str) -> Result<SocketPair, MediaError> {
    pair.ok_or_else(|| MediaError::Plan(format!("{what} negotiated but no {what} ports reserved")))?
        .try_clone()
        .map_err(|e| MediaError::Pipeline(format!("cannot share the {what} sockets: {e}")))
}

/// A running media session (one per call leg): RTP + RTCP on `rtpbin`, sources and sinks as
/// configured. Nothing is sent or received before [`MediaSession::start`];
/// [`MediaSession::update`] moves it to a new plan on the same sockets.
pub struct MediaSession {
    running: Option<Running>,
    sockets: Sockets,
    plan: Negotiated,
    settings: MediaSettings,
    /// What earlier pipelines of this session counted, per RTP session (audio, video).
    carried: [RtpCounters; 2],
    /// Where the peer sent from before its session moved: not played any more.
    refused: Vec<SocketAddr>,
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
        let (audio, video) = ports.into_sockets();
        let mut session = Self {
            running: None,
            sockets: Sockets {
                audio: Some(audio),
                video,
            },
            plan: plan.clone(),
            settings: settings.clone(),
            carried: [RtpCounters::default(); 2],
            refused: Vec::new(),
            sound: None,
            picture: None,
        };
        if let Some(built) = session.build(plan, Vec::new())? {
            session.running = Some(built.launch()?);
            tracing::info!(audio = ?plan.audio.as_ref().map(|a| (a.codec, a.direction, a.remote_rtp)),
                video = ?plan.video.as_ref().map(|v| (v.codec, v.direction, v.remote_rtp)), "media session started");
        }
        Ok(session)
    }

    /// Runs the session on a new plan (the far end re-offered), on the same sockets: the
    /// pipeline is rebuilt, packet counters carry on, and RTP from the peer's former
    /// addresses is no longer played. When the new pipeline cannot be built the old one
    /// keeps running untouched; when it cannot start, the previous plan is rebuilt and
    /// started again (see docs/media.md, "Updates").
    pub fn update(&mut self, plan: &Negotiated) -> Result<(), MediaError> {
        let refused = self.refused_after(plan);
        let next = self.build(plan, refused.clone())?;
        let previous = std::mem::replace(&mut self.plan, plan.clone());
        self.retire_pipeline();
        let previous_refused = std::mem::replace(&mut self.refused, refused);
        let Some(next) = next else {
            tracing::info!("media session updated: nothing flows");
            return Ok(());
        };
        self.discard_queued();
        match next.launch() {
            Ok(running) => {
                self.running = Some(running);
                tracing::info!(audio = ?plan.audio.as_ref().map(|a| (a.codec, a.direction, a.remote_rtp)),
                    video = ?plan.video.as_ref().map(|v| (v.codec, v.direction, v.remote_rtp)), "media session updated");
                Ok(())
            }
            Err(e) => {
                self.plan = previous;
                self.refused = previous_refused;
                let restored = self
                    .build(&self.plan.clone(), self.refused.clone())
                    .and_then(|b| b.map(Running::launch).transpose());
                match restored {
                    Ok(running) => {
                        self.running = running;
                        Err(MediaError::Pipeline(format!(
                            "{e}; the previous plan runs again"
                        )))
                    }
                    Err(again) => Err(MediaError::Pipeline(format!(
                        "{e}; the previous plan could not be restored either ({again}): nothing flows"
                    ))),
                }
            }
        }
    }

    /// The former addresses to refuse under `plan` (see [`chains::refused_senders`]).
    fn refused_after(&self, plan: &Negotiated) -> Vec<SocketAddr> {
        let remote =
            |p: &Negotiated| [&p.audio, &p.video].map(|s| s.as_ref().map(|s| s.remote_rtp));
        chains::refused_senders(&self.refused, &remote(&self.plan), &remote(plan))
    }

    /// Drops the RTP that waited in the sockets while no pipeline read them (on hold, or
    /// during the rebuild): played now, it would only be late.
    fn discard_queued(&self) {
        let mut buffer = [0u8; 2048];
        for pair in [&self.sockets.audio, &self.sockets.video]
            .into_iter()
            .flatten()
        {
            // The pipelines' GIO sockets made them non-blocking already; this only says so.
            if pair.rtp.set_nonblocking(true).is_err() {
                continue;
            }
            let mut dropped = 0;
            while dropped < 4096 && pair.rtp.recv(&mut buffer).is_ok() {
                dropped += 1;
            }
        }
    }

    /// Tears the running pipeline down without EOS (the call goes on: no RTCP BYE), its
    /// counters kept for the next one.
    fn retire_pipeline(&mut self) {
        if let Some(mut old) = self.running.take() {
            for id in [AUDIO_SESSION, VIDEO_SESSION] {
                self.carried[id as usize] = self.carried[id as usize].plus(old.counters(id));
            }
            old.watch.shut_down(&old.pipeline, false);
        }
    }

    /// A pipeline for `plan` on copies of the session's sockets, not started yet; `None`
    /// when the plan carries no media.
    fn build(
        &mut self,
        plan: &Negotiated,
        refused: Vec<SocketAddr>,
    ) -> Result<Option<Running>, MediaError> {
        if !plan.carries_media() {
            return Ok(None);
        }
        chains::init()?;
        let settings = self.settings.clone();
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
            let pair = copy(self.sockets.audio.as_ref(), "audio")?;
            receivers[AUDIO_SESSION as usize] =
                self.build_audio(&pipeline, &rtpbin, audio, pair)?;
        }
        if let Some(video) = plan
            .video
            .as_ref()
            .filter(|v| v.direction != Direction::Inactive)
        {
            let pair = copy(self.sockets.video.as_ref(), "video")?;
            receivers[VIDEO_SESSION as usize] =
                self.build_video(&pipeline, &rtpbin, video, pair)?;
        }
        chains::route_received(&rtpbin, receivers, refused);
        let watch = BusWatch::start(&pipeline, format!("{:?}", settings.local_ip))?;
        Ok(Some(Running {
            pipeline,
            rtpbin,
            watch,
        }))
    }

    /// The audio stream's transport, sender and receiver; gives the receiver's sink pad.
    fn build_audio(
        &mut self,
        pipeline: &gst::Pipeline,
        rtpbin: &gst::Element,
        audio: &StreamPlan,
        pair: SocketPair,
    ) -> Result<Option<gst::Pad>, MediaError> {
        let settings = &self.settings;
        let t = chains::transport(pipeline, rtpbin, AUDIO_SESSION, audio, pair)?;
        if let Some(send_sink) = t.send_sink {
            let source = chains::audio_source(settings, chains::MIX_RATE)?;
            let encoder = chains::audio_encoder(audio.codec, audio.payload_type, settings)?;
            add_chain(
                pipeline,
                &[source.upcast_ref(), encoder.upcast_ref()],
                &send_sink,
            )?;
        }
        if !audio.direction.receives() {
            return Ok(None);
        }
        // One analyzer for the session's life, so what was heard carries across updates.
        if settings.audio_sink == AudioSink::Analyze && self.sound.is_none() {
            self.sound = Some(Arc::new(SoundAnalyzer::new()));
        }
        let decoder = chains::audio_decoder(audio.codec, None)?;
        let sink = chains::audio_sink(
            &settings.audio_sink,
            settings.audio_buffer_ms,
            self.sound.as_ref(),
        )?;
        add_receiver(pipeline, &[decoder.upcast_ref(), sink.upcast_ref()]).map(Some)
    }

    /// The video stream's transport, sender and receiver; gives the receiver's sink pad.
    fn build_video(
        &mut self,
        pipeline: &gst::Pipeline,
        rtpbin: &gst::Element,
        video: &StreamPlan,
        pair: SocketPair,
    ) -> Result<Option<gst::Pad>, MediaError> {
        let settings = &self.settings;
        let t = chains::transport(pipeline, rtpbin, VIDEO_SESSION, video, pair)?;
        if let Some(send_sink) = t.send_sink {
            let source = settings.video_source.clone().unwrap_or(VideoSource::None);
            let sender = chains::video_sender(settings, &source, video.payload_type)?;
            add_chain(pipeline, &[sender.upcast_ref()], &send_sink)?;
        }
        if !video.direction.receives() {
            return Ok(None);
        }
        if settings.video_sink == VideoSink::Analyze && self.picture.is_none() {
            self.picture = Some(Arc::new(PictureCounter::default()));
        }
        let receiver = chains::video_receiver(&settings.video_sink, self.picture.as_ref())?;
        add_receiver(pipeline, &[receiver.upcast_ref()]).map(Some)
    }

    /// The plan this session runs.
    pub fn plan(&self) -> &Negotiated {
        &self.plan
    }

    /// Current counters and measurements; packet counters include earlier plans'.
    pub fn stats(&self) -> MediaStats {
        let rtp = |plan: &Option<StreamPlan>, id: u32| {
            plan.as_ref().map(|p| {
                let now = self
                    .running
                    .as_ref()
                    .map(|r| r.counters(id))
                    .unwrap_or_default();
                self.carried[id as usize].plus(now).stats(p)
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
        let sockets = self.sockets.audio.take();
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
