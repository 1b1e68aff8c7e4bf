//! A local conference: several call legs in one pipeline; the talker mixes audio with
//! `audiomixer` so that every party hears everybody else (a mix-minus per leg) and the local
//! sink hears all parties. Audio only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;
use splitdial_media::{
    AllocatedPorts, AudioSink, AudioSource, ConferenceStats, Direction, LegId, MediaSettings,
    MediaStats, Negotiated, SocketPair, StreamPlan,
};

use crate::analyze::SoundAnalyzer;
use crate::chains::{self, RtpCounters};
use crate::error::{MediaError, PipelineResult};
use crate::session::{BusWatch, add_chain, add_receiver, set_mute};

/// Extra mixer latency (ms) on top of the jitter buffer, so a leg added later is not late.
const MIXER_HEADROOM_MS: u32 = 30;

/// Where a mixed branch starts or ends: the local talker or a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Local,
    Leg(LegId),
}

/// A `tee → queue → audiomixer` branch between two ends.
struct Branch {
    from: End,
    to: End,
    tee: gst::Element,
    tee_pad: gst::Pad,
    queue: gst::Element,
    mixer: gst::Element,
    mixer_pad: gst::Pad,
}

/// One party of the mix.
struct Leg {
    plan: Negotiated,
    /// The conference's own handles on the party's sockets: each build of the leg gets
    /// copies, so the ports stay bound across updates.
    sockets: SocketPair,
    /// Where the party sent from before its session moved: not played any more.
    refused: Vec<SocketAddr>,
    /// What earlier builds of this leg counted.
    carried: RtpCounters,
    parts: LegParts,
}

/// The elements of one build of a leg (none while its audio is inactive).
#[derive(Default)]
struct LegParts {
    rtpbin: Option<gst::Element>,
    elements: Vec<gst::Element>,
    /// Decoded audio of this party (when it sends to us).
    tee: Option<gst::Element>,
    /// The mix this party hears (when we send to it).
    mixer: Option<gst::Element>,
}

impl Leg {
    fn counters(&self) -> RtpCounters {
        let now = self
            .parts
            .rtpbin
            .as_ref()
            .map(|r| chains::session_counters(r, 0))
            .unwrap_or_default();
        self.carried.plus(now)
    }
}

/// A leg's audio stream: the one stream a conference carries.
fn audio_stream(plan: &Negotiated) -> Result<&StreamPlan, MediaError> {
    plan.audio
        .as_ref()
        .filter(|a| a.codec.is_audio())
        .ok_or_else(|| MediaError::Plan("a conference leg needs an audio stream".into()))
}

/// Another handle on a leg's sockets, for one build of it.
fn copy(sockets: &SocketPair) -> Result<SocketPair, MediaError> {
    sockets
        .try_clone()
        .map_err(|e| MediaError::Pipeline(format!("cannot share a leg's sockets: {e}")))
}

/// Several call legs mixed locally (DESIGN.md: a second REFER adds a party).
pub struct Conference {
    pipeline: gst::Pipeline,
    watch: BusWatch,
    settings: MediaSettings,
    local_tee: gst::Element,
    local_mixer: gst::Element,
    sound: Option<Arc<SoundAnalyzer>>,
    legs: BTreeMap<LegId, Leg>,
    branches: Vec<Branch>,
    next_id: LegId,
}

fn mixer(settings: &MediaSettings) -> Result<gst::Element, MediaError> {
    let m = chains::element("audiomixer")?;
    m.set_property("ignore-inactive-pads", true);
    // Mixers created while the pipeline runs must start at their inputs' running time, not 0.
    m.set_property_from_str("start-time-selection", "first");
    m.set_property(
        "latency",
        u64::from(settings.jitter_ms + MIXER_HEADROOM_MS) * 1_000_000,
    );
    Ok(m)
}

/// Whether `element` reads packets from a socket (a `udpsrc`).
fn is_socket_source(element: &gst::Element) -> bool {
    element.factory().is_some_and(|f| f.name() == "udpsrc")
}

fn tee() -> Result<gst::Element, MediaError> {
    let t = chains::element("tee")?;
    t.set_property("allow-not-linked", true);
    Ok(t)
}

fn mix_caps() -> Result<gst::Element, MediaError> {
    let c = chains::element("capsfilter")?;
    c.set_property(
        "caps",
        gst::Caps::builder("audio/x-raw")
            .field("format", "S16LE")
            .field("rate", chains::MIX_RATE as i32)
            .field("channels", 1i32)
            .build(),
    );
    Ok(c)
}

impl Conference {
    /// Starts the local part: the talker's source (shared by every leg's mix) and the local
    /// sink, which hears the mix of all parties. Legs are added with [`Conference::add_leg`].
    pub fn new(settings: &MediaSettings) -> Result<Self, MediaError> {
        chains::init()?;
        let pipeline = gst::Pipeline::with_name("media-conference");
        // The local voice (silence when there is no source keeps every mixer clocked).
        let source = chains::audio_source(settings, chains::MIX_RATE)?;
        let mute = chains::element("volume")?;
        mute.set_property("name", "mute-local");
        let local_tee = tee()?;
        pipeline
            .add_many([source.upcast_ref(), &mute, &local_tee])
            .pipeline()?;
        gst::Element::link_many([source.upcast_ref(), &mute, &local_tee]).pipeline()?;
        // The local sink hears every party; a silent live input keeps it running alone.
        let sound =
            (settings.audio_sink == AudioSink::Analyze).then(|| Arc::new(SoundAnalyzer::new()));
        let local_mixer = mixer(settings)?;
        let caps = mix_caps()?;
        let sink = chains::audio_sink(
            &settings.audio_sink,
            settings.audio_buffer_ms,
            sound.as_ref(),
        )?;
        pipeline
            .add_many([&local_mixer, &caps, sink.upcast_ref()])
            .pipeline()?;
        gst::Element::link_many([&local_mixer, &caps, sink.upcast_ref()]).pipeline()?;
        let mut silent = settings.clone();
        silent.audio_source = AudioSource::None;
        let silence = chains::audio_source(&silent, chains::MIX_RATE)?;
        pipeline.add(&silence).pipeline()?;
        silence.link(&local_mixer).pipeline()?;

        let watch = BusWatch::start(&pipeline, "conference".into())?;
        let mut conference = Self {
            pipeline,
            watch,
            settings: settings.clone(),
            local_tee,
            local_mixer,
            sound,
            legs: BTreeMap::new(),
            branches: Vec::new(),
            next_id: 1,
        };
        if let Err(e) = conference.pipeline.set_state(gst::State::Playing) {
            conference.watch.shut_down(&conference.pipeline, false);
            return Err(MediaError::Pipeline(format!(
                "cannot start conference: {e}"
            )));
        }
        Ok(conference)
    }

    /// Adds a party: its RTP leg on the reserved ports; it hears the local voice and every
    /// other party, and is heard by all of them. A party whose audio is inactive (on hold
    /// when it joins the mix) gets a leg that carries nothing until an update.
    pub fn add_leg(
        &mut self,
        plan: &Negotiated,
        ports: AllocatedPorts,
    ) -> Result<LegId, MediaError> {
        let id = self.next_id;
        self.next_id += 1;
        let audio = audio_stream(plan)?;
        let (sockets, _) = ports.into_sockets();
        let parts = self.build_leg(id, audio, copy(&sockets)?, Vec::new())?;
        self.legs.insert(
            id,
            Leg {
                plan: plan.clone(),
                sockets,
                refused: Vec::new(),
                carried: RtpCounters::default(),
                parts,
            },
        );
        tracing::info!(leg = id, remote = %audio.remote_rtp, codec = %audio.codec, "conference leg added");
        Ok(id)
    }

    /// Runs a leg on a new plan (its audio stream; the far end re-offered), on the same
    /// sockets: the leg is rebuilt in the running mix, its counters carry on, and RTP from
    /// the party's former address is no longer played. An inactive stream leaves the leg in
    /// place carrying nothing. If the new leg cannot be built the previous plan is rebuilt
    /// (see docs/media.md, "Updates").
    pub fn update_leg(&mut self, id: LegId, plan: &Negotiated) -> Result<(), MediaError> {
        let audio = audio_stream(plan)?;
        let mut leg = self.legs.remove(&id).ok_or(MediaError::UnknownLeg(id))?;
        let remote = |p: &Negotiated| [p.audio.as_ref().map(|a| a.remote_rtp)];
        let refused = chains::refused_senders(&leg.refused, &remote(&leg.plan), &remote(plan));
        let built = copy(&leg.sockets).and_then(|pair| {
            leg.carried = leg.counters();
            let old = std::mem::take(&mut leg.parts);
            self.dismantle(id, &old);
            self.build_leg(id, audio, pair, refused.clone())
        });
        let outcome = match built {
            Ok(parts) => {
                leg.parts = parts;
                leg.plan = plan.clone();
                leg.refused = refused;
                tracing::info!(leg = id, remote = %audio.remote_rtp, codec = %audio.codec,
                    direction = ?audio.direction, "conference leg updated");
                Ok(())
            }
            Err(e) if leg.parts.rtpbin.is_some() => Err(e), // never taken down
            Err(e) => {
                let restored = match leg.plan.audio.clone() {
                    Some(previous) => copy(&leg.sockets)
                        .and_then(|pair| self.build_leg(id, &previous, pair, leg.refused.clone())),
                    None => Ok(LegParts::default()),
                };
                match restored {
                    Ok(parts) => {
                        leg.parts = parts;
                        Err(MediaError::Pipeline(format!(
                            "{e}; the previous plan runs again"
                        )))
                    }
                    Err(again) => Err(MediaError::Pipeline(format!(
                        "{e}; the previous plan could not be restored either ({again}): the leg carries nothing"
                    ))),
                }
            }
        };
        self.legs.insert(id, leg);
        outcome
    }

    /// Builds leg `id` for its audio stream in the running pipeline, wired into every mix
    /// (nothing for an inactive stream). On failure, whatever was added is taken out again.
    fn build_leg(
        &mut self,
        id: LegId,
        audio: &StreamPlan,
        sockets: SocketPair,
        refused: Vec<SocketAddr>,
    ) -> Result<LegParts, MediaError> {
        let mut parts = LegParts::default();
        if audio.direction == Direction::Inactive {
            return Ok(parts);
        }
        match self.wire_leg(id, audio, sockets, refused, &mut parts) {
            Ok(()) => Ok(parts),
            Err(e) => {
                self.dismantle(id, &parts);
                Err(e)
            }
        }
    }

    /// Adds a leg's elements to the running pipeline (each noted in `parts` as it is added)
    /// and its mix branches.
    fn wire_leg(
        &mut self,
        id: LegId,
        audio: &StreamPlan,
        sockets: SocketPair,
        refused: Vec<SocketAddr>,
        parts: &mut LegParts,
    ) -> Result<(), MediaError> {
        let rtpbin = chains::rtpbin(self.settings.jitter_ms, vec![Some(audio.clone())])?;
        self.pipeline.add(&rtpbin).pipeline()?;
        parts.rtpbin = Some(rtpbin.clone());
        parts.elements.push(rtpbin.clone());
        let t = chains::transport(&self.pipeline, &rtpbin, 0, audio, sockets)?;
        parts.elements.extend(t.elements);
        if let Some(send_sink) = t.send_sink {
            let m = mixer(&self.settings)?;
            let caps = mix_caps()?;
            let encoder = chains::audio_encoder(audio.codec, audio.payload_type, &self.settings)?;
            add_chain(
                &self.pipeline,
                &[&m, &caps, encoder.upcast_ref()],
                &send_sink,
            )?;
            parts.elements.extend([m.clone(), caps, encoder.upcast()]);
            parts.mixer = Some(m);
        }
        if audio.direction.receives() {
            let decoder = chains::audio_decoder(audio.codec, Some(chains::MIX_RATE))?;
            let tee = tee()?;
            let sink_pad = add_receiver(&self.pipeline, &[decoder.upcast_ref(), &tee])?;
            parts.elements.extend([decoder.upcast(), tee.clone()]);
            chains::route_received(&rtpbin, vec![Some(sink_pad)], refused);
            parts.tee = Some(tee);
        }
        // Downstream first, sockets last: the party's RTP may already be arriving (the leg
        // was a plain call until a second party joined, or it is being rebuilt), and a
        // packet reaching a decoder, tee or mix branch that is not playing yet stops the
        // socket's source for good ("Internal data stream error"). So everything but the
        // receiving sockets starts now, the mix branches are linked, and only then do the
        // sockets start.
        let (sockets_in, inner): (Vec<&gst::Element>, Vec<&gst::Element>) =
            parts.elements.iter().partition(|el| is_socket_source(el));
        for el in &inner {
            el.sync_state_with_parent().pipeline()?;
        }
        // Mix-minus wiring: this party hears the local voice and all others; all hear it.
        if let Some(m) = &parts.mixer {
            self.branch(End::Local, &self.local_tee.clone(), End::Leg(id), m)?;
            for (other, other_tee) in self.others(|p| p.tee.clone()) {
                self.branch(End::Leg(other), &other_tee, End::Leg(id), m)?;
            }
        }
        if let Some(tee) = &parts.tee {
            self.branch(End::Leg(id), tee, End::Local, &self.local_mixer.clone())?;
            for (other, other_mixer) in self.others(|p| p.mixer.clone()) {
                self.branch(End::Leg(id), tee, End::Leg(other), &other_mixer)?;
            }
        }
        for el in &sockets_in {
            el.sync_state_with_parent().pipeline()?;
        }
        Ok(())
    }

    /// One element of every other leg that has it (its tee or its mixer).
    fn others(
        &self,
        pick: impl Fn(&LegParts) -> Option<gst::Element>,
    ) -> Vec<(LegId, gst::Element)> {
        self.legs
            .iter()
            .filter_map(|(id, leg)| pick(&leg.parts).map(|el| (*id, el)))
            .collect()
    }

    /// Connects `tee` to a new pad of `mixer` through a leaky queue, in a running pipeline.
    fn branch(
        &mut self,
        from: End,
        tee: &gst::Element,
        to: End,
        mixer: &gst::Element,
    ) -> Result<(), MediaError> {
        let queue = chains::element("queue")?;
        queue.set_property("max-size-buffers", 0u32);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 200_000_000u64);
        queue.set_property_from_str("leaky", "downstream");
        self.pipeline.add(&queue).pipeline()?;
        let mixer_pad = mixer
            .request_pad_simple("sink_%u")
            .ok_or_else(|| MediaError::Pipeline("audiomixer gave no sink pad".into()))?;
        let queue_src = queue
            .static_pad("src")
            .ok_or_else(|| MediaError::Pipeline("queue without src".into()))?;
        chains::link(&queue_src, &mixer_pad)?;
        queue.sync_state_with_parent().pipeline()?;
        let tee_pad = tee
            .request_pad_simple("src_%u")
            .ok_or_else(|| MediaError::Pipeline("tee gave no src pad".into()))?;
        let queue_sink = queue
            .static_pad("sink")
            .ok_or_else(|| MediaError::Pipeline("queue without sink".into()))?;
        chains::link(&tee_pad, &queue_sink)?;
        self.branches.push(Branch {
            from,
            to,
            tee: tee.clone(),
            tee_pad,
            queue,
            mixer: mixer.clone(),
            mixer_pad,
        });
        Ok(())
    }

    /// Removes a party: its branches leave every mix and its leg stops (RTCP BYE is not sent;
    /// the SIP side ends the dialog).
    pub fn remove_leg(&mut self, id: LegId) -> Result<(), MediaError> {
        let leg = self.legs.remove(&id).ok_or(MediaError::UnknownLeg(id))?;
        self.dismantle(id, &leg.parts);
        tracing::info!(leg = id, "conference leg removed");
        Ok(())
    }

    /// Takes one build of leg `id` out of the running pipeline: its branches leave every mix,
    /// its elements stop.
    fn dismantle(&mut self, id: LegId, parts: &LegParts) {
        let (gone, kept): (Vec<Branch>, Vec<Branch>) = std::mem::take(&mut self.branches)
            .into_iter()
            .partition(|b| b.from == End::Leg(id) || b.to == End::Leg(id));
        self.branches = kept;
        for b in gone {
            if let Some(queue_sink) = b.queue.static_pad("sink") {
                let _ = b.tee_pad.unlink(&queue_sink);
            }
            b.tee.release_request_pad(&b.tee_pad);
            if let Some(queue_src) = b.queue.static_pad("src") {
                let _ = queue_src.unlink(&b.mixer_pad);
            }
            b.mixer.release_request_pad(&b.mixer_pad);
            let _ = b.queue.set_state(gst::State::Null);
            let _ = self.pipeline.remove(&b.queue);
        }
        for el in parts.elements.iter().rev() {
            let _ = el.set_state(gst::State::Null);
            let _ = self.pipeline.remove(el);
        }
    }

    /// The ids of the legs in the conference.
    pub fn legs(&self) -> Vec<LegId> {
        self.legs.keys().copied().collect()
    }

    /// Local sound measurements and every leg's RTP counters.
    pub fn stats(&self) -> ConferenceStats {
        let legs = self
            .legs
            .iter()
            .map(|(id, leg)| {
                let audio = leg.plan.audio.as_ref().map(|p| leg.counters().stats(p));
                (
                    *id,
                    MediaStats {
                        audio,
                        ..MediaStats::default()
                    },
                )
            })
            .collect();
        ConferenceStats {
            local: MediaStats {
                sound: self.sound.as_ref().map(|s| s.stats()),
                errors: self.watch.errors(),
                ..MediaStats::default()
            },
            legs,
        }
    }

    /// Mutes or unmutes the local voice towards every party.
    pub fn set_muted(&self, muted: bool) {
        set_mute(self.pipeline.upcast_ref(), muted);
    }

    /// Ends every leg and the local part.
    pub fn stop(mut self) {
        self.watch.shut_down(&self.pipeline, true);
    }
}

impl Drop for Conference {
    fn drop(&mut self) {
        self.watch.shut_down(&self.pipeline, false);
    }
}
