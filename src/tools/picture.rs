//! Pictures: every figure marl draws is SVG first (plots, environment frames); PNG and GIF are
//! rasterized from it with resvg, using a font built into the binary so the pictures look the
//! same on every machine, fonts installed or not.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{anyhow, Context, Result};
use resvg::{tiny_skia, usvg};

/// DejaVu Sans (assets/fonts, free licence), the one font every SVG of marl names first.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn options() -> &'static usvg::Options<'static> {
    static OPTIONS: OnceLock<usvg::Options<'static>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(FONT.to_vec());
        db.set_sans_serif_family("DejaVu Sans");
        usvg::Options {
            fontdb: Arc::new(db),
            font_family: "DejaVu Sans".to_string(),
            ..usvg::Options::default()
        }
    })
}

/// An RGBA raster of an SVG document, `scale` times its nominal size.
pub fn rasterize(svg: &str, scale: f32) -> Result<tiny_skia::Pixmap> {
    let tree = usvg::Tree::from_str(svg, options()).context("invalid SVG")?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .ok_or_else(|| anyhow!("empty SVG"))?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| anyhow!("SVG too large to rasterize"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    Ok(pixmap)
}

/// Writes `svg` as a PNG (`scale` 2 gives print resolution for a plot).
pub fn write_png(svg: &str, scale: f32, path: &Path) -> Result<()> {
    let png = rasterize(svg, scale)?
        .encode_png()
        .map_err(|e| anyhow!("cannot encode {}: {e}", path.display()))?;
    crate::run::fsio::write_atomic(path, &png)
}

/// Writes SVG frames as an animated GIF, `delay_cs` hundredths of a second each, looping.
pub fn write_gif(frames: &[String], delay_cs: u16, path: &Path) -> Result<()> {
    let first = frames
        .first()
        .ok_or_else(|| anyhow!("no frames to animate"))?;
    let size = rasterize(first, 1.0)?;
    let (w, h) = (size.width(), size.height());
    let wh = |v: u32| u16::try_from(v).map_err(|_| anyhow!("frame too large for a GIF"));
    let mut bytes = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut bytes, wh(w)?, wh(h)?, &[])
            .map_err(|e| anyhow!("GIF encoder: {e}"))?;
        enc.set_repeat(gif::Repeat::Infinite)
            .map_err(|e| anyhow!("GIF encoder: {e}"))?;
        for svg in frames {
            let mut px = rasterize(svg, 1.0)?;
            anyhow::ensure!(px.width() == w && px.height() == h, "frames differ in size");
            // 10: good colours for flat drawings at a fraction of the slowest quantizer's time.
            let mut frame = gif::Frame::from_rgba_speed(wh(w)?, wh(h)?, px.data_mut(), 10);
            frame.delay = delay_cs;
            enc.write_frame(&frame)
                .map_err(|e| anyhow!("GIF encoder: {e}"))?;
        }
    }
    crate::run::fsio::write_atomic(path, &bytes)
}

/// Writes an SVG document to `path` (atomically, like every file marl writes).
pub fn write_svg(svg: &str, path: &Path) -> Result<()> {
    crate::run::fsio::write_atomic(path, svg.as_bytes())
}
