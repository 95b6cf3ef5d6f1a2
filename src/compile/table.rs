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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Layout {
    Flat {
        strides: Vec<u32>,
        cells: Vec<u32>,
    },
    Bitsets {
        words: u32,
        /// the rule of each box
        term_rule: Vec<u32>,
        /// per domain: `classes × words` words
        sets: Vec<Vec<u64>>,
    },
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
        let sets = class_bitsets(&domains, terms, words);
        let product = domains
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(u64::from(d.classes())))
            .unwrap_or(u64::MAX);
        let layout = if product <= flat_limit {
            flat(&domains, &sets, &term_rule, words)
        } else {
            Layout::Bitsets {
                words: words as u32,
                term_rule,
                sets,
            }
        };
        DecisionTable {
            domains,
            slots,
            rules,
            layout,
        }
    }

    /// Restores lookup indexes after deserialising.
    pub fn rebuild(&mut self) {
        for d in &mut self.domains {
            d.rebuild();
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
            Layout::Bitsets {
                words,
                term_rule,
                sets,
            } => {
                let words = *words as usize;
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
            Layout::Bitsets {
                words,
                term_rule,
                sets,
            } => {
                let words = *words as usize;
                let offsets: Vec<usize> = classes.iter().map(|c| *c as usize * words).collect();
                first_term(sets, &offsets, words, term_rule)
            }
        }
    }

    pub fn layout_name(&self) -> &'static str {
        match self.layout {
            Layout::Flat { .. } => "flat",
            Layout::Bitsets { .. } => "bitsets",
        }
    }
}

/// Per domain, `classes × words`: bit `t` of class `c` is set when box `t` allows `c`.
/// Boxes that do not constrain a domain are one shared row copied into every class,
/// so the work is classes × words plus the constrained boxes' classes, not
/// classes × boxes.
pub fn class_bitsets(domains: &[Domain], terms: &[(u32, Cube)], words: usize) -> Vec<Vec<u64>> {
    domains
        .iter()
        .enumerate()
        .map(|(d, dom)| {
            let live = super::terms::ClassSet::live(dom);
            let mut wild = vec![0u64; words];
            for (t, (_, cube)) in terms.iter().enumerate() {
                if live.is_subset(&cube[d]) {
                    wild[t / 64] |= 1 << (t % 64);
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
            for (t, (_, cube)) in terms.iter().enumerate() {
                if wild[t / 64] & (1 << (t % 64)) != 0 {
                    continue;
                }
                for c in cube[d].iter() {
                    v[c as usize * words + t / 64] |= 1 << (t % 64);
                }
            }
            v
        })
        .collect()
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
