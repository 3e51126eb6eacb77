//! The warehouse floor: its size, highways, goals and shelf places, built as rware 2.0.0's
//! `_make_layout_from_params` or `_make_layout_from_str` does.
//!
//! Coordinates are rware's: `x` is the column, `y` the row (0 at the top), and a cell's index is
//! `y * width + x`. From parameters, the floor is `(column_height + 1) * shelf_rows + 2` rows by
//! `3 * shelf_columns + 1` columns. Highways are every third column, every
//! `(column_height + 1)`-th row, the bottom (delivery) row and the two middle columns of the lower
//! `column_height + 2` rows (the queue to the goals); every other cell holds a shelf at reset. The
//! goals are the two middle cells of the bottom row, left one first.

/// A warehouse floor.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Rows (rware's `grid_size[0]`).
    pub height: usize,
    /// Columns (rware's `grid_size[1]`).
    pub width: usize,
    /// Whether each cell (`y * width + x`) is a highway, where shelves cannot be put down.
    pub highway: Vec<bool>,
    /// Goal cells `(x, y)`, in rware's order (the order deliveries are checked in).
    pub goals: Vec<(usize, usize)>,
    /// Where each shelf stands at reset, `(x, y)`: shelf `k` has rware's id `k + 1`; every
    /// non-highway cell in row-major order.
    pub shelf_home: Vec<(usize, usize)>,
}

impl Layout {
    /// rware's layout from `shelf_columns` (odd), `shelf_rows` and `column_height`.
    pub fn from_params(
        shelf_columns: usize,
        shelf_rows: usize,
        column_height: usize,
    ) -> Result<Self, String> {
        if shelf_columns.is_multiple_of(2) {
            // rware asserts this too: the middle highway pair needs an odd count.
            return Err(format!(
                "`shelf_columns` must be odd (rware supports only odd numbers), got {shelf_columns}"
            ));
        }
        if shelf_rows == 0 || column_height == 0 {
            return Err(format!(
                "`shelf_rows` and `column_height` must be at least 1, got {shelf_rows} and {column_height}"
            ));
        }
        let height = (column_height + 1) * shelf_rows + 2;
        let width = 3 * shelf_columns + 1;
        let (mid_left, mid_right) = (width / 2 - 1, width / 2);
        let mut highway = vec![false; height * width];
        for y in 0..height {
            for x in 0..width {
                let vertical = x % 3 == 0;
                let horizontal = y % (column_height + 1) == 0;
                let delivery_row = y == height - 1;
                let queue = y + column_height + 3 > height && (x == mid_left || x == mid_right);
                highway[y * width + x] = vertical || horizontal || delivery_row || queue;
            }
        }
        let goals = vec![(mid_left, height - 1), (mid_right, height - 1)];
        Ok(Self::finish(height, width, highway, goals))
    }

    /// rware's layout from a string: `x` a shelf place, `.` a corridor (highway), `g` a goal
    /// (a highway too), case-insensitive, one line per row; surrounding whitespace and spaces
    /// are ignored.
    pub fn from_text(layout: &str) -> Result<Self, String> {
        let cleaned = layout.trim().replace(' ', "");
        let lines: Vec<&str> = cleaned.split('\n').collect();
        let width = lines[0].chars().count();
        if lines.iter().any(|l| l.chars().count() != width) || width == 0 {
            return Err("`layout` must be rectangular (every line as long as the first)".into());
        }
        let height = lines.len();
        let mut highway = vec![false; height * width];
        let mut goals = Vec::new();
        for (y, line) in lines.iter().enumerate() {
            for (x, ch) in line.chars().enumerate() {
                match ch.to_ascii_lowercase() {
                    'g' => {
                        goals.push((x, y));
                        highway[y * width + x] = true;
                    }
                    '.' => highway[y * width + x] = true,
                    'x' => {}
                    other => {
                        return Err(format!(
                            "`layout` holds {other:?} at row {y}, column {x}; valid: `x` (shelf), `.` (corridor), `g` (goal)"
                        ))
                    }
                }
            }
        }
        if goals.is_empty() {
            return Err("`layout` needs at least one goal `g`".into());
        }
        Ok(Self::finish(height, width, highway, goals))
    }

    fn finish(height: usize, width: usize, highway: Vec<bool>, goals: Vec<(usize, usize)>) -> Self {
        let shelf_home = (0..height * width)
            .filter(|&c| !highway[c])
            .map(|c| (c % width, c / width))
            .collect();
        Self {
            height,
            width,
            highway,
            goals,
            shelf_home,
        }
    }

    /// Number of cells.
    pub fn cells(&self) -> usize {
        self.height * self.width
    }

    /// The index of cell `(x, y)`.
    #[inline]
    pub fn cell(&self, x: usize, y: usize) -> usize {
        y * self.width + x
    }

    /// Whether `(x, y)` is a highway.
    #[inline]
    pub fn is_highway(&self, x: usize, y: usize) -> bool {
        self.highway[self.cell(x, y)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_has_rwares_size_goals_and_32_shelves() {
        let l = Layout::from_params(3, 1, 8).expect("tiny");
        assert_eq!((l.height, l.width), (11, 10));
        assert_eq!(l.goals, vec![(4, 10), (5, 10)]);
        assert_eq!(l.shelf_home.len(), 32);
        assert_eq!(l.shelf_home[0], (1, 1));
        // The queue columns 4 and 5 are highways all the way up in tiny.
        assert!(l.is_highway(4, 1) && l.is_highway(5, 8));
        assert!(!l.is_highway(7, 8) && l.is_highway(9, 8));
    }

    #[test]
    fn sizes_match_rwares_registered_tasks() {
        for (cols, rows, h, w, shelves) in
            [(3, 2, 20, 10, 80), (5, 2, 20, 16, 144), (5, 3, 29, 16, 224)]
        {
            let l = Layout::from_params(cols, rows, 8).expect("layout");
            assert_eq!((l.height, l.width, l.shelf_home.len()), (h, w, shelves));
        }
    }

    #[test]
    fn even_shelf_columns_are_refused() {
        let err = Layout::from_params(4, 1, 8).unwrap_err();
        assert!(err.contains("odd"), "{err}");
    }

    #[test]
    fn string_layouts_read_goals_in_row_major_order() {
        let l = Layout::from_text("\n  x.x\n  g.G\n").expect("layout");
        assert_eq!((l.height, l.width), (2, 3));
        assert_eq!(l.goals, vec![(0, 1), (2, 1)]);
        assert_eq!(l.shelf_home, vec![(0, 0), (2, 0)]);
        assert!(Layout::from_text("x.\nx").is_err());
        assert!(Layout::from_text("x.\nxx").unwrap_err().contains("goal"));
        assert!(Layout::from_text("xo\ng.").unwrap_err().contains("'o'"));
    }
}
