//! Partitioning each attribute's domain into classes. Every condition is constant on
//! every class, so a request is decided by the tuple of its attributes' classes.
//!
//! Class numbering, per kind of attribute (the last class is always "absent"):
//! - values (enums, strings): one class per value, then "any other value";
//! - numbers: for thresholds t0 < … < tk-1, class 2i is the open interval below ti
//!   (above ti-1), class 2i+1 is the point ti, class 2k is above tk-1;
//! - booleans: false, true.

use serde::{Deserialize, Serialize};

use super::value::Scalar;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DomainKind {
    Values {
        values: Vec<String>,
        open: bool,
    },
    Numeric {
        thresholds: Vec<f64>,
        integer: bool,
        min: Option<f64>,
        max: Option<f64>,
        unit: Unit,
    },
    Bool,
}

/// How a numeric attribute's values are written, for examples and explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Plain,
    Duration,
    Money,
    Percent,
}

/// One attribute that conditions test, with its classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    pub attr: String,
    pub kind: DomainKind,
    /// whether each class holds at least one valid value (derived, not shipped)
    #[serde(skip)]
    pub live: Vec<bool>,
    /// the values sorted by length, then bytes, with their classes: a binary search
    /// that mostly compares lengths, and needs no hashing
    #[serde(skip)]
    index: Vec<(String, u16)>,
}

impl Domain {
    pub fn new(attr: String, kind: DomainKind) -> Domain {
        let mut d = Domain {
            attr,
            kind,
            live: Vec::new(),
            index: Vec::new(),
        };
        d.rebuild();
        d
    }

    /// Restores the lookup index and liveness after loading.
    pub fn rebuild(&mut self) {
        if let DomainKind::Values { values, .. } = &self.kind {
            self.index = values
                .iter()
                .enumerate()
                .map(|(i, v)| (v.clone(), i as u16))
                .collect();
            self.index.sort_by(|(a, _), (b, _)| by_length(a, b));
        }
        self.live = (0..self.classes()).map(|c| self.class_is_live(c)).collect();
    }

    pub fn classes(&self) -> u16 {
        let n = match &self.kind {
            DomainKind::Values { values, .. } => values.len() + 1,
            DomainKind::Numeric { thresholds, .. } => 2 * thresholds.len() + 1,
            DomainKind::Bool => 2,
        };
        (n + 1) as u16
    }

    pub fn absent(&self) -> u16 {
        self.classes() - 1
    }

    /// The class of a value (`None`: attribute absent). No allocation.
    pub fn classify(&self, value: Option<&Scalar>) -> u16 {
        let Some(value) = value else {
            return self.absent();
        };
        match (&self.kind, value) {
            (DomainKind::Values { values, .. }, Scalar::Str(s)) => {
                match self.index.binary_search_by(|(v, _)| by_length(v, s)) {
                    Ok(i) => self.index[i].1,
                    Err(_) => values.len() as u16,
                }
            }
            (DomainKind::Numeric { thresholds, .. }, Scalar::Num(x)) => {
                let i = thresholds.partition_point(|t| t < x);
                if thresholds.get(i) == Some(x) {
                    (2 * i + 1) as u16
                } else {
                    (2 * i) as u16
                }
            }
            (DomainKind::Bool, Scalar::Bool(b)) => u16::from(*b),
            // a value of the wrong type was refused before evaluation; treat it as absent
            _ => self.absent(),
        }
    }

    /// The class of a listed value (enums and strings).
    pub fn class_of_value(&self, value: &str) -> Option<u16> {
        self.index
            .binary_search_by(|(v, _)| by_length(v, value))
            .ok()
            .map(|i| self.index[i].1)
    }

    /// The open interval or point a numeric class stands for.
    pub fn bounds(&self, class: u16) -> Option<(f64, f64, bool)> {
        let DomainKind::Numeric { thresholds, .. } = &self.kind else {
            return None;
        };
        let c = class as usize;
        if class >= self.absent() {
            return None;
        }
        if c % 2 == 1 {
            let t = thresholds[c / 2];
            return Some((t, t, true));
        }
        let i = c / 2;
        let lo = if i == 0 {
            f64::NEG_INFINITY
        } else {
            thresholds[i - 1]
        };
        let hi = thresholds.get(i).copied().unwrap_or(f64::INFINITY);
        Some((lo, hi, false))
    }

    /// A numeric interval class clipped to the attribute's `[min, max]`:
    /// `(a, a_open, b, b_open)`.
    fn clipped(&self, class: u16) -> Option<(f64, bool, f64, bool)> {
        let DomainKind::Numeric { min, max, .. } = &self.kind else {
            return None;
        };
        let (lo, hi, point) = self.bounds(class)?;
        if point {
            return Some((lo, false, hi, false));
        }
        let min = min.unwrap_or(f64::NEG_INFINITY);
        let max = max.unwrap_or(f64::INFINITY);
        let (a, a_open) = if lo >= min {
            (lo, true)
        } else {
            (min, min.is_infinite())
        };
        let (b, b_open) = if hi <= max {
            (hi, true)
        } else {
            (max, max.is_infinite())
        };
        Some((a, a_open, b, b_open))
    }

    /// The smallest valid value of a numeric class, if any.
    fn first_value(&self, class: u16) -> Option<f64> {
        let DomainKind::Numeric { integer, .. } = &self.kind else {
            return None;
        };
        let (a, a_open, b, b_open) = self.clipped(class)?;
        let x = if *integer {
            if a.is_finite() {
                if a_open {
                    a.floor() + 1.0
                } else {
                    a.ceil()
                }
            } else if b.is_finite() {
                if b_open {
                    b.ceil() - 1.0
                } else {
                    b.floor()
                }
            } else {
                0.0
            }
        } else {
            match (a.is_finite(), b.is_finite()) {
                (true, true) if a_open || b_open => (a + b) / 2.0,
                (true, _) if !a_open => a,
                (true, _) => a + 1.0,
                (false, true) => {
                    if b_open {
                        b - 1.0
                    } else {
                        b
                    }
                }
                (false, false) => 0.0,
            }
        };
        let inside_low = if a_open { x > a } else { x >= a };
        let inside_high = if b_open { x < b } else { x <= b };
        (inside_low && inside_high).then_some(x)
    }

    fn class_is_live(&self, class: u16) -> bool {
        if class == self.absent() {
            return true;
        }
        match &self.kind {
            DomainKind::Values { values, open } => (class as usize) < values.len() || *open,
            DomainKind::Bool => true,
            DomainKind::Numeric { .. } => self.first_value(class).is_some(),
        }
    }

    /// A value in the class, for example requests; `None` for "absent" or a class
    /// without valid values.
    pub fn representative(&self, class: u16) -> Option<Scalar> {
        if class == self.absent() {
            return None;
        }
        match &self.kind {
            DomainKind::Values { values, .. } => {
                Some(Scalar::Str(match values.get(class as usize) {
                    Some(v) => v.clone(),
                    None => {
                        let mut other = "other".to_string();
                        while values.contains(&other) {
                            other.push('_');
                        }
                        other
                    }
                }))
            }
            DomainKind::Bool => Some(Scalar::Bool(class == 1)),
            DomainKind::Numeric { .. } => self.first_value(class).map(Scalar::Num),
        }
    }

    /// A short description of a class: `"simple"`, `> 8000`, `absent`.
    pub fn describe(&self, class: u16) -> String {
        if class == self.absent() {
            return "absent".to_string();
        }
        match &self.kind {
            DomainKind::Values { values, .. } => match values.get(class as usize) {
                Some(v) => format!("{v:?}"),
                None => "another value".to_string(),
            },
            DomainKind::Bool => (class == 1).to_string(),
            DomainKind::Numeric { unit, .. } => {
                let Some((lo, hi, point)) = self.bounds(class) else {
                    return String::new();
                };
                let f = |x: f64| format_number(x, *unit);
                if point {
                    format!("= {}", f(lo))
                } else if lo.is_infinite() && hi.is_infinite() {
                    "any value".to_string()
                } else if lo.is_infinite() {
                    format!("< {}", f(hi))
                } else if hi.is_infinite() {
                    format!("> {}", f(lo))
                } else {
                    format!("between {} and {}", f(lo), f(hi))
                }
            }
        }
    }
}

fn by_length(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

impl Domain {
    /// A set of classes in words: `> 60000`, `one of "a", "b"`, `absent`, joined by "or".
    pub fn describe_classes(&self, classes: &[u16]) -> String {
        let mut parts: Vec<String> = Vec::new();
        let absent = classes.contains(&self.absent());
        let present: Vec<u16> = classes
            .iter()
            .copied()
            .filter(|c| *c != self.absent())
            .collect();
        match &self.kind {
            DomainKind::Numeric { unit, .. } => {
                // contiguous classes form one interval
                let mut i = 0;
                while i < present.len() {
                    let mut j = i;
                    while j + 1 < present.len() && present[j + 1] == present[j] + 1 {
                        j += 1;
                    }
                    let (lo, _, lo_point) = self.bounds(present[i]).unwrap_or((0.0, 0.0, false));
                    let (_, hi, hi_point) = self.bounds(present[j]).unwrap_or((0.0, 0.0, false));
                    let f = |x: f64| format_number(x, *unit);
                    let lower = if lo.is_infinite() {
                        None
                    } else if lo_point {
                        Some(format!(">= {}", f(lo)))
                    } else {
                        Some(format!("> {}", f(lo)))
                    };
                    let upper = if hi.is_infinite() {
                        None
                    } else if hi_point {
                        Some(format!("<= {}", f(hi)))
                    } else {
                        Some(format!("< {}", f(hi)))
                    };
                    parts.push(match (lower, upper) {
                        _ if i == j && lo_point => format!("= {}", f(lo)),
                        (Some(l), Some(u)) => format!("{l} and {u}"),
                        (Some(l), None) => l,
                        (None, Some(u)) => u,
                        (None, None) => "any value".to_string(),
                    });
                    i = j + 1;
                }
            }
            _ => {
                let values: Vec<String> = present.iter().map(|c| self.describe(*c)).collect();
                match values.len() {
                    0 => {}
                    1 => parts.push(format!("= {}", values[0])),
                    _ => parts.push(format!("in [{}]", values.join(", "))),
                }
            }
        }
        if absent {
            parts.push("absent".to_string());
        }
        parts.join(" or ")
    }
}

/// A number written in its unit: `500ms`, `$0.10`, `5%`.
pub fn format_number(x: f64, unit: Unit) -> String {
    match unit {
        Unit::Plain => format!("{x}"),
        Unit::Duration if x >= 0.0 && x.fract() == 0.0 => {
            crate::syntax::print::duration(crate::syntax::Duration { ms: x as u64 })
        }
        Unit::Duration => format!("{x}ms"),
        Unit::Money => format!("${x}"),
        Unit::Percent => format!("{x}%"),
    }
}
