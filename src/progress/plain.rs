//! BuildKit-style plain progress: `#N name`, `#N CACHED`, `#N DONE 0.1s`, `#N ERROR: msg`.

use super::{Event, Sink};
use std::io::Write;
use std::sync::Mutex;

pub struct PlainSink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl PlainSink {
    pub fn stderr() -> Self {
        Self::new(Box::new(std::io::stderr()))
    }

    pub fn new(out: Box<dyn Write + Send>) -> Self {
        PlainSink {
            out: Mutex::new(out),
        }
    }
}

/// One event as its plain-text line (without the newline).
pub fn format_event(event: &Event) -> String {
    match event {
        Event::Started { id, name } => format!("#{id} {name}"),
        Event::Log { id, line } => format!("#{id} {line}"),
        Event::Cached { id } => format!("#{id} CACHED"),
        Event::Done { id, seconds } => format!("#{id} DONE {seconds:.1}s"),
        Event::Failed { id, message } => format!("#{id} ERROR: {message}"),
        Event::Canceled { id } => format!("#{id} CANCELED"),
        Event::Warning { message } => format!("WARNING: {message}"),
        Event::Info { message } => format!("=> {message}"),
    }
}

impl Sink for PlainSink {
    fn event(&self, event: &Event) {
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{}", format_event(event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_buildkit() {
        assert_eq!(
            format_event(&Event::Done {
                id: 3,
                seconds: 0.04
            }),
            "#3 DONE 0.0s"
        );
        assert_eq!(format_event(&Event::Cached { id: 2 }), "#2 CACHED");
    }
}
