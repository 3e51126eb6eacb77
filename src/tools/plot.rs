//! Learning curves: per method, the mean over seeds of a metric logged in metrics.csv against
//! environment steps, with a shaded 95% bootstrap interval of that mean, drawn with plotters as
//! SVG and rasterized to PNG, next to a CSV of exactly what is drawn.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plotters::prelude::*;

use crate::config::EvalMode;
use crate::run::dir::Metrics;
use crate::run::metrics::EVAL_RETURN;
use crate::run::RunDir;
use crate::tools::stats;
use crate::train::evaluation::{is_eval_column, EvalPolicy};

/// One method's runs: each a curve of `(environment step, value)`.
#[derive(Debug, Clone)]
pub struct Curve {
    /// Legend label.
    pub label: String,
    /// One curve per run (seed).
    pub runs: Vec<Vec<(f64, f64)>>,
    /// How the curve is drawn.
    pub style: LineStyle,
}

/// How a curve is drawn: its colour (an index into the palette; None: the curve's position in
/// the figure) and whether its line is dashed. A figure of several tasks and two methods gives
/// each task a colour and each method a line, so that no two curves look alike.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineStyle {
    /// Palette index (wraps around the palette).
    pub color: Option<usize>,
    /// A dashed line instead of a solid one.
    pub dashed: bool,
}

/// The aggregate of a curve at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct BandPoint {
    /// Environment step.
    pub x: f64,
    /// Mean over the runs that logged this step.
    pub mean: f64,
    /// 95% bootstrap interval of the mean.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// Runs that logged this step.
    pub n: usize,
}

/// Mean and interval at every step any run logged.
pub fn aggregate(runs: &[Vec<(f64, f64)>]) -> Vec<BandPoint> {
    let mut xs: Vec<f64> = runs.iter().flatten().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs.into_iter()
        .map(|x| {
            let ys: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.iter().find(|p| p.0 == x).map(|p| p.1))
                .collect();
            let (lo, hi) = stats::bootstrap_ci(&ys, stats::mean, 2000, x.to_bits());
            BandPoint {
                x,
                mean: stats::mean(&ys),
                lo,
                hi,
                n: ys.len(),
            }
        })
        .collect()
}

/// Reads `(global_step, column)` from a run's metrics.csv, skipping rows where it is empty.
pub fn read_curve(run_dir: &Path, column: &str) -> Result<Vec<(f64, f64)>> {
    let run = RunDir::new(run_dir);
    let path = run.metrics_csv_path();
    let Metrics { header, rows } = run.read_metrics()?;
    let find = |name: &str| header.iter().position(|c| c == name);
    let Some(xc) = find("global_step") else {
        bail!("{}: no `global_step` column", path.display());
    };
    let Some(yc) = find(column) else {
        bail!(
            "{}: no column `{column}` (columns: {})",
            path.display(),
            header.join(", ")
        );
    };
    Ok(rows
        .iter()
        .filter_map(|r| {
            let x = r.get(xc)?.parse::<f64>().ok()?;
            let y = r.get(yc)?.parse::<f64>().ok()?;
            Some((x, y))
        })
        .collect())
}

/// Okabe-Ito: distinguishable with every common colour-vision deficiency, and in greyscale.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

/// Steps as a reader wants them on an axis: 500k, 1.5M.
fn steps_label(x: f64) -> String {
    let a = x.abs();
    let (v, unit) = if a >= 1e6 {
        (x / 1e6, "M")
    } else if a >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{unit}")
}

/// The figure as an SVG document.
pub fn svg(
    title: &str,
    y_label: &str,
    curves: &[(String, LineStyle, Vec<BandPoint>)],
) -> Result<String> {
    let pts = curves.iter().flat_map(|c| c.2.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in pts {
        x0 = x0.min(p.x);
        x1 = x1.max(p.x);
        for y in [p.lo, p.hi, p.mean] {
            if y.is_finite() {
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
    }
    if x0 > x1 || y0 > y1 {
        bail!("nothing to plot: no logged values");
    }
    x0 = x0.min(0.0);
    let pad = ((y1 - y0) * 0.08).max(1e-3);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (800, 520)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1.max(x0 + 1.0), y0..y1)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(215, 215, 215))
            .x_desc("environment steps")
            .y_desc(y_label)
            .axis_desc_style(("sans-serif", 20))
            .label_style(("sans-serif", 16))
            .x_label_formatter(&|x| steps_label(*x))
            .x_labels(8)
            .y_labels(8)
            .draw()?;
        for (i, (label, style, band)) in curves.iter().enumerate() {
            let c = PALETTE[style.color.unwrap_or(i) % PALETTE.len()];
            let mut outline: Vec<(f64, f64)> = band.iter().map(|p| (p.x, p.hi)).collect();
            outline.extend(band.iter().rev().map(|p| (p.x, p.lo)));
            chart.draw_series(std::iter::once(Polygon::new(outline, c.mix(0.18).filled())))?;
            let mean = band.iter().map(|p| (p.x, p.mean));
            let drawn = if style.dashed {
                chart.draw_series(DashedLineSeries::new(mean, 10, 6, c.stroke_width(3)))?
            } else {
                chart.draw_series(LineSeries::new(mean, c.stroke_width(3)))?
            };
            let dashed = style.dashed;
            drawn.label(label.as_str()).legend(move |(x, y)| {
                let (ends, line) = (vec![(x, y), (x + 24, y)], c.stroke_width(3));
                if dashed {
                    plotters::element::DashedPathElement::new(ends, 8, 4, line).into_dyn()
                } else {
                    PathElement::new(ends, line).into_dyn()
                }
            });
            if band.len() == 1 {
                chart.draw_series(
                    band.iter()
                        .map(|p| Circle::new((p.x, p.mean), 4, c.filled())),
                )?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(180, 180, 180))
            .label_font(("sans-serif", 18))
            .draw()?;
        root.present()?;
    }
    Ok(out)
}

/// Writes `<stem>.svg`, `<stem>.png` and `<stem>.csv` in `dir`; returns the paths.
pub fn write_figure(
    dir: &Path,
    stem: &str,
    title: &str,
    y_label: &str,
    curves: &[Curve],
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let bands: Vec<(String, LineStyle, Vec<BandPoint>)> = curves
        .iter()
        .map(|c| (c.label.clone(), c.style, aggregate(&c.runs)))
        .collect();
    let doc = svg(title, y_label, &bands)?;
    let (svg_path, png_path, csv_path) = (
        dir.join(format!("{stem}.svg")),
        dir.join(format!("{stem}.png")),
        dir.join(format!("{stem}.csv")),
    );
    crate::tools::picture::write_svg(&doc, &svg_path)?;
    crate::tools::picture::write_png(&doc, 2.0, &png_path)?;
    let mut csv = String::from("method,global_step,mean,ci95_low,ci95_high,runs\n");
    for (label, _, band) in &bands {
        for p in band {
            writeln!(csv, "{label},{},{},{},{},{}", p.x, p.mean, p.lo, p.hi, p.n)?;
        }
    }
    crate::run::fsio::write_atomic(&csv_path, csv.as_bytes())?;
    Ok(vec![svg_path, png_path, csv_path])
}

/// The method a run directory belongs to: the parent's name for `marl compare`'s
/// `<method>/s<seed>` layout, else the directory name without its `__s<seed>__<time>` tail.
pub fn method_label(run_dir: &Path) -> String {
    let name = |p: &Path| {
        p.file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("run")
            .to_string()
    };
    let dir = name(run_dir);
    let is_seed =
        |s: &str| s.len() > 1 && s.starts_with('s') && s[1..].bytes().all(|b| b.is_ascii_digit());
    if is_seed(&dir) {
        if let Some(parent) = run_dir.parent().filter(|p| p.file_name().is_some()) {
            return name(parent);
        }
    }
    let parts: Vec<&str> = dir.split("__").collect();
    match parts.iter().position(|p| is_seed(p)) {
        Some(k) if k > 0 => parts[..k].join("__"),
        _ => dir,
    }
}

/// `marl plot`: the runs grouped by method (see [`method_label`]), one curve each, of
/// `column` from their metrics.csv; writes `<stem>.svg/.png/.csv` in `out`. For an evaluation
/// column (`eval/return`, `<group>/eval_return`), `eval_mode` picks the greedy or stochastic
/// evaluation's figures, or both (two curves per method); by default, what every run logged.
pub fn plot_runs(
    run_dirs: &[PathBuf],
    column: &str,
    eval_mode: Option<EvalMode>,
    out: &Path,
    stem: &str,
) -> Result<Vec<PathBuf>> {
    if run_dirs.is_empty() {
        bail!("no run directories given");
    }
    let mut modes = Vec::new();
    let mut env = String::new();
    for dir in run_dirs {
        let run = RunDir::new(dir);
        if !run.has_metrics() {
            bail!(
                "{}: not a run directory (no {})",
                dir.display(),
                run.metrics_csv_path().display()
            );
        }
        // Runs from before eval_mode existed evaluated greedy.
        let raw = run.read_config().ok();
        if env.is_empty() {
            env = raw.as_ref().map(|r| r.env.id.clone()).unwrap_or_default();
        }
        let mode = raw.map_or(EvalMode::Greedy, |r| r.logging.eval_mode);
        modes.push((run.config_path().display().to_string(), mode));
    }
    let (column, policies) = eval_policies(column, eval_mode, &modes)?;
    let mut curves: Vec<Curve> = Vec::new();
    for dir in run_dirs {
        let method = method_label(dir);
        for &policy in &policies {
            let col = policy.map_or(column.clone(), |p| p.column(&column));
            let points = read_curve(dir, &col)?;
            if points.is_empty() {
                bail!("{}: no value logged in column `{col}`", dir.display());
            }
            let label = match policy {
                Some(p) if policies.len() > 1 => format!("{method}, {}", p.name()),
                _ => method.clone(),
            };
            match curves.iter_mut().find(|c| c.label == label) {
                Some(c) => c.runs.push(points),
                None => curves.push(Curve {
                    label,
                    runs: vec![points],
                    style: LineStyle::default(),
                }),
            }
        }
    }
    for c in &mut curves {
        let n = c.runs.len();
        c.label = format!("{} ({n} run{})", c.label, if n == 1 { "" } else { "s" });
    }
    let policies: Vec<EvalPolicy> = policies.into_iter().flatten().collect();
    write_figure(out, stem, &env, &y_label(&column, &policies), &curves)
}

/// The greedy column's name and the policies to draw of `column`, for runs whose configs
/// (path, `logging.eval_mode`) are `modes`: `[None]` for a column that is no evaluation's.
fn eval_policies(
    column: &str,
    eval_mode: Option<EvalMode>,
    modes: &[(String, EvalMode)],
) -> Result<(String, Vec<Option<EvalPolicy>>)> {
    if !is_eval_column(column) {
        if eval_mode.is_some() {
            bail!(
                "--eval-mode applies to evaluation columns (eval/return, eval/team_return, \
                 <group>/eval_return); `{column}` is not one"
            );
        }
        return Ok((column.to_string(), vec![None]));
    }
    // `--metric eval/return_stochastic` names the policy itself.
    if let Some(greedy_column) = column.strip_suffix("_stochastic") {
        if eval_mode.is_some_and(|m| m != EvalMode::Stochastic) {
            bail!("--metric {column} is the stochastic evaluation's; drop --eval-mode or use --eval-mode stochastic");
        }
        for (what, mode) in modes {
            EvalPolicy::Stochastic.check_logged(*mode, what)?;
        }
        return Ok((
            greedy_column.to_string(),
            vec![Some(EvalPolicy::Stochastic)],
        ));
    }
    let wanted: Vec<EvalPolicy> = match eval_mode {
        Some(m) => EvalPolicy::of_mode(m).to_vec(),
        // What every run logged.
        None => EvalPolicy::of_mode(EvalMode::Both)
            .iter()
            .copied()
            .filter(|p| {
                modes
                    .iter()
                    .all(|(_, m)| EvalPolicy::of_mode(*m).contains(p))
            })
            .collect(),
    };
    if wanted.is_empty() {
        bail!("the runs share no evaluation policy (some evaluated greedy only, some stochastic only); plot them apart");
    }
    for p in &wanted {
        for (what, mode) in modes {
            p.check_logged(*mode, what)?;
        }
    }
    Ok((column.to_string(), wanted.into_iter().map(Some).collect()))
}

/// The y axis label of `column` (its greedy name) drawn for `policies` (none: not an
/// evaluation column): says which evaluation it shows.
fn y_label(column: &str, policies: &[EvalPolicy]) -> String {
    let which = match policies {
        [] => String::new(),
        [p] => p.name().to_string(),
        _ => "greedy and stochastic".to_string(),
    };
    if let Some(group) = column.strip_suffix("/eval_return") {
        return format!("{which} return per agent ({group})");
    }
    match column {
        EVAL_RETURN => format!("{which} return per agent"),
        "eval/team_return" => format!("{which} team return"),
        "charts/episodic_return" => "training return per agent".to_string(),
        other if policies.is_empty() => other.to_string(),
        other => format!("{other} ({which})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_takes_each_step_over_the_runs_that_logged_it() {
        let runs = vec![vec![(1.0, 1.0), (2.0, 3.0)], vec![(1.0, 3.0)]];
        let a = aggregate(&runs);
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].x, a[0].mean, a[0].n), (1.0, 2.0, 2));
        assert_eq!((a[1].x, a[1].mean, a[1].n), (2.0, 3.0, 1));
        assert!(a[0].lo >= 1.0 && a[0].hi <= 3.0);
    }

    #[test]
    fn runs_group_by_method() {
        assert_eq!(method_label(Path::new("out/coop/s3")), "coop");
        assert_eq!(
            method_label(Path::new("runs/mpe-simple_spread_v3__coop__s1__1732400000")),
            "mpe-simple_spread_v3__coop"
        );
        assert_eq!(method_label(Path::new("my-run")), "my-run");
    }

    #[test]
    fn axis_labels_say_which_evaluation_they_show() {
        let (g, s) = (EvalPolicy::Greedy, EvalPolicy::Stochastic);
        assert_eq!(y_label("eval/return", &[g]), "greedy return per agent");
        assert_eq!(
            y_label("eval/return", &[g, s]),
            "greedy and stochastic return per agent"
        );
        assert_eq!(
            y_label("agent/eval_return", &[s]),
            "stochastic return per agent (agent)"
        );
        assert_eq!(
            y_label("charts/episodic_return", &[]),
            "training return per agent"
        );
    }

    #[test]
    fn plots_draw_what_every_run_evaluated_unless_told() {
        let both = ("a/config.toml".to_string(), EvalMode::Both);
        let greedy = ("b/config.toml".to_string(), EvalMode::Greedy);
        let (g, s) = (Some(EvalPolicy::Greedy), Some(EvalPolicy::Stochastic));
        let of = |column: &str, mode: Option<EvalMode>, modes: &[(String, EvalMode)]| {
            eval_policies(column, mode, modes).map_err(|e| e.to_string())
        };
        let only_both = [both.clone()];
        assert_eq!(
            of("eval/return", None, &only_both),
            Ok(("eval/return".into(), vec![g, s]))
        );
        assert_eq!(
            of("eval/return", None, &[both.clone(), greedy.clone()]),
            Ok(("eval/return".into(), vec![g]))
        );
        assert_eq!(
            of("eval/return_stochastic", None, &only_both),
            Ok(("eval/return".into(), vec![s]))
        );
        let err = of("eval/return", Some(EvalMode::Stochastic), &[greedy]).unwrap_err();
        assert!(
            err.contains("b/config.toml") && err.contains("greedy policy only"),
            "{err}"
        );
        assert_eq!(
            of("charts/sps", None, &only_both),
            Ok(("charts/sps".into(), vec![None]))
        );
        assert!(of("charts/sps", Some(EvalMode::Greedy), &only_both).is_err());
    }

    #[test]
    fn labels_read_like_a_paper() {
        assert_eq!(steps_label(500_000.0), "500k");
        assert_eq!(steps_label(1_500_000.0), "1.5M");
        assert_eq!(steps_label(0.0), "0");
    }
}
