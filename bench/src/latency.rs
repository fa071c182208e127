//! The latency summary the load generators of `bench/` print (`code-flow`,
//! `fixed-rate`): microseconds in, sorted once, percentiles by rank.

/// Latencies of one run, in microseconds, sorted.
pub struct Latencies(Vec<u32>);

impl Latencies {
    pub fn new(mut micros: Vec<u32>) -> Self {
        micros.sort_unstable();
        Latencies(micros)
    }

    /// The nearest-rank percentile `p` (0–100); 0 when there are none.
    pub fn percentile(&self, p: f64) -> u32 {
        if self.0.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    pub fn max(&self) -> u32 {
        self.0.last().copied().unwrap_or(0)
    }

    pub fn mean(&self) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.iter().map(|&l| f64::from(l)).sum::<f64>() / self.0.len() as f64
    }

    /// `"p50_us":…,"p90_us":…,"p99_us":…,"max_us":…,"mean_us":…`, the
    /// members `wrk/token_load.lua` prints.
    pub fn json_members(&self) -> String {
        format!(
            "\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"max_us\":{},\"mean_us\":{:.1}",
            self.percentile(50.0),
            self.percentile(90.0),
            self.percentile(99.0),
            self.max(),
            self.mean()
        )
    }
}

/// A microsecond count as the summary keeps it.
pub fn micros(duration: std::time::Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let latencies = Latencies::new((1..=100).rev().collect());
        assert_eq!(latencies.percentile(50.0), 50);
        assert_eq!(latencies.percentile(99.0), 99);
        assert_eq!(latencies.percentile(99.9), 100);
        assert_eq!(latencies.max(), 100);
        assert_eq!(latencies.mean(), 50.5);
        assert_eq!(Latencies::new(Vec::new()).percentile(99.0), 0);
    }
}
