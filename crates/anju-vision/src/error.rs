//! The crate's error type.

use std::path::PathBuf;

/// Errors of the face engine. Variants tell the caller what to do.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// ONNX Runtime's shared library was not found or could not be loaded. Not transient: run the
    /// setup command in the message.
    #[error("ONNX Runtime library not available: {0}")]
    RuntimeMissing(String),
    /// The model manifest or a model file is missing, malformed or does not match its sha256.
    #[error("model configuration: {0}")]
    Model(String),
    /// ONNX Runtime failed while creating a session or running inference.
    #[error("inference: {0}")]
    Inference(String),
    /// The input image could not be decoded.
    #[error("image decode: {0}")]
    Decode(String),
    /// Reading a file failed.
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Invalid input or arguments (bad pairs file, empty data set, ...).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The inference worker thread has stopped.
    #[error("face worker stopped")]
    WorkerStopped,
}

impl VisionError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, VisionError::WorkerStopped)
    }

    pub(crate) fn ort(e: impl std::fmt::Display) -> Self {
        VisionError::Inference(e.to_string())
    }
}

pub type Result<T, E = VisionError> = std::result::Result<T, E>;
