//! The one progress sink. Library code reports [`Event`]s to a [`Sink`]; the CLI picks the
//! renderer from `--progress` / `BUILDKIT_PROGRESS`: `plain` (BuildKit-style `#N` lines),
//! `rawjson` (one JSON event per line), `quiet` (nothing), `tty` (live, redrawn in place),
//! `auto` (tty on a terminal, plain otherwise).

mod plain;
mod rawjson;
mod tty;

use std::io::IsTerminal;
use std::str::FromStr;
use std::sync::Mutex;

pub use plain::PlainSink;
pub use rawjson::RawJsonSink;
pub use tty::TtySink;

/// Environment variable buildx reads for the default progress mode.
pub const ENV_PROGRESS: &str = "BUILDKIT_PROGRESS";

/// What happened, from the point of view of someone watching a build.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A vertex (step) started; `id` is stable for the whole run.
    Started { id: u64, name: String },
    /// A line of output from a step (RUN output, warnings).
    Log { id: u64, line: String },
    /// A step was satisfied from the cache.
    Cached { id: u64 },
    /// A step finished; `seconds` is its wall time.
    Done { id: u64, seconds: f64 },
    /// A step failed with this message.
    Failed { id: u64, message: String },
    /// A step was stopped because another part of the run failed (BuildKit's `CANCELED`).
    Canceled { id: u64 },
    /// A warning not tied to a step.
    Warning { message: String },
    /// A notice for the user (what was exported where).
    Info { message: String },
}

impl Event {
    /// Turns a warning into an informational notice.
    pub fn into_info(self) -> Event {
        match self {
            Event::Warning { message } => Event::Info { message },
            other => other,
        }
    }
}

/// Receives events. Implementations must be cheap and never fail the build.
pub trait Sink: Send + Sync {
    fn event(&self, event: &Event);
}

/// Discards everything (`--progress=quiet`).
#[derive(Debug, Default)]
pub struct QuietSink;

impl Sink for QuietSink {
    fn event(&self, _event: &Event) {}
}

/// Keeps every event in memory; used by tests and by the report stage.
#[derive(Debug, Default)]
pub struct RecordingSink {
    events: Mutex<Vec<Event>>,
}

impl RecordingSink {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Sink for RecordingSink {
    fn event(&self, event: &Event) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event.clone());
        }
    }
}

/// `--progress` values, as buildx accepts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Auto,
    Tty,
    Plain,
    Quiet,
    RawJson,
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Mode::Auto),
            "tty" => Ok(Mode::Tty),
            "plain" => Ok(Mode::Plain),
            "quiet" | "none" => Ok(Mode::Quiet),
            "rawjson" => Ok(Mode::RawJson),
            other => Err(format!(
                "invalid progress mode {other:?}: expected auto, tty, plain, quiet or rawjson"
            )),
        }
    }
}

/// Builds the sink for a mode, writing to stderr.
pub fn sink_for(mode: Mode) -> Box<dyn Sink> {
    match mode {
        Mode::Quiet => Box::new(QuietSink),
        Mode::RawJson => Box::new(RawJsonSink::stderr()),
        Mode::Plain => Box::new(PlainSink::stderr()),
        Mode::Tty => Box::new(TtySink::stderr()),
        Mode::Auto => {
            if std::io::stderr().is_terminal() {
                sink_for(Mode::Tty)
            } else {
                sink_for(Mode::Plain)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buildx_modes() {
        assert_eq!("plain".parse::<Mode>(), Ok(Mode::Plain));
        assert_eq!("rawjson".parse::<Mode>(), Ok(Mode::RawJson));
        assert!("fancy".parse::<Mode>().is_err());
    }

    #[test]
    fn recording_sink_keeps_order() {
        let sink = RecordingSink::default();
        sink.event(&Event::Started {
            id: 1,
            name: "a".into(),
        });
        sink.event(&Event::Cached { id: 1 });
        assert_eq!(sink.events().len(), 2);
        assert_eq!(sink.events()[1], Event::Cached { id: 1 });
    }
}
