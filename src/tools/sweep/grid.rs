//! The grid of a sweep: axes of config values and a list of seeds, from the command line
//! (`--set ppo.learning_rate=1e-3,3e-4`, `--seeds 0..5`) or the config's `[sweep]` table, and
//! their expansion into points in a fixed order.
//!
//! Order: the `[sweep.grid]` axes (sorted by key, as TOML tables are), then the command-line
//! axes in the order given (one given in both replaces the file's in place); the first axis
//! varies slowest and the seed fastest, so one config's seeds are neighbours in the manifest.
//! A `--set` with a single value is an override for every point, not an axis.
//!
//! ```toml
//! [sweep]
//! seeds = "0..3"                           # or [0, 1, 2]
//! [sweep.grid]
//! "ppo.learning_rate" = [1e-3, 3e-4]       # or [sweep.grid.ppo] learning_rate = [...]
//! "algo.centralized_training" = [true, false]
//! ```

use anyhow::{bail, Context, Result};

/// One axis: a dotted config key and the values it takes (TOML text, as written).
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Dotted key (`ppo.learning_rate`).
    pub key: String,
    /// Values in TOML syntax (`1e-3`, `"joint"`, `[64, 64]`).
    pub values: Vec<String>,
}

/// Axes, fixed overrides and seeds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grid {
    /// `key=value` overrides applied to every point.
    pub fixed: Vec<String>,
    /// The axes, slowest first.
    pub axes: Vec<Axis>,
    /// Seeds (None: the config's own seed).
    pub seeds: Option<Vec<u64>>,
}

/// One point of the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// `(key, value)` per axis, in axis order.
    pub values: Vec<(String, String)>,
    /// The seed (None: the config's own).
    pub seed: Option<u64>,
}

impl Point {
    /// The point's config label: its axis values, `key=value` separated by spaces (commas
    /// inside values become spaces: labels go into CSV files and marl-eval's algorithm
    /// names, which must not hold commas); `default` for a grid without axes.
    pub fn label(&self) -> String {
        if self.values.is_empty() {
            return "default".into();
        }
        self.values
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace(", ", " ").replace(',', " ")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Grid {
    /// From the command line: `--set KEY=V1,V2,...` (commas inside brackets, braces and
    /// quotes do not split) and `--seeds`.
    pub fn from_args(sets: &[String], seeds: Option<&str>) -> Result<Self> {
        let mut grid = Grid::default();
        for pair in sets {
            let Some((key, value)) = pair.split_once('=') else {
                bail!("--set `{pair}`: expected KEY=VALUE or KEY=V1,V2,...");
            };
            let key = key.trim();
            if key.is_empty() {
                bail!("--set `{pair}`: empty key");
            }
            let values = split_values(value)
                .with_context(|| format!("--set `{pair}`: cannot split the values"))?;
            if values.len() == 1 {
                grid.fixed.push(format!("{key}={}", values[0]));
            } else {
                grid.put_axis(Axis {
                    key: key.to_string(),
                    values,
                });
            }
        }
        if let Some(s) = seeds {
            grid.seeds = Some(parse_seeds(s).with_context(|| format!("--seeds `{s}`"))?);
        }
        Ok(grid)
    }

    /// From a config's `[sweep]` table (`seeds`, `grid`); `file` names it in errors.
    pub fn from_table(table: &toml::Table, file: &str) -> Result<Self> {
        let mut grid = Grid::default();
        for (key, value) in table {
            match key.as_str() {
                "seeds" => {
                    let seeds = match value {
                        toml::Value::String(s) => parse_seeds(s),
                        toml::Value::Array(a) => a
                            .iter()
                            .map(|v| {
                                v.as_integer()
                                    .and_then(|i| u64::try_from(i).ok())
                                    .context("expected non-negative integers")
                            })
                            .collect(),
                        toml::Value::Integer(_) => {
                            bail!("{file}: sweep.seeds = {value}: give a range (\"0..5\") or a list ([0, 1, 2])")
                        }
                        _ => bail!("{file}: sweep.seeds: expected a range (\"0..5\") or a list"),
                    };
                    grid.seeds = Some(seeds.with_context(|| format!("{file}: sweep.seeds"))?);
                }
                "grid" => {
                    let Some(t) = value.as_table() else {
                        bail!("{file}: sweep.grid must be a table of KEY = [values]");
                    };
                    flatten(t, "", &mut grid, file)?;
                }
                other => bail!(
                    "{file}: unknown key `sweep.{other}` (the [sweep] table takes `seeds` and `grid`)"
                ),
            }
        }
        Ok(grid)
    }

    /// `other` on top of `self`: its fixed overrides after ours, its axes replacing ours of
    /// the same key in place or appended, its seeds instead of ours when given.
    pub fn with(mut self, other: Grid) -> Self {
        self.fixed.extend(other.fixed);
        for axis in other.axes {
            self.put_axis(axis);
        }
        if other.seeds.is_some() {
            self.seeds = other.seeds;
        }
        self
    }

    fn put_axis(&mut self, axis: Axis) {
        match self.axes.iter_mut().find(|a| a.key == axis.key) {
            Some(a) => *a = axis,
            None => self.axes.push(axis),
        }
    }

    /// Every point, first axis slowest, seed fastest.
    pub fn expand(&self) -> Vec<Point> {
        let mut points = vec![Vec::new()];
        for axis in &self.axes {
            let mut next = Vec::with_capacity(points.len() * axis.values.len());
            for p in &points {
                for v in &axis.values {
                    let mut q: Vec<(String, String)> = p.clone();
                    q.push((axis.key.clone(), v.clone()));
                    next.push(q);
                }
            }
            points = next;
        }
        let seeds: Vec<Option<u64>> = match &self.seeds {
            Some(s) => s.iter().map(|&x| Some(x)).collect(),
            None => vec![None],
        };
        points
            .into_iter()
            .flat_map(|values| {
                seeds.iter().map(move |&seed| Point {
                    values: values.clone(),
                    seed,
                })
            })
            .collect()
    }
}

/// Turns `[sweep.grid]` (nested tables allowed) into axes with dotted keys.
fn flatten(table: &toml::Table, prefix: &str, grid: &mut Grid, file: &str) -> Result<()> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(t, &key, grid, file)?,
            toml::Value::Array(values) if !values.is_empty() => grid.put_axis(Axis {
                key,
                values: values.iter().map(|x| x.to_string()).collect(),
            }),
            _ => bail!(
                "{file}: sweep.grid.{key} = {v}: expected a non-empty list of values, e.g. [1e-3, 3e-4]"
            ),
        }
    }
    Ok(())
}

/// Splits `a,b,c` at the commas outside brackets, braces and quotes; values are trimmed and
/// none may be empty.
pub fn split_values(text: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut cur) = (0i32, None::<char>, String::new());
    let mut escaped = false;
    for c in text.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                cur.push(c);
            }
            None => match c {
                '"' | '\'' => {
                    quote = Some(c);
                    cur.push(c);
                }
                '[' | '{' => {
                    depth += 1;
                    cur.push(c);
                }
                ']' | '}' => {
                    depth -= 1;
                    cur.push(c);
                }
                ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            },
        }
    }
    if quote.is_some() || depth != 0 {
        bail!("unbalanced quotes or brackets in `{text}`");
    }
    out.push(cur);
    let out: Vec<String> = out.into_iter().map(|s| s.trim().to_string()).collect();
    if out.iter().any(String::is_empty) {
        bail!("an empty value in `{text}`");
    }
    Ok(out)
}

/// Seeds: `A..B` (B excluded, as in Rust), `A..=B`, or a list `0,3,7`. A bare `N` is refused:
/// it would read as N seeds to some and as seed N to others.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>> {
    let t = text.trim();
    let num = |s: &str| -> Result<u64> {
        s.trim()
            .parse::<u64>()
            .with_context(|| format!("`{}` is not a non-negative integer", s.trim()))
    };
    let seeds: Vec<u64> = if let Some((a, b)) = t.split_once("..=") {
        (num(a)?..=num(b)?).collect()
    } else if let Some((a, b)) = t.split_once("..") {
        (num(a)?..num(b)?).collect()
    } else if t.contains(',') {
        t.split(',').map(num).collect::<Result<_>>()?
    } else {
        num(t)?;
        bail!("give a range or a list: `0..{t}` for {t} seeds, `{t}..={t}` for seed {t} alone");
    };
    if seeds.is_empty() {
        bail!("no seeds in `{t}`");
    }
    let mut sorted = seeds.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != seeds.len() {
        bail!("a seed appears twice in `{t}`");
    }
    Ok(seeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_at_top_level_commas_only() {
        assert_eq!(split_values("1e-3, 3e-4").expect("split"), ["1e-3", "3e-4"]);
        assert_eq!(
            split_values("[64,64],[128, 128]").expect("split"),
            ["[64,64]", "[128, 128]"]
        );
        assert_eq!(
            split_values(r#""a,b","c""#).expect("split"),
            [r#""a,b""#, r#""c""#]
        );
        assert!(split_values("[1,2").is_err());
        assert!(split_values("1,,2").is_err());
    }

    #[test]
    fn seeds_take_ranges_and_lists_but_not_a_bare_count() {
        assert_eq!(parse_seeds("0..3").expect("range"), [0, 1, 2]);
        assert_eq!(parse_seeds("2..=4").expect("range"), [2, 3, 4]);
        assert_eq!(parse_seeds("7,1").expect("list"), [7, 1]);
        let err = parse_seeds("5").expect_err("bare").to_string();
        assert!(err.contains("0..5") && err.contains("5..=5"), "{err}");
        assert!(parse_seeds("3..3").is_err());
        assert!(parse_seeds("1,1").is_err());
    }

    #[test]
    fn expansion_is_first_axis_slowest_seed_fastest() {
        let g = Grid::from_args(
            &[
                "ppo.learning_rate=1e-3,3e-4".into(),
                "total_timesteps=400".into(),
                "algo.centralized_training=true,false".into(),
            ],
            Some("0..2"),
        )
        .expect("grid");
        assert_eq!(g.fixed, ["total_timesteps=400"]);
        let points = g.expand();
        assert_eq!(points.len(), 8);
        let labels: Vec<(String, Option<u64>)> =
            points.iter().map(|p| (p.label(), p.seed)).collect();
        assert_eq!(
            labels[..3],
            [
                (
                    "ppo.learning_rate=1e-3 algo.centralized_training=true".into(),
                    Some(0)
                ),
                (
                    "ppo.learning_rate=1e-3 algo.centralized_training=true".into(),
                    Some(1)
                ),
                (
                    "ppo.learning_rate=1e-3 algo.centralized_training=false".into(),
                    Some(0)
                ),
            ]
        );
        assert_eq!(points[7].values[0].1, "3e-4");
    }

    #[test]
    fn the_sweep_table_gives_axes_and_seeds_and_the_command_line_wins() {
        let table: toml::Table = toml::from_str(
            r#"
            seeds = [1, 2]
            [grid]
            "ppo.learning_rate" = [1e-3, 3e-4]
            [grid.network]
            hidden = [[64, 64], [128]]
            "#,
        )
        .expect("toml");
        let g = Grid::from_table(&table, "x.toml").expect("table");
        assert_eq!(g.seeds, Some(vec![1, 2]));
        let keys: Vec<&str> = g.axes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["network.hidden", "ppo.learning_rate"]);
        assert_eq!(g.axes[0].values, ["[64, 64]", "[128]"]);
        let cli =
            Grid::from_args(&["ppo.learning_rate=1e-2,1e-1".into()], Some("0..1")).expect("cli");
        let g = g.with(cli);
        assert_eq!(g.axes[1].values, ["1e-2", "1e-1"]);
        assert_eq!(g.seeds, Some(vec![0]));
        let bad: toml::Table = toml::from_str("sedes = [1]").expect("toml");
        let err = Grid::from_table(&bad, "x.toml")
            .expect_err("unknown key")
            .to_string();
        assert!(
            err.contains("sweep.sedes") && err.contains("x.toml"),
            "{err}"
        );
    }
}
