//! SVG charts rendered on the server: values over time (with a limit line and shaded
//! intervals), a confusion-matrix heatmap, and horizontal bars. No script, no external code.

use maud::{Markup, PreEscaped, html};

const WIDTH: f64 = 820.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 42.0;

/// About `n` round tick values covering `lo..=hi`.
fn ticks(lo: f64, hi: f64, n: f64) -> Vec<f64> {
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) {
        return vec![lo];
    }
    let raw = span / n;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = magnitude
        * match raw / magnitude {
            r if r < 1.5 => 1.0,
            r if r < 3.0 => 2.0,
            r if r < 7.0 => 5.0,
            _ => 10.0,
        };
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// One line of a [`TimeChart`].
pub struct Line {
    /// Legend text.
    pub name: String,
    /// (x, y) points in x order.
    pub points: Vec<(f64, f64)>,
}

/// Values over time.
pub struct TimeChart<'a> {
    /// What the chart shows, for `data-chart` and the accessible title.
    pub id: &'a str,
    /// Caption of the x axis.
    pub x_label: &'a str,
    /// Caption of the y axis.
    pub y_label: &'a str,
    /// How y values are written on the axis.
    pub y_format: fn(f64) -> String,
    /// The lines.
    pub lines: Vec<Line>,
    /// A horizontal line (value, label), e.g. the shaping limit.
    pub limit: Option<(f64, String)>,
    /// Shaded x intervals (from, to), e.g. stalls, with their legend text.
    pub spans: (Vec<(f64, f64)>, &'a str),
    /// Lowest y on the axis: `Some(0.0)` to include zero, `None` to fit the data.
    pub y_floor: Option<f64>,
}

impl TimeChart<'_> {
    /// The chart as an `<svg class="chart">`.
    pub fn render(&self) -> Markup {
        let height = 300.0;
        let xs = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .chain(self.spans.0.iter().flat_map(|s| [s.0, s.1]));
        let (x_lo, x_hi) = bounds(xs);
        let ys = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .chain(self.limit.iter().map(|l| l.0))
            .chain(self.y_floor);
        let (mut y_lo, mut y_hi) = bounds(ys);
        if y_hi <= y_lo {
            y_hi = y_lo + 1.0;
        }
        y_hi += (y_hi - y_lo) * 0.08;
        if self.y_floor.is_none() {
            y_lo -= (y_hi - y_lo) * 0.05;
        }
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = height - TOP - BOTTOM;
        let x = |v: f64| LEFT + (v - x_lo) / (x_hi - x_lo).max(f64::MIN_POSITIVE) * plot_w;
        let y = |v: f64| TOP + plot_h - (v - y_lo) / (y_hi - y_lo) * plot_h;
        html! {
            svg.chart data-chart=(self.id) viewBox={ "0 0 " (WIDTH) " " (height) }
                role="img" aria-label=(self.y_label) xmlns="http://www.w3.org/2000/svg" {
                title { (self.y_label) " over " (self.x_label) }
                g.grid {
                    @for t in ticks(y_lo, y_hi, 5.0) {
                        line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y(t)) y2=(y(t)) {}
                        text x=(LEFT - 6.0) y=(y(t) + 4.0) text-anchor="end" { ((self.y_format)(t)) }
                    }
                    @for t in ticks(x_lo, x_hi, 8.0) {
                        text x=(x(t)) y=(TOP + plot_h + 16.0) text-anchor="middle" { (trim(t)) }
                    }
                }
                @for (from, to) in &self.spans.0 {
                    rect.stall x=(x(*from)) y=(TOP) width=((x(*to) - x(*from)).max(1.5)) height=(plot_h) {
                        title { (self.spans.1) " " (trim(*from)) "–" (trim(*to)) }
                    }
                }
                g.axis {
                    line x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(TOP + plot_h) {}
                    line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(TOP + plot_h) y2=(TOP + plot_h) {}
                }
                @for (i, l) in self.lines.iter().enumerate() {
                    polyline class={ "line s" (i % 4) } data-series=(l.name)
                        points=(points(&l.points, &x, &y)) {}
                }
                @if let Some((value, label)) = &self.limit {
                    line.limit x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y(*value)) y2=(y(*value))
                        data-limit=(value) {}
                    text x=(WIDTH - RIGHT - 4.0) y=(y(*value) - 5.0) text-anchor="end" { (label) }
                }
                text x=(LEFT + plot_w / 2.0) y=(height - 6.0) text-anchor="middle" { (self.x_label) }
                text transform={ "translate(14," (TOP + plot_h / 2.0) ") rotate(-90)" }
                    text-anchor="middle" { (self.y_label) }
                g.legend {
                    @for (i, l) in self.lines.iter().enumerate() {
                        rect class={ "s" (i % 4) } x=(LEFT + 150.0 * i as f64) y="10" width="14" height="4" {}
                        text x=(LEFT + 150.0 * i as f64 + 20.0) y="16" { (l.name) }
                    }
                    @if !self.spans.0.is_empty() {
                        rect.stall x=(LEFT + 150.0 * self.lines.len() as f64) y="6" width="14" height="12" {}
                        text x=(LEFT + 150.0 * self.lines.len() as f64 + 20.0) y="16" { (self.spans.1) }
                    }
                }
            }
        }
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc: Option<(f64, f64)>, v| {
            Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        })
        .map_or(
            (0.0, 1.0),
            |(lo, hi)| if hi > lo { (lo, hi) } else { (lo, lo + 1.0) },
        )
}

fn points(points: &[(f64, f64)], x: &impl Fn(f64) -> f64, y: &impl Fn(f64) -> f64) -> String {
    points
        .iter()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn trim(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A confusion matrix (`matrix[true][predicted]` counts) as a heatmap: each cell shaded by
/// the share of its true class, with the count written in it.
pub fn heatmap(classes: &[String], matrix: &[Vec<usize>]) -> Markup {
    let cell = 64.0;
    let left = 130.0;
    let top = 70.0;
    let k = classes.len() as f64;
    let (w, h) = (left + k * cell + 20.0, top + k * cell + 20.0);
    html! {
        svg.chart data-chart="confusion" viewBox={ "0 0 " (w) " " (h) } style={ "max-width: " (w) "px" }
            role="img" aria-label="confusion matrix" xmlns="http://www.w3.org/2000/svg" {
            title { "Confusion matrix: rows are true classes, columns predicted classes" }
            text x=(left + k * cell / 2.0) y="18" text-anchor="middle" { "predicted" }
            text transform={ "translate(14," (top + k * cell / 2.0) ") rotate(-90)" } text-anchor="middle" { "true" }
            @for (j, name) in classes.iter().enumerate() {
                text x=(left + (j as f64 + 0.5) * cell) y=(top - 10.0) text-anchor="middle" { (name) }
            }
            @for (i, row) in matrix.iter().enumerate() {
                @let total = row.iter().sum::<usize>().max(1) as f64;
                text x=(left - 8.0) y=(top + (i as f64 + 0.5) * cell + 4.0) text-anchor="end" { (classes[i]) }
                @for (j, count) in row.iter().enumerate() {
                    @let share = *count as f64 / total;
                    rect x=(left + j as f64 * cell) y=(top + i as f64 * cell) width=(cell - 2.0) height=(cell - 2.0)
                        fill=(PreEscaped(format!("rgba(36, 88, 198, {:.3})", 0.06 + 0.94 * share)))
                        data-count=(count) {
                        title { (classes[i]) " predicted as " (classes[j]) ": " (count) }
                    }
                    text.cell-text x=(left + (j as f64 + 0.5) * cell - 1.0) y=(top + (i as f64 + 0.5) * cell + 4.0)
                        text-anchor="middle" style={ "fill: " (if share > 0.55 { "#fff" } else { "#1d2330" }) } { (count) }
                }
            }
        }
    }
}

/// Horizontal bars, one per (name, value, spread), largest first as given; a whisker shows
/// ± the spread.
pub fn bars(id: &str, items: &[(String, f64, Option<f64>)], format: fn(f64) -> String) -> Markup {
    let row = 22.0;
    let left = 240.0;
    let right = 80.0;
    let h = TOP + row * items.len() as f64 + 10.0;
    let (lo, hi) = bounds(
        items
            .iter()
            .flat_map(|(_, v, s)| [*v + s.unwrap_or(0.0), *v - s.unwrap_or(0.0)])
            .chain([0.0]),
    );
    let plot_w = WIDTH - left - right;
    let x = |v: f64| left + (v - lo) / (hi - lo) * plot_w;
    html! {
        svg.chart data-chart=(id) viewBox={ "0 0 " (WIDTH) " " (h) } role="img" aria-label=(id)
            xmlns="http://www.w3.org/2000/svg" {
            g.axis { line x1=(x(0.0)) x2=(x(0.0)) y1=(TOP - 8.0) y2=(h - 6.0) {} }
            @for t in ticks(lo, hi, 5.0) {
                text x=(x(t)) y=(TOP - 14.0) text-anchor="middle" { (format(t)) }
            }
            @for (i, (name, value, spread)) in items.iter().enumerate() {
                @let top = TOP + i as f64 * row;
                text x=(left - 8.0) y=(top + 15.0) text-anchor="end" { (name) }
                rect.bar x=(x(value.min(0.0))) y=(top + 4.0) width=((x(value.max(0.0)) - x(value.min(0.0))).max(1.0))
                    height=(row - 8.0) data-value=(value) {
                    title { (name) ": " (format(*value)) }
                }
                @if let Some(s) = spread.filter(|s| *s > 0.0) {
                    line.whisker x1=(x(value - s)) x2=(x(value + s)) y1=(top + row / 2.0) y2=(top + row / 2.0) {}
                }
                text x=(x(value.max(0.0) + spread.unwrap_or(0.0)) + 6.0) y=(top + 15.0) { (format(*value)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0, 5.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.0, 5_400_000.0, 5.0)[1], 1_000_000.0);
        assert_eq!(ticks(3.0, 3.0, 5.0), vec![3.0]);
    }

    #[test]
    fn a_time_chart_draws_lines_limit_and_spans() {
        let chart = TimeChart {
            id: "throughput",
            x_label: "seconds",
            y_label: "bit/s",
            y_format: |v| format!("{v}"),
            lines: vec![Line {
                name: "down".into(),
                points: vec![(0.0, 1.0), (1.0, 3.0), (2.0, 2.0)],
            }],
            limit: Some((2.5, "limit".into())),
            spans: (vec![(0.5, 1.2)], "stall"),
            y_floor: Some(0.0),
        }
        .render()
        .into_string();
        assert!(chart.contains(r#"data-chart="throughput""#), "{chart}");
        assert_eq!(chart.matches("<polyline").count(), 1);
        assert!(chart.contains(r#"class="limit""#) && chart.contains(r#"data-limit="2.5""#));
        assert_eq!(
            chart.matches(r#"<rect class="stall""#).count(),
            2,
            "span and legend"
        );
        // The highest point (3.0) is drawn below the top edge (y grows downwards).
        let pts = chart.split("points=\"").nth(1).unwrap();
        let ys: Vec<f64> = pts
            .split('"')
            .next()
            .unwrap()
            .split(' ')
            .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        assert!(ys[1] < ys[2] && ys[2] < ys[0] && ys[1] > TOP, "{ys:?}");
    }

    #[test]
    fn a_heatmap_has_a_cell_per_pair_with_its_count() {
        let classes = vec!["low".to_string(), "high".to_string()];
        let svg = heatmap(&classes, &[vec![8, 2], vec![1, 9]]).into_string();
        assert_eq!(svg.matches("data-count=").count(), 4);
        assert!(svg.contains("low predicted as high: 2"), "{svg}");
    }

    #[test]
    fn bars_grow_from_zero_both_ways() {
        let items = vec![
            ("a".to_string(), 0.2, Some(0.05)),
            ("b".to_string(), -0.1, None),
        ];
        let svg = bars("importance", &items, |v| format!("{v:.2}")).into_string();
        assert_eq!(svg.matches(r#"class="bar""#).count(), 2);
        assert_eq!(svg.matches(r#"class="whisker""#).count(), 1);
    }
}
