//! The sandbox's picture: a composition seeded by a hash of the prompt (a two-colour gradient
//! with a soft glow, and a few flat shapes that orbit slowly), and the span rasteriser that draws
//! its shapes into interleaved RGB or into single YUV planes.
//!
//! Geometry is kept in frame pixels; a plane with fewer pixels (a 4:2:0 chroma plane) is drawn
//! through a scale factor, so the picture and every frame of the video share one description.

use std::f32::consts::TAU;

use sha2::{Digest, Sha256};

/// An 8-bit sRGB colour.
pub(crate) type Rgb = [u8; 3];

/// SplitMix64: small, fast and the same on every platform, which is all a seeded layout needs.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// HSV (hue in turns, any real; saturation and value in `[0, 1]`) to RGB.
fn hsv(h: f32, s: f32, v: f32) -> Rgb {
    let h = h.rem_euclid(1.0) * 6.0;
    let sector = h.floor();
    let f = h - sector;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    let (r, g, b) = match sector as u8 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    [to_byte(r), to_byte(g), to_byte(b)]
}

fn to_byte(x: f32) -> u8 {
    (x * 255.0).round().clamp(0.0, 255.0) as u8
}

fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    let t = t.clamp(0.0, 1.0);
    let m = |x: u8, y: u8| {
        (f32::from(x) + (f32::from(y) - f32::from(x)) * t)
            .round()
            .clamp(0.0, 255.0) as u8
    };
    [m(a[0], b[0]), m(a[1], b[1]), m(a[2], b[2])]
}

/// The outline of one shape.
#[derive(Debug, Clone, Copy)]
enum Form {
    Circle,
    /// A rectangle whose width/height is the given aspect.
    Rect(f32),
    Diamond,
}

/// One shape of the composition, in units of the frame (0..1), with its orbit.
#[derive(Debug, Clone)]
struct Sprite {
    form: Form,
    color: Rgb,
    /// Orbit centre, as fractions of width and height.
    cx: f32,
    cy: f32,
    /// Radius as a fraction of the frame's shorter side.
    size: f32,
    /// Orbit radii, as fractions of width and height.
    ax: f32,
    ay: f32,
    /// Orbits per second (the sign gives the direction).
    freq: f32,
    /// Where on the orbit the shape starts, in turns.
    phase: f32,
}

/// A prompt's picture: everything needed to draw it at any size and any moment.
#[derive(Debug, Clone)]
pub(crate) struct Scene {
    /// Gradient start and end colours.
    from: Rgb,
    to: Rgb,
    /// Colour of the soft glow.
    glow: Rgb,
    /// Unit direction of the gradient.
    dir: (f32, f32),
    /// Glow centre, as fractions of width and height.
    glow_at: (f32, f32),
    sprites: Vec<Sprite>,
    /// A colour that stands out from the background (the video's progress bar).
    pub accent: Rgb,
}

/// A shape placed in frame pixels, ready to rasterise.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    Circle { cx: f32, cy: f32, r: f32 },
    Rect { x0: f32, y0: f32, x1: f32, y1: f32 },
    Diamond { cx: f32, cy: f32, r: f32 },
}

impl Shape {
    /// Vertical extent `(top, bottom)`.
    fn rows(&self) -> (f32, f32) {
        match *self {
            Shape::Circle { cy, r, .. } | Shape::Diamond { cy, r, .. } => (cy - r, cy + r),
            Shape::Rect { y0, y1, .. } => (y0, y1),
        }
    }

    /// The horizontal extent `(left, right)` of the shape on the line at height `y`, if it meets it.
    fn span(&self, y: f32) -> Option<(f32, f32)> {
        match *self {
            Shape::Circle { cx, cy, r } => {
                let dy = y - cy;
                let h2 = r * r - dy * dy;
                (h2 >= 0.0).then(|| {
                    let h = h2.sqrt();
                    (cx - h, cx + h)
                })
            }
            Shape::Diamond { cx, cy, r } => {
                let h = r - (y - cy).abs();
                (h >= 0.0).then_some((cx - h, cx + h))
            }
            Shape::Rect { x0, y0, x1, y1 } => (y >= y0 && y <= y1).then_some((x0, x1)),
        }
    }
}

/// A pixel buffer to draw into: `channels` interleaved bytes per pixel, rows packed without padding.
pub(crate) struct Plane<'a> {
    pub data: &'a mut [u8],
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    /// Plane pixels per frame pixel (1 for RGB and luma, 0.5 for 4:2:0 chroma).
    pub scale: f32,
}

/// First and last plane index whose pixel centre lies within `[lo, hi]` (frame pixels), clipped to `0..len`.
fn covered(lo: f32, hi: f32, scale: f32, len: usize) -> Option<(usize, usize)> {
    let first = (lo * scale - 0.5).ceil().max(0.0);
    let last = (hi * scale - 0.5).floor().min(len as f32 - 1.0);
    (len > 0 && first <= last).then_some((first as usize, last as usize))
}

impl Plane<'_> {
    /// Paints every pixel whose centre lies inside `shape` with `color` (`channels` bytes).
    pub fn fill(&mut self, shape: &Shape, color: &[u8]) {
        if color.len() != self.channels
            || self.data.len() < self.width * self.height * self.channels
        {
            return;
        }
        let (top, bottom) = shape.rows();
        let Some((first_row, last_row)) = covered(top, bottom, self.scale, self.height) else {
            return;
        };
        for row in first_row..=last_row {
            let y = (row as f32 + 0.5) / self.scale;
            let Some((left, right)) = shape.span(y) else {
                continue;
            };
            let Some((x0, x1)) = covered(left, right, self.scale, self.width) else {
                continue;
            };
            let start = (row * self.width + x0) * self.channels;
            let end = (row * self.width + x1 + 1) * self.channels;
            let run = &mut self.data[start..end];
            if let [value] = color {
                run.fill(*value);
            } else {
                for pixel in run.chunks_exact_mut(self.channels) {
                    pixel.copy_from_slice(color);
                }
            }
        }
    }
}

impl Scene {
    /// The picture for `prompt`: the same prompt always gives the same scene.
    pub fn from_prompt(prompt: &str) -> Scene {
        let digest = Sha256::digest(prompt.as_bytes());
        let seed = digest
            .iter()
            .fold(0u64, |acc, &b| acc.rotate_left(8) ^ u64::from(b));
        let mut rng = Rng(seed);

        let hue = rng.unit();
        let from = hsv(hue, rng.range(0.55, 0.9), rng.range(0.2, 0.4));
        let to = hsv(
            hue + rng.range(0.12, 0.4),
            rng.range(0.45, 0.8),
            rng.range(0.55, 0.85),
        );
        let glow = hsv(
            hue + rng.range(0.45, 0.6),
            rng.range(0.25, 0.55),
            rng.range(0.9, 1.0),
        );
        let angle = rng.range(0.0, TAU);
        let glow_at = (rng.range(0.2, 0.8), rng.range(0.2, 0.8));
        let accent = hsv(hue + 0.5, 0.85, 1.0);

        let count = 3 + rng.below(4) as usize;
        let sprites = (0..count)
            .map(|i| {
                let form = match rng.below(3) {
                    0 => Form::Circle,
                    1 => Form::Rect(rng.range(0.5, 2.0)),
                    _ => Form::Diamond,
                };
                // Hues spread by the golden angle so shapes rarely share a colour.
                let shape_hue = hue + 0.33 + i as f32 * 0.381_966;
                let color = hsv(shape_hue, rng.range(0.55, 0.95), rng.range(0.75, 1.0));
                let direction = if rng.below(2) == 0 { 1.0 } else { -1.0 };
                Sprite {
                    form,
                    color,
                    cx: rng.range(0.2, 0.8),
                    cy: rng.range(0.2, 0.8),
                    size: rng.range(0.07, 0.22),
                    ax: rng.range(0.08, 0.25),
                    ay: rng.range(0.08, 0.25),
                    freq: direction * rng.range(0.08, 0.3),
                    phase: rng.unit(),
                }
            })
            .collect();

        Scene {
            from,
            to,
            glow,
            dir: (angle.cos(), angle.sin()),
            glow_at,
            sprites,
            accent,
        }
    }

    /// The background colour at pixel `(x, y)` of a `width`×`height` frame.
    fn background(&self, x: usize, y: usize, width: usize, height: usize) -> Rgb {
        let u = (x as f32 + 0.5) / width.max(1) as f32 - 0.5;
        let v = (y as f32 + 0.5) / height.max(1) as f32 - 0.5;
        let reach = 0.5 * (self.dir.0.abs() + self.dir.1.abs());
        let t = 0.5 + 0.5 * (u * self.dir.0 + v * self.dir.1) / reach;
        let base = mix(self.from, self.to, t);
        let (du, dv) = (u + 0.5 - self.glow_at.0, v + 0.5 - self.glow_at.1);
        let g = (1.0 - (du * du + dv * dv) / 0.16).max(0.0);
        mix(base, self.glow, 0.75 * g * g)
    }

    /// The shapes at `t` seconds, placed in a `width`×`height` frame, in drawing order.
    pub fn shapes(&self, width: u32, height: u32, t: f32) -> Vec<(Shape, Rgb)> {
        let (w, h) = (width as f32, height as f32);
        let short = w.min(h);
        self.sprites
            .iter()
            .map(|s| {
                let theta = TAU * (s.freq * t + s.phase);
                let cx = (s.cx + s.ax * theta.sin()) * w;
                let cy = (s.cy + s.ay * theta.cos()) * h;
                let r = s.size * short;
                let shape = match s.form {
                    Form::Circle => Shape::Circle { cx, cy, r },
                    Form::Diamond => Shape::Diamond { cx, cy, r },
                    Form::Rect(aspect) => {
                        let (hw, hh) = (r * aspect.sqrt(), r / aspect.sqrt());
                        Shape::Rect {
                            x0: cx - hw,
                            y0: cy - hh,
                            x1: cx + hw,
                            y1: cy + hh,
                        }
                    }
                };
                (shape, s.color)
            })
            .collect()
    }

    /// Interleaved RGB pixels of the background alone (it does not move).
    pub fn background_rgb(&self, width: u32, height: u32) -> Vec<u8> {
        let (w, h) = (width as usize, height as usize);
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                rgb.extend_from_slice(&self.background(x, y, w, h));
            }
        }
        rgb
    }

    /// Interleaved RGB pixels of the whole picture at `t` seconds.
    pub fn render_rgb(&self, width: u32, height: u32, t: f32) -> Vec<u8> {
        let mut rgb = self.background_rgb(width, height);
        self.draw_shapes_rgb(&mut rgb, width, height, t);
        rgb
    }

    /// Draws the shapes at `t` seconds over interleaved RGB pixels (usually the background).
    pub fn draw_shapes_rgb(&self, rgb: &mut [u8], width: u32, height: u32, t: f32) {
        let mut plane = Plane {
            data: rgb,
            width: width as usize,
            height: height as usize,
            channels: 3,
            scale: 1.0,
        };
        for (shape, color) in self.shapes(width, height, t) {
            plane.fill(&shape, &color);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_prompt_same_scene_and_different_prompts_differ() {
        let a = Scene::from_prompt("a red fox").render_rgb(32, 24, 0.0);
        let b = Scene::from_prompt("a red fox").render_rgb(32, 24, 0.0);
        let c = Scene::from_prompt("a blue whale").render_rgb(32, 24, 0.0);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn fill_clips_to_the_plane() {
        let mut data = vec![0u8; 4 * 4];
        let mut plane = Plane {
            data: &mut data,
            width: 4,
            height: 4,
            channels: 1,
            scale: 1.0,
        };
        plane.fill(
            &Shape::Rect {
                x0: -10.0,
                y0: 1.0,
                x1: 1.9,
                y1: 2.9,
            },
            &[9],
        );
        // Pixel centres 0.5 and 1.5 are inside on rows 1 and 2.
        assert_eq!(data, [0, 0, 0, 0, 9, 9, 0, 0, 9, 9, 0, 0, 0, 0, 0, 0]);
        let mut chroma = vec![0u8; 2 * 2];
        let mut plane = Plane {
            data: &mut chroma,
            width: 2,
            height: 2,
            channels: 1,
            scale: 0.5,
        };
        plane.fill(
            &Shape::Circle {
                cx: 1.0,
                cy: 1.0,
                r: 1.5,
            },
            &[7],
        );
        assert_eq!(chroma, [7, 0, 0, 0]);
    }
}
