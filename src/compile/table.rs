//! The decision table: routing rules resolved first-match at compile time.
//!
//! Evaluation maps each tested attribute to its class, then looks up the rule:
//! - `Flat`: when the product of the class counts is at most [`FLAT_LIMIT`] cells,
//!   the whole cross product is stored; a decision is one multiply-add per attribute
//!   and one load.
//! - `Bitsets`: otherwise, for every attribute and class a bitset of the boxes (rule
//!   terms, in rule order) that allow the class; a decision ANDs one bitset per
//!   attribute word by word and takes the lowest set bit. Memory grows with
//!   classes × boxes, never with the cross product.

use serde::{Deserialize, Serialize};

use super::domain::Domain;
use super::terms::Cube;
use super::value::Scalar;

/// Largest cross product stored as a flat table.
pub const FLAT_LIMIT: u64 = 1 << 16;
/// "no rule matches" in a flat cell.
pub const NO_MATCH: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Model,
    Pool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRef {
    pub kind: TargetKind,
    pub name: String,
}

/// Where a rule was written, for explanations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    pub file: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleInfo {
    pub id: String,
    pub target: TargetRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
    /// the condition as canonical text (`None` for the fallback)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    pub source: SourceRef,
}

impl RuleInfo {
    /// `pool `standard`, priority balanced`: what the rule decides, in words.
    pub fn target_text(&self) -> String {
        let kind = match self.target.kind {
            TargetKind::Model => "model",
            TargetKind::Pool => "pool",
        };
        let priority = self
            .priority
            .as_ref()
            .map(|p| format!(", priority {p}"))
            .unwrap_or_default();
        format!("{kind} `{}`{priority}", self.target.name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Layout {
    Flat { strides: Vec<u32>, cells: Vec<u32> },
    Bitsets(Bitsets),
}

/// A box that does not allow every class of a domain: the classes it does allow, as
/// inclusive runs (`x != "a"` is two runs, not thousands of classes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constraint {
    pub term: u32,
    pub runs: Vec<[u16; 2]>,
}

impl Constraint {
    pub fn classes(&self) -> impl Iterator<Item = u16> + '_ {
        self.runs.iter().flat_map(|[a, b]| *a..=*b)
    }
}

fn runs(classes: impl Iterator<Item = u16>) -> Vec<[u16; 2]> {
    let mut out: Vec<[u16; 2]> = Vec::new();
    for c in classes {
        match out.last_mut() {
            Some(run) if run[1].checked_add(1) == Some(c) => run[1] = c,
            _ => out.push([c, c]),
        }
    }
    out
}

/// The bitset layout. Shipped as the constraints only (linear in the policy); the
/// dense rows, `classes × words` per domain, are derived when first needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bitsets {
    pub words: u32,
    /// the rule of each box
    pub term_rule: Vec<u32>,
    /// per domain: the boxes that constrain it; every other box allows every class
    pub constraints: Vec<Vec<Constraint>>,
    #[serde(skip)]
    dense: std::sync::OnceLock<Vec<Vec<u64>>>,
}

impl Bitsets {
    fn sets(&self, domains: &[Domain]) -> &[Vec<u64>] {
        self.dense.get_or_init(|| {
            dense_rows(
                domains,
                &self.constraints,
                self.term_rule.len(),
                self.words as usize,
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionTable {
    pub domains: Vec<Domain>,
    /// the request-schema slot of each domain
    pub slots: Vec<u32>,
    pub rules: Vec<RuleInfo>,
    pub layout: Layout,
}

/// Decisions classify at most this many attributes on the stack.
const STACK_DOMAINS: usize = 32;

impl DecisionTable {
    pub fn build(
        domains: Vec<Domain>,
        slots: Vec<u32>,
        rules: Vec<RuleInfo>,
        terms: &[(u32, Cube)],
    ) -> DecisionTable {
        DecisionTable::build_with_limit(domains, slots, rules, terms, FLAT_LIMIT)
    }

    /// [`DecisionTable::build`] with another cell limit for the flat layout (0 forces
    /// bitsets; tests compare both layouts).
    pub fn build_with_limit(
        domains: Vec<Domain>,
        slots: Vec<u32>,
        rules: Vec<RuleInfo>,
        terms: &[(u32, Cube)],
        flat_limit: u64,
    ) -> DecisionTable {
        let words = terms.len().div_ceil(64).max(1);
        let term_rule: Vec<u32> = terms.iter().map(|(r, _)| *r).collect();
        let constraints = constraints(&domains, terms);
        let product = domains
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(u64::from(d.classes())))
            .unwrap_or(u64::MAX);
        let layout = if product <= flat_limit {
            let sets = dense_rows(&domains, &constraints, term_rule.len(), words);
            flat(&domains, &sets, &term_rule, words)
        } else {
            Layout::Bitsets(Bitsets {
                words: words as u32,
                term_rule,
                constraints,
                dense: std::sync::OnceLock::new(),
            })
        };
        DecisionTable {
            domains,
            slots,
            rules,
            layout,
        }
    }

    /// Restores lookup indexes after deserialising, and derives the dense bitsets
    /// now rather than on the first decision.
    pub fn rebuild(&mut self) {
        for d in &mut self.domains {
            d.rebuild();
        }
        if let Layout::Bitsets(b) = &self.layout {
            let _ = b.sets(&self.domains);
        }
    }

    /// The rule deciding a request given its attribute values by schema slot.
    /// Allocates nothing for up to 32 tested attributes.
    pub fn decide(&self, values: &[Option<Scalar>]) -> Option<u32> {
        let class = |d: usize| {
            let slot = self.slots[d] as usize;
            self.domains[d].classify(values.get(slot).and_then(Option::as_ref))
        };
        match &self.layout {
            Layout::Flat { strides, cells } => {
                let mut idx = 0usize;
                for (d, stride) in strides.iter().enumerate() {
                    idx += class(d) as usize * *stride as usize;
                }
                let rule = cells[idx];
                (rule != NO_MATCH).then_some(rule)
            }
            Layout::Bitsets(b) => {
                let (words, term_rule, sets) =
                    (b.words as usize, &b.term_rule, b.sets(&self.domains));
                if self.domains.len() <= STACK_DOMAINS {
                    let mut offsets = [0usize; STACK_DOMAINS];
                    for (d, o) in offsets.iter_mut().enumerate().take(self.domains.len()) {
                        *o = class(d) as usize * words;
                    }
                    first_term(sets, &offsets[..self.domains.len()], words, term_rule)
                } else {
                    let offsets: Vec<usize> = (0..self.domains.len())
                        .map(|d| class(d) as usize * words)
                        .collect();
                    first_term(sets, &offsets, words, term_rule)
                }
            }
        }
    }

    /// The rule deciding a tuple of classes (one per domain).
    pub fn decide_classes(&self, classes: &[u16]) -> Option<u32> {
        match &self.layout {
            Layout::Flat { strides, cells } => {
                let idx: usize = classes
                    .iter()
                    .zip(strides)
                    .map(|(c, s)| *c as usize * *s as usize)
                    .sum();
                let rule = cells[idx];
                (rule != NO_MATCH).then_some(rule)
            }
            Layout::Bitsets(b) => {
                let (words, term_rule, sets) =
                    (b.words as usize, &b.term_rule, b.sets(&self.domains));
                let offsets: Vec<usize> = classes.iter().map(|c| *c as usize * words).collect();
                first_term(sets, &offsets, words, term_rule)
            }
        }
    }

    pub fn layout_name(&self) -> &'static str {
        match self.layout {
            Layout::Flat { .. } => "flat",
            Layout::Bitsets(_) => "bitsets",
        }
    }
}

/// Per domain, the boxes that do not allow every live class, with the classes they do
/// allow.
pub fn constraints(domains: &[Domain], terms: &[(u32, Cube)]) -> Vec<Vec<Constraint>> {
    domains
        .iter()
        .enumerate()
        .map(|(d, dom)| {
            let live = super::terms::ClassSet::live(dom);
            terms
                .iter()
                .enumerate()
                .filter(|(_, (_, cube))| !live.is_subset(&cube[d]))
                .map(|(t, (_, cube))| Constraint {
                    term: t as u32,
                    runs: runs(cube[d].iter()),
                })
                .collect()
        })
        .collect()
}

/// Per domain, `classes × words`: bit `t` of class `c` is set when box `t` allows `c`.
/// Unconstraining boxes form one shared row copied into every live class, so the work
/// is classes × words plus the constraints.
pub fn dense_rows(
    domains: &[Domain],
    constraints: &[Vec<Constraint>],
    terms: usize,
    words: usize,
) -> Vec<Vec<u64>> {
    domains
        .iter()
        .zip(constraints)
        .map(|(dom, cons)| {
            let mut wild = vec![0u64; words];
            for t in 0..terms.min(words * 64) {
                wild[t / 64] |= 1 << (t % 64);
            }
            for c in cons {
                let t = c.term as usize;
                if t < words * 64 {
                    wild[t / 64] &= !(1 << (t % 64));
                }
            }
            let classes = dom.classes() as usize;
            let mut v = Vec::with_capacity(classes * words);
            for c in 0..classes {
                if dom.live.get(c).copied().unwrap_or(false) {
                    v.extend_from_slice(&wild);
                } else {
                    v.extend(std::iter::repeat_n(0, words));
                }
            }
            for c in cons {
                let t = c.term as usize;
                for class in c.classes() {
                    if let Some(word) = v.get_mut(class as usize * words + t / 64) {
                        *word |= 1 << (t % 64);
                    }
                }
            }
            v
        })
        .collect()
}

/// [`dense_rows`] straight from boxes.
pub fn class_bitsets(domains: &[Domain], terms: &[(u32, Cube)], words: usize) -> Vec<Vec<u64>> {
    dense_rows(domains, &constraints(domains, terms), terms.len(), words)
}

fn first_term(
    sets: &[Vec<u64>],
    offsets: &[usize],
    words: usize,
    term_rule: &[u32],
) -> Option<u32> {
    for w in 0..words {
        let mut x = u64::MAX;
        for (set, off) in sets.iter().zip(offsets) {
            x &= set[off + w];
            if x == 0 {
                break;
            }
        }
        if x != 0 {
            return term_rule.get(w * 64 + x.trailing_zeros() as usize).copied();
        }
    }
    None
}

/// Fills every cell of the cross product, ANDing bitsets attribute by attribute.
fn flat(domains: &[Domain], sets: &[Vec<u64>], term_rule: &[u32], words: usize) -> Layout {
    let mut strides = vec![0u32; domains.len()];
    let mut stride = 1u32;
    for d in (0..domains.len()).rev() {
        strides[d] = stride;
        stride *= u32::from(domains[d].classes());
    }
    let mut cells = vec![NO_MATCH; stride as usize];
    // only bits of real boxes may survive to a cell
    let mut all = vec![0u64; words];
    for t in 0..term_rule.len() {
        all[t / 64] |= 1 << (t % 64);
    }
    let mut prefix = vec![all];
    fill(
        domains,
        sets,
        term_rule,
        words,
        &strides,
        0,
        0,
        &mut prefix,
        &mut cells,
    );
    Layout::Flat { strides, cells }
}

#[allow(clippy::too_many_arguments)]
fn fill(
    domains: &[Domain],
    sets: &[Vec<u64>],
    term_rule: &[u32],
    words: usize,
    strides: &[u32],
    d: usize,
    base: usize,
    prefix: &mut Vec<Vec<u64>>,
    cells: &mut [u32],
) {
    if d == domains.len() {
        let acc = &prefix[d];
        if let Some(w) = acc.iter().position(|x| *x != 0) {
            if let Some(rule) = term_rule.get(w * 64 + acc[w].trailing_zeros() as usize) {
                cells[base] = *rule;
            }
        }
        return;
    }
    for c in 0..domains[d].classes() as usize {
        let next: Vec<u64> = (0..words)
            .map(|w| prefix[d][w] & sets[d][c * words + w])
            .collect();
        prefix.truncate(d + 1);
        prefix.push(next);
        fill(
            domains,
            sets,
            term_rule,
            words,
            strides,
            d + 1,
            base + c * strides[d] as usize,
            prefix,
            cells,
        );
    }
}
