//! Incremental Server-Sent Events parsing that keeps each event's exact bytes.
//!
//! The gateway forwards SSE event by event: an event is released to the client as soon as
//! its terminating blank line arrives, unchanged unless a later stage rewrites it, so the
//! stream is never buffered to its end.

use bytes::{Bytes, BytesMut};

/// One complete event: its fields, and the bytes it arrived as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub raw: Bytes,
    /// The `event:` field; `None` means the default type, `message`.
    pub event: Option<String>,
    pub data: Option<String>,
    pub id: Option<String>,
    pub retry: Option<u64>,
}

impl Event {
    /// Whether the event carries a JSON-RPC message (the default `message` type with data).
    pub fn is_message(&self) -> bool {
        self.data.is_some() && self.event.as_deref().is_none_or(|e| e == "message")
    }

    /// Serializes an event from fields (for events the gateway writes or rewrites).
    pub fn encode(event: Option<&str>, id: Option<&str>, data: &str) -> Bytes {
        let mut out = String::with_capacity(data.len() + 32);
        if let Some(event) = event {
            out.push_str("event: ");
            out.push_str(event);
            out.push('\n');
        }
        if let Some(id) = id {
            out.push_str("id: ");
            out.push_str(id);
            out.push('\n');
        }
        for line in data.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        Bytes::from(out)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an SSE event exceeds {limit} bytes")]
pub struct EventTooLarge {
    pub limit: usize,
}

/// Splits a byte stream into events. Feed it chunks as they arrive.
#[derive(Debug)]
pub struct Parser {
    buf: BytesMut,
    /// Where the next unscanned line starts.
    line_start: usize,
    max_event_bytes: usize,
}

impl Parser {
    pub fn new(max_event_bytes: usize) -> Self {
        Parser { buf: BytesMut::new(), line_start: 0, max_event_bytes }
    }

    /// Adds a chunk and returns every event it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Event>, EventTooLarge> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some((line_end, next)) = self.next_line_end() {
            let blank = line_end == self.line_start;
            self.line_start = next;
            if blank {
                let raw = self.buf.split_to(next).freeze();
                self.line_start = 0;
                events.push(parse_fields(raw));
            }
        }
        if self.buf.len() > self.max_event_bytes {
            return Err(EventTooLarge { limit: self.max_event_bytes });
        }
        Ok(events)
    }

    /// Bytes of an event left incomplete when the stream ended.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Finds the end of the line at `line_start`, and where the line after it begins.
    fn next_line_end(&self) -> Option<(usize, usize)> {
        let rest = &self.buf[self.line_start..];
        let i = rest.iter().position(|&b| b == b'\n' || b == b'\r')?;
        let end = self.line_start + i;
        if rest[i] == b'\r' {
            // A lone CR at the end of the buffer may be the first half of CRLF.
            match rest.get(i + 1) {
                None => None,
                Some(b'\n') => Some((end, end + 2)),
                Some(_) => Some((end, end + 1)),
            }
        } else {
            Some((end, end + 1))
        }
    }
}

fn parse_fields(raw: Bytes) -> Event {
    let mut event = Event { raw: Bytes::new(), event: None, data: None, id: None, retry: None };
    let text = String::from_utf8_lossy(&raw);
    for line in text.split(['\n', '\r']).filter(|l| !l.is_empty() && !l.starts_with(':')) {
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match name {
            "event" => event.event = Some(value.to_string()),
            "data" => match &mut event.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => event.data = Some(value.to_string()),
            },
            "id" if !value.contains('\0') => event.id = Some(value.to_string()),
            "retry" => event.retry = value.parse().ok(),
            _ => {}
        }
    }
    event.raw = raw;
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_keep_their_bytes() {
        let mut p = Parser::new(1024);
        assert!(p.feed(b"id: 1\nevent: mess").unwrap().is_empty());
        assert!(p.feed(b"age\ndata: {\"a\":\n").unwrap().is_empty());
        let events = p.feed(b"data: 1}\n\nretry: 500\n\n: keepalive\n\n").unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(&events[0].raw[..], b"id: 1\nevent: message\ndata: {\"a\":\ndata: 1}\n\n");
        assert_eq!(events[0].data.as_deref(), Some("{\"a\":\n1}"));
        assert_eq!(events[0].id.as_deref(), Some("1"));
        assert!(events[0].is_message());
        assert_eq!(events[1].retry, Some(500));
        assert!(!events[1].is_message());
        assert!(events[2].data.is_none());
        assert_eq!(p.pending_bytes(), 0);
    }

    #[test]
    fn all_line_endings_terminate_events() {
        let mut p = Parser::new(1024);
        let events = p.feed(b"data: a\r\n\r\ndata: b\r\rdata: c\n\r\n").unwrap();
        let data: Vec<_> = events.iter().map(|e| e.data.clone().unwrap()).collect();
        assert_eq!(data, ["a", "b", "c"]);
    }

    #[test]
    fn cr_at_chunk_end_waits_for_a_possible_lf() {
        let mut p = Parser::new(1024);
        assert!(p.feed(b"data: a\r").unwrap().is_empty());
        assert!(p.feed(b"\n").unwrap().is_empty());
        assert_eq!(p.feed(b"\r\n").unwrap().len(), 1);
    }

    #[test]
    fn oversized_event_is_an_error() {
        let mut p = Parser::new(16);
        assert_eq!(p.feed(&[b'x'; 17]).unwrap_err(), EventTooLarge { limit: 16 });
    }

    #[test]
    fn encode_round_trips() {
        let raw = Event::encode(Some("endpoint"), None, "/messages?s=1");
        let mut p = Parser::new(1024);
        let e = p.feed(&raw).unwrap().remove(0);
        assert_eq!(e.event.as_deref(), Some("endpoint"));
        assert_eq!(e.data.as_deref(), Some("/messages?s=1"));
        assert!(!e.is_message());
    }
}
