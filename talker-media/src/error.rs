//! Errors of the worker's GStreamer sessions. The contract's [`splitdial_media::MediaError`]
//! is the vocabulary shared with the agent; this wrapper only adds the conversions from
//! GStreamer's own error types (the orphan rule keeps them out of the contract, which links no
//! GStreamer).

pub use splitdial_media::MediaError;

/// Turns GStreamer results into [`MediaError`] with `?`.
pub(crate) trait PipelineResult<T> {
    /// The value, or [`MediaError::Pipeline`] with GStreamer's message.
    fn pipeline(self) -> Result<T, MediaError>;
}

impl<T> PipelineResult<T> for Result<T, gstreamer::glib::BoolError> {
    fn pipeline(self) -> Result<T, MediaError> {
        self.map_err(|e| MediaError::Pipeline(e.to_string()))
    }
}

impl<T> PipelineResult<T> for Result<T, gstreamer::StateChangeError> {
    fn pipeline(self) -> Result<T, MediaError> {
        self.map_err(|e| MediaError::Pipeline(format!("state change failed: {e}")))
    }
}
