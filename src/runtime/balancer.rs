//! Smooth weighted round-robin over a pool's members (the nginx algorithm): every pick
//! adds each healthy member's weight to its running score, takes the highest, and
//! subtracts the total from the winner. Shares match the weights exactly over each
//! cycle, picks interleave instead of bunching, and an unhealthy member's share goes to
//! the others in proportion to their weights.

/// The balancer of one pool. Not thread-safe by itself: the server keeps it behind a
/// lock, which a pick holds for a few nanoseconds.
#[derive(Debug, Clone)]
pub struct Balancer {
    weights: Vec<i64>,
    current: Vec<i64>,
}

/// Weights are scaled to integers so that the arithmetic stays exact.
const SCALE: f64 = 1000.0;
const MAX_SCALED: f64 = 1e12;

impl Balancer {
    pub fn new(weights: &[f64]) -> Balancer {
        let weights: Vec<i64> = weights
            .iter()
            .map(|w| {
                if w.is_finite() && *w > 0.0 {
                    // capped so that sums over any pool stay far inside i64
                    (w * SCALE).round().min(MAX_SCALED) as i64
                } else {
                    0
                }
            })
            .collect();
        Balancer {
            current: vec![0; weights.len()],
            weights,
        }
    }

    /// The next member, among those `healthy` says may take traffic; `None` when no
    /// member with a positive weight is healthy.
    pub fn pick(&mut self, healthy: impl Fn(usize) -> bool) -> Option<usize> {
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for i in 0..self.weights.len() {
            if self.weights[i] == 0 || !healthy(i) {
                continue;
            }
            self.current[i] += self.weights[i];
            total += self.weights[i];
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        self.current[b] -= total;
        Some(b)
    }

    pub fn len(&self) -> usize {
        self.weights.len()
    }

    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(weights: &[f64], healthy: &[bool], picks: usize) -> Vec<usize> {
        let mut b = Balancer::new(weights);
        let mut counts = vec![0; weights.len()];
        for _ in 0..picks {
            if let Some(i) = b.pick(|i| healthy[i]) {
                counts[i] += 1;
            }
        }
        counts
    }

    #[test]
    fn huge_weights_do_not_overflow() {
        let mut b = Balancer::new(&[1e300, 1e16, 5.0]);
        for _ in 0..1000 {
            assert!(b.pick(|_| true).is_some());
        }
    }

    #[test]
    fn shares_follow_the_weights_exactly_per_cycle() {
        assert_eq!(shares(&[60.0, 40.0], &[true, true], 1000), vec![600, 400]);
        assert_eq!(
            shares(&[70.0, 20.0, 10.0], &[true; 3], 1000),
            vec![700, 200, 100]
        );
    }

    #[test]
    fn picks_interleave() {
        let mut b = Balancer::new(&[50.0, 50.0]);
        let seq: Vec<usize> = (0..6).filter_map(|_| b.pick(|_| true)).collect();
        assert_eq!(seq, vec![0, 1, 0, 1, 0, 1]);
    }

    #[test]
    fn an_unhealthy_share_goes_to_the_others() {
        assert_eq!(
            shares(&[50.0, 30.0, 20.0], &[true, false, true], 700),
            vec![500, 0, 200]
        );
        assert_eq!(shares(&[50.0, 50.0], &[false, false], 10), vec![0, 0]);
    }

    #[test]
    fn zero_and_invalid_weights_take_nothing() {
        assert_eq!(shares(&[0.0, f64::NAN, 1.0], &[true; 3], 5), vec![0, 0, 5]);
        assert_eq!(Balancer::new(&[]).pick(|_| true), None);
    }
}
