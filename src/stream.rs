//! A response body that relays an upstream SSE stream event by event, handing each complete
//! event to an inspector first. Nothing is buffered beyond the event being assembled.
//!
//! Dropping this body (the client went away) drops the upstream body with it, which closes
//! the upstream connection or, for stdio, the request's channel: the upstream sees the
//! cancellation and nothing is left running.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use prometheus::IntGauge;

use crate::body::{Body, BoxError};
use crate::mcp::sse;

/// Decides what to forward for an event: its bytes (possibly rewritten), or `None` to drop it.
pub type OnEvent = Box<dyn FnMut(sse::Event) -> Option<Bytes> + Send>;

pub struct InspectedSse {
    inner: Body,
    parser: sse::Parser,
    ready: VecDeque<Bytes>,
    on_event: OnEvent,
    finished: bool,
    _open: OpenStream,
}

impl InspectedSse {
    /// Wraps `inner`, returning the relaying body.
    pub fn wrap(inner: Body, max_event_bytes: usize, streams: IntGauge, on_event: OnEvent) -> Body {
        use http_body_util::BodyExt;
        InspectedSse {
            inner,
            parser: sse::Parser::new(max_event_bytes),
            ready: VecDeque::new(),
            on_event,
            finished: false,
            _open: OpenStream::new(streams),
        }
        .boxed_unsync()
    }
}

impl http_body::Body for InspectedSse {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(bytes) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    let events = this.parser.feed(&data).map_err(|e| {
                        tracing::warn!(error = %e, "closing an upstream SSE stream");
                        this.finished = true;
                        BoxError::from(e)
                    })?;
                    for event in events {
                        if let Some(bytes) = (this.on_event)(event) {
                            this.ready.push_back(bytes);
                        }
                    }
                }
                Some(Err(e)) => {
                    this.finished = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    this.finished = true;
                    if this.parser.pending_bytes() > 0 {
                        // An unterminated event is discarded by clients too (WHATWG SSE).
                        tracing::debug!(bytes = this.parser.pending_bytes(), "upstream SSE ended mid-event");
                    }
                }
            }
        }
    }
}

/// Counts an open stream for as long as it lives.
struct OpenStream(IntGauge);

impl OpenStream {
    fn new(gauge: IntGauge) -> Self {
        gauge.inc();
        OpenStream(gauge)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn relays_events_as_inspected_and_counts_the_stream() {
        let chunks: Vec<Result<Frame<Bytes>, BoxError>> = vec![
            Ok(Frame::data(Bytes::from_static(b"data: one\n\ndata: t"))),
            Ok(Frame::data(Bytes::from_static(b"wo\n\ndata: drop-me\n\n"))),
        ];
        let inner = crate::body::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(chunks)));
        let gauge = IntGauge::new("s", "s").unwrap();
        let body = InspectedSse::wrap(
            inner,
            1024,
            gauge.clone(),
            Box::new(|e| (e.data.as_deref() != Some("drop-me")).then_some(e.raw)),
        );
        assert_eq!(gauge.get(), 1);
        let out = body.collect().await.unwrap().to_bytes();
        assert_eq!(&out[..], b"data: one\n\ndata: two\n\n");
        assert_eq!(gauge.get(), 0);
    }
}
