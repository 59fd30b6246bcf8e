//! `docs/bench.svg`: throughput and peak RSS against concurrency.
//!
//! plotters' SVG backend writes text as `<text>` elements and, without its `ttf`/`ab_glyph`
//! features, lays it out with a built-in estimate of glyph widths: no font files and no
//! fontconfig are needed to draw, and the viewer renders the labels with its own sans-serif.

use std::path::Path;

use plotters::prelude::*;

use crate::bench::{human_size, Results, Who};

/// One plotted line: the runner, its colour, its `(concurrency, GiB/s, RSS MiB)` points.
type Series = (Who, RGBColor, Vec<(usize, f64, f64)>);

const SERIES: [(Who, RGBColor); 5] = [
    (Who::Limit, RGBColor(90, 90, 90)),
    (Who::Osspipe, RGBColor(214, 39, 40)),
    (Who::Opendal, RGBColor(31, 119, 180)),
    (Who::Sdk, RGBColor(44, 160, 44)),
    (Who::Cli, RGBColor(255, 127, 14)),
];

/// `(concurrency, median GiB/s, peak RSS MiB)` of one runner at the main size, memory store.
fn points(results: &Results, who: Who) -> Vec<(usize, f64, f64)> {
    let mut points: Vec<(usize, f64, f64)> = results
        .results
        .iter()
        .filter(|r| r.store == "memory" && r.runner == who && r.size == results.meta.size)
        .filter_map(|r| {
            let s = r.summary.as_ref()?;
            Some((r.concurrency, s.median_gib_s, s.peak_rss_mib))
        })
        .collect();
    points.sort_by_key(|p| p.0);
    points.dedup_by_key(|p| p.0);
    points
}

pub fn draw(results: &Results, path: &Path) -> anyhow::Result<()> {
    let series: Vec<Series> = SERIES
        .iter()
        .map(|&(who, color)| (who, color, points(results, who)))
        .filter(|s| !s.2.is_empty())
        .collect();
    let max_c = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .max()
        .unwrap_or(8)
        .max(2);
    let max_speed = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(0.1, f64::max);
    let max_rss = series
        .iter()
        .filter(|s| s.0 != Who::Limit)
        .flat_map(|s| s.2.iter().map(|p| p.2))
        .fold(16.0, f64::max);
    // Concurrency doubles, so its axis is log2; the x range is in log2 units.
    let x_max = (max_c as f64).log2();

    let root = SVGBackend::new(path, (1100, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(40);
    title.draw(&Text::new(
        format!(
            "osspipe vs limit / OpenDAL / Python SDK / CLI: {} stream, {} parts, memory store, {} cores",
            human_size(results.meta.size),
            human_size(results.meta.part_size),
            results.meta.cores
        ),
        (20, 12),
        ("sans-serif", 18).into_font(),
    ))?;
    let (left, right) = body.split_horizontally(550);
    let x_label = |x: &f64| format!("{}", 2f64.powf(*x).round() as u64);

    let mut speed = ChartBuilder::on(&left)
        .caption("throughput (median GiB/s)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(-0.2f64..x_max + 0.2, 0f64..max_speed * 1.5)?;
    speed
        .configure_mesh()
        .x_desc("concurrency (parts in flight)")
        .y_desc("GiB/s")
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&x_label)
        .draw()?;
    for (who, color, pts) in &series {
        let data: Vec<(f64, f64)> = pts.iter().map(|p| ((p.0 as f64).log2(), p.1)).collect();
        speed
            .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))?
            .label(who.name())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        speed.draw_series(data.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    speed
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;

    let mut rss = ChartBuilder::on(&right)
        .caption(
            "peak RSS of the uploading process (MiB, log scale)",
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.2f64..x_max + 0.2, (4f64..max_rss * 2.0).log_scale())?;
    rss.configure_mesh()
        .x_desc("concurrency (parts in flight)")
        .y_desc("MiB")
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&x_label)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    // The limit's RSS is its pre-cut parts (32 x 8 MiB), not an upload cost: left out.
    for (who, color, pts) in series.iter().filter(|s| s.0 != Who::Limit) {
        let data: Vec<(f64, f64)> = pts.iter().map(|p| ((p.0 as f64).log2(), p.2)).collect();
        rss.draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))?
            .label(who.name())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        rss.draw_series(data.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    rss.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}
