//! Pictures of a warehouse: text for the terminal and SVG.
//!
//! Text, two characters per cell: `. ` highway, `_ ` empty shelf place, `G ` goal, `x ` shelf,
//! `X ` requested shelf; a robot is its letter (`A` = agent 0, lower case when it carries a
//! shelf) and its direction (`^ v < >`). A legend lists the requests and what each robot carries.

use std::fmt::Write;

use super::world::{Direction, Warehouse};

const ARROWS: [char; 4] = ['^', 'v', '<', '>'];

fn letter(i: usize, carrying: bool) -> char {
    let base = if carrying { b'a' } else { b'A' };
    (base + (i % 26) as u8) as char
}

/// The terminal view.
pub fn ascii(w: &Warehouse) -> String {
    let l = &w.layout;
    let mut s = format!(
        "step {}  deliveries {}  requested shelves {:?}\n",
        w.steps,
        w.deliveries,
        w.request_queue.iter().map(|k| k + 1).collect::<Vec<_>>()
    );
    for y in 0..l.height {
        for x in 0..l.width {
            if let Some(i) = w.robot_at(x, y) {
                let r = &w.robots[i];
                s.push(letter(i, r.carrying.is_some()));
                s.push(ARROWS[r.dir as usize]);
                continue;
            }
            let ch = match w.shelf_at(x, y) {
                Some(k) if w.is_requested(k) => 'X',
                Some(_) => 'x',
                None if l.goals.contains(&(x, y)) => 'G',
                None if l.is_highway(x, y) => '.',
                None => '_',
            };
            s.push(ch);
            s.push(' ');
        }
        s.push('\n');
    }
    let legend: Vec<String> = w
        .robots
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.carrying.map(|k| {
                let req = if w.is_requested(k) {
                    " (requested)"
                } else {
                    ""
                };
                format!("{} carries shelf {}{req}", letter(i, true), k + 1)
            })
        })
        .collect();
    if !legend.is_empty() {
        s.push_str(&legend.join(", "));
        s.push('\n');
    }
    s
}

const CELL: usize = 32;
// No red: red marks requested shelves.
const PALETTE: [&str; 7] = [
    "#1f77b4", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#2ca02c",
];

/// The SVG picture: highways light, shelf places grey, goals dark; shelves as squares (requested
/// ones red); robots as coloured circles with a pointer in their direction.
pub fn svg(w: &Warehouse, title: &str) -> String {
    let l = &w.layout;
    let (width, height) = (l.width * CELL, l.height * CELL + 24);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n\
         <rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n\
         <text x=\"4\" y=\"17\" font-size=\"14\">{}</text>\n",
        escape(title)
    );
    for y in 0..l.height {
        for x in 0..l.width {
            let fill = if l.goals.contains(&(x, y)) {
                "#3c3c3c"
            } else if l.is_highway(x, y) {
                "#f4f4f4"
            } else {
                "#dcdcdc"
            };
            let (px, py) = (x * CELL, 24 + y * CELL);
            let _ = writeln!(
                s,
                "<rect x=\"{px}\" y=\"{py}\" width=\"{CELL}\" height=\"{CELL}\" fill=\"{fill}\" stroke=\"white\"/>"
            );
        }
    }
    for (k, &(x, y)) in w.shelves.iter().enumerate() {
        let fill = if w.is_requested(k) {
            "#e0523f"
        } else {
            "#4a7fb0"
        };
        let (px, py) = (x * CELL + 4, 24 + y * CELL + 4);
        let _ = writeln!(
            s,
            "<rect x=\"{px}\" y=\"{py}\" width=\"{}\" height=\"{}\" rx=\"3\" fill=\"{fill}\"/>",
            CELL - 8,
            CELL - 8
        );
    }
    for (i, r) in w.robots.iter().enumerate() {
        let (cx, cy) = (r.x * CELL + CELL / 2, 24 + r.y * CELL + CELL / 2);
        let col = PALETTE[i % PALETTE.len()];
        let rad = CELL / 2 - 7;
        let (dx, dy): (i64, i64) = match r.dir {
            Direction::Up => (0, -1),
            Direction::Down => (0, 1),
            Direction::Left => (-1, 0),
            Direction::Right => (1, 0),
        };
        let reach = (CELL / 2 - 2) as i64;
        let (tx, ty) = (cx as i64 + dx * reach, cy as i64 + dy * reach);
        let _ = writeln!(
            s,
            "<line x1=\"{cx}\" y1=\"{cy}\" x2=\"{tx}\" y2=\"{ty}\" stroke=\"black\" stroke-width=\"3\"/>\
             <circle cx=\"{cx}\" cy=\"{cy}\" r=\"{rad}\" fill=\"{col}\" stroke=\"black\"/>\
             <text x=\"{cx}\" y=\"{}\" font-size=\"11\" fill=\"white\" text-anchor=\"middle\">{i}</text>",
            cy + 4
        );
    }
    s += "</svg>\n";
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
