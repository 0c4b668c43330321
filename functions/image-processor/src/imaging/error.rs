//! Errors of the imaging pipeline.
//!
//! Every message is lowercase and written for the artist who uploaded the file. Problems with the
//! input itself are *permanent* (retrying the same bytes can never succeed); problems of this
//! process (an encoder failing, a worker thread lost) are not.

/// Why an upload could not be turned into renditions.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ImagingError {
    /// Zero bytes were uploaded.
    #[error("the file is empty")]
    Empty,

    /// The magic bytes are not those of an accepted format.
    #[error("the file is not a supported image (detected: {detected})")]
    UnsupportedFormat {
        /// A short name of what the bytes look like (`pdf`, `svg`, `heic`, `unknown`, ...).
        detected: &'static str,
    },

    /// An accepted container using a variant this pipeline does not decode.
    #[error("the image uses a feature that is not supported: {0}")]
    UnsupportedFeature(String),

    /// The upload is larger than the configured byte limit.
    #[error("the file is {bytes} bytes; the limit is {limit} bytes")]
    TooManyBytes {
        /// Size of the upload.
        bytes: u64,
        /// Configured limit.
        limit: u64,
    },

    /// The header declares more pixels than the configured limit (decompression-bomb guard).
    #[error("image is {width}×{height} pixels; the limit is {limit_megapixels} megapixels")]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Configured limit in megapixels (rounded down).
        limit_megapixels: u64,
    },

    /// The header declares an edge longer than the configured limit.
    #[error("image is {width}×{height} pixels; the longest side may be at most {limit} pixels")]
    EdgeTooLong {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Configured limit for either side.
        limit: u32,
    },

    /// The header declares a zero width or height.
    #[error("the image has no pixels (declared {width}×{height})")]
    NoPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },

    /// The data ends early or does not decode.
    #[error("the image data is truncated or corrupt")]
    Corrupt,

    /// A failure of this process rather than of the input (encoder error, lost worker).
    #[error("internal imaging error: {0}")]
    Internal(String),
}

impl ImagingError {
    /// True when the same input can never succeed: not an image, unsupported, too big, corrupt.
    /// False for problems of the process itself, which a retry may not hit again.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, ImagingError::Internal(_))
    }

    /// A stable machine-readable code for logs, metrics and the database.
    pub fn code(&self) -> &'static str {
        match self {
            ImagingError::Empty => "empty",
            ImagingError::UnsupportedFormat { .. } => "unsupported_format",
            ImagingError::UnsupportedFeature(_) => "unsupported_feature",
            ImagingError::TooManyBytes { .. } => "too_many_bytes",
            ImagingError::TooManyPixels { .. } => "too_many_pixels",
            ImagingError::EdgeTooLong { .. } => "edge_too_long",
            ImagingError::NoPixels { .. } => "no_pixels",
            ImagingError::Corrupt => "corrupt",
            ImagingError::Internal(_) => "internal",
        }
    }
}
