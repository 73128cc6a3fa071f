//! `--progress=rawjson`: one JSON object per event per line.

use super::{Event, Sink};
use std::io::Write;
use std::sync::Mutex;

pub struct RawJsonSink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl RawJsonSink {
    pub fn stderr() -> Self {
        RawJsonSink {
            out: Mutex::new(Box::new(std::io::stderr())),
        }
    }
}

impl Sink for RawJsonSink {
    fn event(&self, event: &Event) {
        if let (Ok(mut out), Ok(line)) = (self.out.lock(), serde_json::to_string(event)) {
            let _ = writeln!(out, "{line}");
        }
    }
}
