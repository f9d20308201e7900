//! Writing sampled images: a PNG grid, a folder of PNGs (the input FID tools take) or an .npz. Every
//! writer is atomic: the output appears complete under its final name or not at all.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A batch of images, NCHW f32 in [0, 1] (1 or 3 channels).
pub struct Images<'a> {
    pub data: &'a [f32],
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Images<'_> {
    fn check(&self) -> Result<()> {
        if !(self.c == 1 || self.c == 3) || self.data.len() != self.n * self.c * self.h * self.w {
            return Err(Error::InvalidParam {
                op: "write images",
                what: "images",
                rule: "NCHW data with 1 or 3 channels",
                found: format!(
                    "{} values for {}x{}x{}x{}",
                    self.data.len(),
                    self.n,
                    self.c,
                    self.h,
                    self.w
                ),
            });
        }
        Ok(())
    }

    /// 8-bit value as torchvision's save_image quantises: floor(255·x + 0.5), clamped.
    fn u8_at(&self, i: usize, ch: usize, y: usize, x: usize) -> u8 {
        let v = self.data[((i * self.c + ch) * self.h + y) * self.w + x];
        (255.0 * v + 0.5).clamp(0.0, 255.0) as u8
    }

    /// Image `i` as interleaved HWC bytes.
    fn hwc(&self, i: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.h * self.w * self.c);
        for y in 0..self.h {
            for x in 0..self.w {
                for ch in 0..self.c {
                    out.push(self.u8_at(i, ch, y, x));
                }
            }
        }
        out
    }
}

/// A temporary sibling of `path`, renamed over it when the write succeeded.
fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn encode_png(
    w: impl Write,
    width: usize,
    height: usize,
    channels: usize,
    data: &[u8],
) -> std::io::Result<()> {
    let mut enc = png::Encoder::new(w, width as u32, height as u32);
    enc.set_color(if channels == 1 {
        png::ColorType::Grayscale
    } else {
        png::ColorType::Rgb
    });
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(std::io::Error::other)?;
    writer
        .write_image_data(data)
        .map_err(std::io::Error::other)?;
    writer.finish().map_err(std::io::Error::other)
}

/// Runs `write` on a temporary sibling of `path`, then renames it to `path`; on failure the partial
/// output is removed (`remove`: file or folder), so nothing half-written is left under either name.
fn atomic_output(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
    remove: fn(&Path) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = temp_sibling(path);
    write(&tmp)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = remove(&tmp);
            Error::Io {
                path: path.to_path_buf(),
                source: e,
            }
        })
}

fn atomic_file(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let write_tmp = |tmp: &Path| {
        let mut f = std::fs::File::create(tmp)?;
        write(&mut f)?;
        f.sync_all()
    };
    atomic_output(path, write_tmp, |p| std::fs::remove_file(p))
}

/// All images in one PNG, `ceil(sqrt(n))` per row with 2-pixel black borders (torchvision's make_grid).
pub fn write_png_grid(path: &Path, imgs: &Images<'_>) -> Result<()> {
    imgs.check()?;
    let cols = (imgs.n as f64).sqrt().ceil().max(1.0) as usize;
    let rows = imgs.n.div_ceil(cols).max(1);
    let pad = 2;
    let (gw, gh) = (cols * (imgs.w + pad) + pad, rows * (imgs.h + pad) + pad);
    let c = imgs.c;
    let mut grid = vec![0u8; gw * gh * c];
    for i in 0..imgs.n {
        let (r, col) = (i / cols, i % cols);
        let (oy, ox) = (pad + r * (imgs.h + pad), pad + col * (imgs.w + pad));
        let px = imgs.hwc(i);
        for y in 0..imgs.h {
            let dst = ((oy + y) * gw + ox) * c;
            grid[dst..dst + imgs.w * c].copy_from_slice(&px[y * imgs.w * c..(y + 1) * imgs.w * c]);
        }
    }
    atomic_file(path, |f| encode_png(f, gw, gh, c, &grid))
}

/// One PNG per image, `{index:06}.png` with the global sample index, in a directory created whole
/// (written under a temporary name, renamed at the end). The directory must not exist yet.
pub fn write_png_folder(dir: &Path, imgs: &Images<'_>, first_index: usize) -> Result<()> {
    let mut folder = PngFolder::create(dir)?;
    folder.write(imgs, first_index)?;
    folder.finish()
}

/// A folder of PNGs written batch by batch (so encoding overlaps whatever produces the next batch):
/// the images go into a temporary sibling of `dir`, which `finish` renames to `dir`; dropped
/// unfinished (an error on the way), the temporary folder is removed, so `dir` appears complete or not
/// at all.
pub struct PngFolder {
    dir: PathBuf,
    tmp: PathBuf,
    finished: bool,
}

impl PngFolder {
    /// Starts the folder; `dir` must not exist yet.
    pub fn create(dir: &Path) -> Result<PngFolder> {
        let io = |e| Error::Io {
            path: dir.to_path_buf(),
            source: e,
        };
        if dir.exists() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "output folder already exists; choose a new one",
            )));
        }
        let tmp = temp_sibling(dir);
        std::fs::create_dir_all(&tmp).map_err(io)?;
        Ok(PngFolder {
            dir: dir.to_path_buf(),
            tmp,
            finished: false,
        })
    }

    /// Writes `imgs` as `{first_index + i:06}.png`.
    pub fn write(&mut self, imgs: &Images<'_>, first_index: usize) -> Result<()> {
        imgs.check()?;
        for i in 0..imgs.n {
            let path = self.tmp.join(format!("{:06}.png", first_index + i));
            let written = std::fs::File::create(&path).and_then(|f| {
                let hwc = imgs.hwc(i);
                encode_png(std::io::BufWriter::new(f), imgs.w, imgs.h, imgs.c, &hwc)
            });
            written.map_err(|e| Error::Io {
                path: self.dir.clone(),
                source: e,
            })?;
        }
        Ok(())
    }

    /// Renames the finished folder to its name.
    pub fn finish(mut self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.dir).map_err(|e| Error::Io {
            path: self.dir.clone(),
            source: e,
        })?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for PngFolder {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// An .npz with `arr_0`: uint8 [N, H, W, C], the layout FID tools read.
pub fn write_npz(path: &Path, imgs: &Images<'_>) -> Result<()> {
    imgs.check()?;
    let header = format!(
        "{{'descr': '|u1', 'fortran_order': False, 'shape': ({}, {}, {}, {}), }}",
        imgs.n, imgs.h, imgs.w, imgs.c
    );
    // .npy v1.0: magic, version, header length, header padded with spaces to a 64-byte boundary.
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let unpadded = 10 + header.len() + 1;
    let padded = unpadded.div_ceil(64) * 64;
    let mut h = header.into_bytes();
    h.resize(padded - 10 - 1, b' ');
    h.push(b'\n');
    npy.extend_from_slice(&(h.len() as u16).to_le_bytes());
    npy.extend_from_slice(&h);
    for i in 0..imgs.n {
        npy.extend_from_slice(&imgs.hwc(i));
    }
    atomic_file(path, |f| {
        let mut zw = zip::ZipWriter::new(f);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(npy.len() >= u32::MAX as usize);
        zw.start_file("arr_0.npy", opts)
            .map_err(std::io::Error::other)?;
        zw.write_all(&npy)?;
        zw.finish().map_err(std::io::Error::other)?;
        Ok(())
    })
}
