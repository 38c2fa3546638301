//! SVG line and point charts through `plotters` (SVG backend only, default features off: no
//! font files, no bitmap encoders; the browser renders the text).

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// One named series of (x, y) points.
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points in x order.
    pub points: Vec<(f64, f64)>,
}

/// A chart to draw.
pub struct Chart<'a> {
    /// Title above the plot.
    pub title: &'a str,
    /// X axis label.
    pub x_label: &'a str,
    /// Y axis label.
    pub y_label: &'a str,
    /// Draw markers at each point as well as the line (sparse series).
    pub markers: bool,
    /// A logarithmic y axis (series spanning orders of magnitude); non-positive values are
    /// left out.
    pub log_y: bool,
    /// The series.
    pub series: Vec<Series>,
}

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// No series holds a finite point: an empty chart would look like a result.
    #[error("chart {0:?} has no data")]
    NoData(String),
    /// The plotting library refused.
    #[error("chart {title:?}: {detail}")]
    Draw {
        /// The chart's title.
        title: String,
        /// The library's message.
        detail: String,
    },
}

/// The range of the finite values in `v`, widened when empty or flat.
fn span(v: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for x in v.filter(|x| x.is_finite()) {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if from_zero {
        lo = lo.min(0.0);
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    (lo, hi + (hi - lo) * 0.05)
}

/// Renders `chart` as an SVG document (width x height pixels).
pub fn render(chart: &Chart<'_>, size: (u32, u32)) -> Result<String, PlotError> {
    let log_y = chart.log_y;
    let usable = move |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite() && (!log_y || p.1 > 0.0);
    if chart.series.iter().all(|s| !s.points.iter().any(usable)) {
        return Err(PlotError::NoData(chart.title.to_owned()));
    }
    let all = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().filter(|p| usable(p)))
    };
    let (x0, x1) = span(all().map(|p| p.0), false);
    let err = |e: &dyn std::fmt::Display| PlotError::Draw {
        title: chart.title.to_owned(),
        detail: e.to_string(),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let builder = || {
            let mut b = ChartBuilder::on(&root);
            b.caption(chart.title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(64);
            b
        };
        if log_y {
            let lo = all().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let hi = all().map(|p| p.1).fold(0.0, f64::max);
            let c = builder()
                .build_cartesian_2d(x0..x1, (lo * 0.8..hi * 1.25).log_scale())
                .map_err(|e| err(&e))?;
            draw(c, chart, &usable).map_err(|e| err(&e))?;
        } else {
            let (y0, y1) = span(all().map(|p| p.1), true);
            let c = builder()
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(|e| err(&e))?;
            draw(c, chart, &usable).map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// Draws the mesh, the series and the legend on a built chart (linear or log y).
fn draw<'a, DB, Y>(
    mut c: ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
    chart: &Chart<'_>,
    usable: &dyn Fn(&(f64, f64)) -> bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    c.configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, s) in chart.series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let pts: Vec<(f64, f64)> = s.points.iter().filter(|p| usable(p)).copied().collect();
        c.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        if chart.markers {
            c.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
    }
    c.configure_series_labels()
        .position(if chart.log_y {
            // A log series falls from a burst to a floor: the upper right is empty.
            SeriesLabelPosition::UpperRight
        } else if chart.markers {
            SeriesLabelPosition::MiddleRight
        } else {
            // CDFs and convergence curves rise to the upper right.
            SeriesLabelPosition::LowerRight
        })
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_an_svg_with_its_title_and_legend_and_empty_data_is_refused() {
        let chart = Chart {
            title: "t",
            x_label: "x",
            y_label: "y",
            markers: true,
            log_y: false,
            series: vec![Series {
                name: "alpha".into(),
                points: vec![(0.0, 1.0), (1.0, 3.0), (2.0, f64::NAN)],
            }],
        };
        let svg = render(&chart, (400, 300)).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("alpha") && svg.contains("<circle"));
        let empty = Chart {
            series: vec![Series {
                name: "none".into(),
                points: vec![(f64::NAN, 1.0)],
            }],
            ..chart
        };
        assert!(matches!(
            render(&empty, (400, 300)),
            Err(PlotError::NoData(_))
        ));
    }
}
