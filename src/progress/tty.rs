//! `--progress=tty`: a live view on a terminal. Finished steps scroll up as
//! `=> [stage 1/3] COPY ... 0.2s` lines (`=> CACHED`, `=> ERROR`); the steps still running
//! stay at the bottom with their elapsed time and the last lines of their output, redrawn
//! in place on every event.

use super::{Event, Sink};
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

/// Output lines kept under a running step.
const LOG_TAIL: usize = 6;

struct Running {
    id: u64,
    name: String,
    started: Instant,
    logs: Vec<String>,
}

struct State {
    out: Box<dyn Write + Send>,
    running: Vec<Running>,
    /// Lines of the live region currently on screen.
    drawn: usize,
    /// Terminal width for cutting long lines.
    width: usize,
}

pub struct TtySink {
    state: Mutex<State>,
}

impl TtySink {
    pub fn stderr() -> Self {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(120);
        Self::new(Box::new(std::io::stderr()), width)
    }

    pub fn new(out: Box<dyn Write + Send>, width: usize) -> Self {
        TtySink {
            state: Mutex::new(State {
                out,
                running: Vec::new(),
                drawn: 0,
                width: width.max(40),
            }),
        }
    }
}

fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(3)).collect();
        t.push_str("...");
        t
    }
}

impl State {
    /// Erases the live region (cursor up, clear to end of screen).
    fn clear(&mut self) {
        if self.drawn > 0 {
            let _ = write!(self.out, "\x1b[{}A\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    fn draw(&mut self) {
        let mut lines = Vec::new();
        for r in &self.running {
            lines.push(format!(
                "=> {} {:.1}s",
                r.name,
                r.started.elapsed().as_secs_f64()
            ));
            for l in &r.logs {
                lines.push(format!("   {l}"));
            }
        }
        for l in &lines {
            let _ = writeln!(self.out, "{}", cut(l, self.width));
        }
        self.drawn = lines.len();
        let _ = self.out.flush();
    }

    fn finish(&mut self, id: u64, status: &str) {
        if let Some(pos) = self.running.iter().position(|r| r.id == id) {
            let r = self.running.remove(pos);
            let line = match status {
                "CACHED" => format!("=> CACHED {}", r.name),
                "CANCELED" => format!(
                    "=> CANCELED {} {:.1}s",
                    r.name,
                    r.started.elapsed().as_secs_f64()
                ),
                "ERROR" => format!(
                    "=> ERROR {} {:.1}s",
                    r.name,
                    r.started.elapsed().as_secs_f64()
                ),
                _ => format!("=> {} {:.1}s", r.name, r.started.elapsed().as_secs_f64()),
            };
            let _ = writeln!(self.out, "{}", cut(&line, self.width));
            if status == "ERROR" {
                for l in &r.logs {
                    let _ = writeln!(self.out, "   {}", cut(l, self.width));
                }
            }
        }
    }
}

impl Sink for TtySink {
    fn event(&self, event: &Event) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        s.clear();
        match event {
            Event::Started { id, name } => s.running.push(Running {
                id: *id,
                name: name.clone(),
                started: Instant::now(),
                logs: Vec::new(),
            }),
            Event::Log { id, line } => {
                if let Some(r) = s.running.iter_mut().find(|r| r.id == *id) {
                    r.logs.push(line.clone());
                    if r.logs.len() > LOG_TAIL {
                        r.logs.remove(0);
                    }
                }
            }
            Event::Cached { id } => s.finish(*id, "CACHED"),
            Event::Done { id, .. } => s.finish(*id, "DONE"),
            Event::Canceled { id } => s.finish(*id, "CANCELED"),
            Event::Failed { id, message } => {
                s.finish(*id, "ERROR");
                let w = s.width;
                let _ = writeln!(s.out, "{}", cut(&format!("ERROR: {message}"), w));
            }
            Event::Warning { message } => {
                let _ = writeln!(s.out, "WARNING: {message}");
            }
            Event::Info { message } => {
                let _ = writeln!(s.out, "=> {message}");
            }
        }
        s.draw();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex as StdMutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<StdMutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn finished_steps_scroll_and_running_ones_redraw() {
        let buf = Buf::default();
        let sink = TtySink::new(Box::new(buf.clone()), 80);
        sink.event(&Event::Started {
            id: 1,
            name: "[a 1/2] COPY x /".into(),
        });
        sink.event(&Event::Log {
            id: 1,
            line: "copying".into(),
        });
        sink.event(&Event::Done {
            id: 1,
            seconds: 0.1,
        });
        sink.event(&Event::Started {
            id: 2,
            name: "[a 2/2] RUN true".into(),
        });
        sink.event(&Event::Cached { id: 2 });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(out.contains("\x1b["), "redraws in place");
        assert!(out.contains("=> [a 1/2] COPY x / "));
        assert!(out.contains("=> CACHED [a 2/2] RUN true"));
        assert!(out.contains("   copying"));
    }
}
