//! Pictures of a grid state as SVG: a checkerboard field, foods as green squares with their
//! level, agents as coloured circles with their level (team colours for the team variant).

use super::world::Grid;

const CELL: usize = 40;
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
];

/// Draws `grid`; `colour(j)` picks agent `j`'s palette index.
pub fn grid_svg(grid: &Grid, title: &str, colour: &dyn Fn(usize) -> usize) -> String {
    let (w, h) = (grid.cols * CELL, grid.rows * CELL + 24);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"DejaVu Sans, Arial, sans-serif\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n\
         <text x=\"4\" y=\"17\" font-size=\"14\">{}</text>\n",
        escape(title)
    );
    for r in 0..grid.rows {
        for c in 0..grid.cols {
            let fill = if (r + c) % 2 == 0 {
                "#f4f4f4"
            } else {
                "#e8e8e8"
            };
            let (x, y) = (c * CELL, 24 + r * CELL);
            s += &format!(
                "<rect x=\"{x}\" y=\"{y}\" width=\"{CELL}\" height=\"{CELL}\" fill=\"{fill}\"/>\n"
            );
            let f = grid.food(r, c);
            if f > 0 {
                s += &format!(
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"4\" fill=\"#2ca02c\"/>\
                     <text x=\"{}\" y=\"{}\" font-size=\"16\" fill=\"white\" text-anchor=\"middle\">{f}</text>\n",
                    x + 6, y + 6, CELL - 12, CELL - 12, x + CELL / 2, y + CELL / 2 + 6
                );
            }
        }
    }
    for j in 0..grid.n_agents() {
        let (r, c) = grid.pos[j];
        // Overlapping agents are drawn side by side.
        let twins = (0..j).filter(|&k| grid.pos[k] == (r, c)).count();
        let (cx, cy) = (c * CELL + CELL / 2 + 8 * twins, 24 + r * CELL + CELL / 2);
        let col = PALETTE[colour(j) % PALETTE.len()];
        s += &format!(
            "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"{}\" fill=\"{col}\" stroke=\"black\"/>\
             <text x=\"{cx}\" y=\"{}\" font-size=\"14\" fill=\"white\" text-anchor=\"middle\">{}</text>\n",
            CELL / 2 - 5, cy + 5, grid.level[j]
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
