//! Stateful-revision sessions (2025-03-26 … 2025-11-25) the gateway has seen the upstream
//! open, with what later stages need to know about them (protocol version, client info).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use prometheus::IntGauge;
use serde_json::Value;

/// Sessions remembered at most; the oldest is forgotten first (the upstream still decides).
const MAX_SESSIONS: usize = 100_000;

#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    pub protocol_version: Option<String>,
    pub client_info: Option<Value>,
    /// The client declared URL-mode elicitation (`capabilities.elicitation.url`) at initialize.
    pub url_elicitation: bool,
    pub started: Instant,
}

pub struct Sessions {
    map: Mutex<HashMap<String, SessionInfo>>,
    gauge: IntGauge,
}

impl Sessions {
    pub fn new(gauge: IntGauge) -> Self {
        Sessions { map: Mutex::new(HashMap::new()), gauge }
    }

    pub fn open(&self, id: &str, info: SessionInfo) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_SESSIONS && !map.contains_key(id) {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.started).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(id.to_string(), info);
        self.gauge.set(map.len() as i64);
    }

    pub fn close(&self, id: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(id);
        self.gauge.set(map.len() as i64);
    }

    pub fn get(&self, id: &str) -> Option<SessionInfo> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_and_close_track_the_gauge() {
        let gauge = IntGauge::new("t", "t").unwrap();
        let s = Sessions::new(gauge.clone());
        let info = SessionInfo {
            protocol_version: Some("2025-11-25".into()),
            client_info: None,
            url_elicitation: false,
            started: Instant::now(),
        };
        s.open("a", info.clone());
        s.open("b", info.clone());
        assert_eq!(gauge.get(), 2);
        assert_eq!(s.get("a"), Some(info));
        s.close("a");
        assert_eq!(gauge.get(), 1);
        assert!(s.get("a").is_none());
    }
}
