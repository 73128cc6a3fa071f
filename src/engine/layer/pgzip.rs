//! gzip on every core: the input is cut into fixed [`BLOCK`]-byte blocks, each deflated on
//! its own thread with the previous block's last 32 KiB as its dictionary and ended with a
//! sync flush, the last one with a final block; the raw deflate pieces concatenated behind
//! one gzip header form one ordinary gzip member (pigz does the same). Block boundaries
//! depend only on the byte offsets, so the same input gives the same bytes whatever the
//! number of threads or the sizes of the writes.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{channel, Receiver};

use flate2::{Compress, Compression, FlushCompress, Status};

/// Bytes of input per block.
pub const BLOCK: usize = 1 << 20;
/// deflate's window: how much of the previous block primes the next.
const DICT: usize = 32 * 1024;

/// A gzip writer compressing blocks in parallel. Call [`ParallelGzip::finish`].
pub struct ParallelGzip<W: Write> {
    out: W,
    level: u32,
    block: Vec<u8>,
    dict: Vec<u8>,
    crc: crc32fast::Hasher,
    total: u64,
    in_flight: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_in_flight: usize,
    header_written: bool,
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(out: W, level: u32) -> ParallelGzip<W> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ParallelGzip {
            out,
            level: level.min(9),
            block: Vec::with_capacity(BLOCK),
            dict: Vec::new(),
            crc: crc32fast::Hasher::new(),
            total: 0,
            in_flight: VecDeque::new(),
            max_in_flight: cores.clamp(1, 8),
            header_written: false,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if self.header_written {
            return Ok(());
        }
        let xfl = match self.level {
            9 => 2,
            0 | 1 => 4,
            _ => 0,
        };
        // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL OS=unknown
        self.out
            .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
        self.header_written = true;
        Ok(())
    }

    /// Writes out finished blocks, oldest first, waiting while `max` or more are running.
    fn drain(&mut self, max: usize) -> io::Result<()> {
        while self.in_flight.len() > max {
            let Some(rx) = self.in_flight.pop_front() else {
                break;
            };
            let piece = rx
                .recv()
                .map_err(|_| io::Error::other("a compression thread died"))??;
            self.header()?;
            self.out.write_all(&piece)?;
        }
        Ok(())
    }

    /// Hands the current block to a thread (`last`: end the stream with it).
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let input = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        let dict = std::mem::take(&mut self.dict);
        if !last {
            self.dict = input[input.len().saturating_sub(DICT)..].to_vec();
        }
        let level = self.level;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let _ = tx.send(deflate_block(level, &dict, &input, last));
        });
        self.in_flight.push_back(rx);
        self.drain(self.max_in_flight)
    }

    /// Ends the stream: the last block, the CRC and the size; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        self.drain(0)?;
        self.header()?;
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&(self.total as u32).to_le_bytes())?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.total += n as u64;
        if self.block.len() == BLOCK {
            self.dispatch(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // A flush would change the stream; everything is written by `finish`.
        Ok(())
    }
}

/// Raw deflate of one block: primed with `dict`, ended with a sync flush (byte-aligned,
/// not final) or, for the `last` block, with the final block.
fn deflate_block(level: u32, dict: &[u8], input: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(input.len() + input.len() / 8 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(64 * 1024);
        }
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&input[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == input.len();
        match status {
            Status::StreamEnd => break,
            // A sync flush is complete when all input is in and output space was left.
            _ if !last && all_in && out.len() < out.capacity() => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gz(data: &[u8], piece: usize) -> Vec<u8> {
        let mut w = ParallelGzip::new(Vec::new(), 6);
        for chunk in data.chunks(piece.max(1)) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn round_trips_and_is_deterministic() {
        let mut data = Vec::new();
        let mut x: u32 = 1;
        while data.len() < 3 * BLOCK + 12345 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            // Half compressible text, half noise.
            if (data.len() / 4096) % 2 == 0 {
                data.extend_from_slice(format!("line {} of the layer\n", data.len()).as_bytes());
            } else {
                data.extend_from_slice(&x.to_le_bytes());
            }
        }
        let a = gz(&data, 1000);
        let b = gz(&data, 3 * BLOCK);
        assert_eq!(a, b, "the same bytes whatever the write sizes");
        assert_eq!(gunzip(&a), data);
        // One gzip member, readable by a single-member decoder.
        assert_eq!(&a[..3], &[0x1f, 0x8b, 8]);
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK] {
            let d = &data[..len];
            assert_eq!(gunzip(&gz(d, 7777)), d, "length {len}");
        }
    }
}
