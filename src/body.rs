//! HTTP body plumbing shared by the listener, the pipeline and the upstreams.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response the gateway sends and every upstream response it reads.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Converts any body into [`Body`].
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("body exceeds {0} bytes")]
    TooLarge(usize),
    #[error("body not received within {0:?}")]
    Timeout(Duration),
    #[error("reading body: {0}")]
    Io(BoxError),
}

/// Reads a whole body, refusing more than `limit` bytes or taking longer than `timeout`.
pub async fn read_limited(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, ReadError> {
    read_counted(body, limit, timeout).await.map_err(|(e, _)| e)
}

/// [`read_limited`], saying on failure how many bytes had arrived (what an evidence record
/// of a refused or aborted upload names).
pub async fn read_counted(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, (ReadError, usize)> {
    let mut buf = bytes::BytesMut::new();
    match tokio::time::timeout(timeout, collect_limited(body, limit, &mut buf)).await {
        Ok(Ok(())) => Ok(buf.freeze()),
        Ok(Err(e)) => Err((e, buf.len())),
        Err(_) => Err((ReadError::Timeout(timeout), buf.len())),
    }
}

// Collected by hand rather than with `http_body_util::Limited`: its `Into<BoxError>` bound on
// an already-boxed error trips a rustc limitation when the calling future is checked for `Send`.
async fn collect_limited(mut body: Body, limit: usize, buf: &mut bytes::BytesMut) -> Result<(), ReadError> {
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(ReadError::Io)?.into_data() else { continue };
        if buf.len() + data.len() > limit {
            return Err(ReadError::TooLarge(limit));
        }
        buf.extend_from_slice(&data);
    }
    Ok(())
}
