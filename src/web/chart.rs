//! A stacked bar chart of days, drawn on the server: an SVG with its axes, a
//! legend with the totals, and the busy days as a table — read without
//! JavaScript (`templates/_chart.html`, one per page).

/// The chart's height in its own units, and each day's slot and bar width.
const HEIGHT: f64 = 120.0;
const SLOT: i64 = 10;
const BAR: i64 = 7;

/// What one colour of the chart counts.
#[derive(Debug, Clone, Copy)]
pub struct Series {
    pub label: &'static str,
    pub colour: &'static str,
}

/// One rectangle of the chart.
pub struct Rect {
    pub x: i64,
    pub y: String,
    pub height: String,
    pub fill: &'static str,
    pub title: String,
}

/// A chart of `days` (their labels) stacking `series`, with a column of context
/// per day in the table (the emails sent, say).
pub struct Chart {
    pub title: String,
    /// Said when no day has anything.
    pub empty: &'static str,
    pub days: Vec<String>,
    pub series: Vec<Series>,
    /// Per day, per series.
    counts: Vec<Vec<i64>>,
    /// The table's first column after the day, and its values per day.
    pub context: Option<(&'static str, Vec<i64>)>,
}

impl Chart {
    pub fn new(title: String, empty: &'static str, days: Vec<String>, series: &[Series]) -> Self {
        let counts = vec![vec![0; series.len()]; days.len()];
        Self {
            title,
            empty,
            days,
            series: series.to_vec(),
            counts,
            context: None,
        }
    }

    /// With a context column (`label`, its value per day).
    pub fn with_context(mut self, label: &'static str, values: Vec<i64>) -> Self {
        self.context = Some((label, values));
        self
    }

    /// Adds `n` to the day `day` of the series `series`.
    pub fn add(&mut self, day: usize, series: usize, n: i64) {
        if let Some(c) = self.counts.get_mut(day).and_then(|d| d.get_mut(series)) {
            *c += n;
        }
    }

    fn total(&self, day: usize) -> i64 {
        self.counts[day].iter().sum()
    }

    /// The highest day (the chart's top).
    pub fn max(&self) -> i64 {
        (0..self.days.len())
            .map(|d| self.total(d))
            .max()
            .unwrap_or(0)
    }

    pub fn width(&self) -> i64 {
        self.days.len() as i64 * SLOT
    }

    pub fn rects(&self) -> Vec<Rect> {
        let max = self.max();
        let scale = if max == 0 { 0.0 } else { HEIGHT / max as f64 };
        let mut rects = Vec::new();
        for (d, label) in self.days.iter().enumerate() {
            let mut top = HEIGHT;
            for (s, series) in self.series.iter().enumerate() {
                let n = self.counts[d][s];
                if n == 0 {
                    continue;
                }
                let height = n as f64 * scale;
                top -= height;
                rects.push(Rect {
                    x: d as i64 * SLOT + (SLOT - BAR) / 2,
                    y: format!("{top:.2}"),
                    height: format!("{height:.2}"),
                    fill: series.colour,
                    title: format!("{label}: {n} {}", series.label.to_lowercase()),
                });
            }
        }
        rects
    }

    /// The labels under the chart: about seven (every fifth of 30 days), and the last.
    pub fn axis(&self) -> Vec<&str> {
        let n = self.days.len();
        let step = n.div_ceil(6).max(1);
        self.days
            .iter()
            .enumerate()
            .filter(|(i, _)| i % step == 0 || *i + 1 == n)
            .map(|(_, d)| d.as_str())
            .collect()
    }

    /// Per series: its label, colour and total over the days.
    pub fn totals(&self) -> Vec<(&'static str, &'static str, i64)> {
        self.series
            .iter()
            .enumerate()
            .map(|(s, series)| {
                (
                    series.label,
                    series.colour,
                    self.counts.iter().map(|d| d[s]).sum(),
                )
            })
            .collect()
    }

    /// The days that had something, newest first: label, context, counts.
    pub fn busy_days(&self) -> Vec<(&str, i64, &[i64])> {
        (0..self.days.len())
            .rev()
            .filter(|&d| self.total(d) > 0)
            .map(|d| {
                let context = self
                    .context
                    .as_ref()
                    .and_then(|(_, v)| v.get(d).copied())
                    .unwrap_or(0);
                (self.days[d].as_str(), context, self.counts[d].as_slice())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_stack_to_the_highest_day() {
        let days = (1..=30).map(|d| format!("Day {d}")).collect();
        let series = [
            Series {
                label: "Opens",
                colour: "#111",
            },
            Series {
                label: "Clicks",
                colour: "#222",
            },
        ];
        let mut c = Chart::new("t".into(), "none", days, &series);
        c.add(1, 0, 3);
        c.add(1, 1, 1);
        c.add(4, 0, 2);
        c.add(99, 0, 100);
        assert_eq!(c.max(), 4);
        let rects = c.rects();
        assert_eq!(rects.len(), 3);
        assert_eq!(
            (rects[0].y.as_str(), rects[0].height.as_str()),
            ("30.00", "90.00")
        );
        assert_eq!(
            (rects[1].y.as_str(), rects[1].height.as_str()),
            ("0.00", "30.00")
        );
        assert_eq!(rects[1].title, "Day 2: 1 clicks");
        assert_eq!(
            c.axis(),
            [
                "Day 1", "Day 6", "Day 11", "Day 16", "Day 21", "Day 26", "Day 30"
            ]
        );
        assert_eq!(c.totals()[0].2, 5);
        let busy = c.busy_days();
        assert_eq!(busy.len(), 2);
        assert_eq!(busy[0].0, "Day 5", "newest first");
    }
}
