//! Box covering: is a box inside the union of other boxes, and if not, a point of it
//! outside them — the witness behind "this rule never fires", "no rule covers this
//! request" and every example request the analyses print.

use crate::compile::domain::Domain;
use crate::compile::terms::{cube_contains, cubes_intersect, ClassSet, Cube};

/// A sub-box of `cube` that no box in `others` touches, or `None` when `others` cover
/// `cube`.
pub fn uncovered(cube: &Cube, others: &[&Cube]) -> Option<Cube> {
    uncovered_all(cube, others, 1).pop()
}

/// Up to `limit` disjoint sub-boxes of `cube` that together make up all of it that
/// `others` do not touch (all of it when fewer than `limit` are needed). Works with an
/// explicit stack: no recursion, whatever the number of boxes.
pub fn uncovered_all(cube: &Cube, others: &[&Cube], limit: usize) -> Vec<Cube> {
    let mut found = Vec::new();
    let mut stack: Vec<(Cube, usize)> = vec![(cube.clone(), 0)];
    while let Some((region, mut from)) = stack.pop() {
        while from < others.len() && !cubes_intersect(&region, others[from]) {
            from += 1;
        }
        let Some(blocker) = others.get(from) else {
            found.push(region);
            if found.len() >= limit {
                break;
            }
            continue;
        };
        if cube_contains(blocker, &region) {
            continue;
        }
        let Some(d) = region
            .iter()
            .zip(blocker.iter())
            .position(|(r, b)| !r.is_subset(b))
        else {
            continue;
        };
        let mut inside = region.clone();
        inside[d] = region[d].and(&blocker[d]);
        let mut outside = region;
        outside[d] = outside[d].minus(&blocker[d]);
        stack.push((inside, from));
        stack.push((outside, from + 1));
    }
    found
}

/// The requests no rule has claimed yet, as disjoint boxes. Going through the rules in
/// order, each rule claims what is left of its boxes: exactly the requests it decides.
pub struct Residual {
    boxes: Vec<Cube>,
}

impl Residual {
    pub fn new(universe: Cube) -> Residual {
        Residual {
            boxes: if crate::compile::terms::cube_is_empty(&universe) {
                Vec::new()
            } else {
                vec![universe]
            },
        }
    }

    /// Claims `cubes` (one rule's boxes): returns the disjoint pieces the rule
    /// decides, and keeps the rest.
    pub fn claim(&mut self, cubes: &[&Cube]) -> Vec<Cube> {
        let mut reached = Vec::new();
        for cube in cubes {
            let mut kept = Vec::with_capacity(self.boxes.len());
            for piece in self.boxes.drain(..) {
                if !cubes_intersect(&piece, cube) {
                    kept.push(piece);
                    continue;
                }
                let mut rest = piece;
                for d in 0..rest.len() {
                    if rest[d].is_subset(&cube[d]) {
                        continue;
                    }
                    let mut outside = rest.clone();
                    outside[d] = rest[d].minus(&cube[d]);
                    kept.push(outside);
                    rest[d] = rest[d].and(&cube[d]);
                }
                reached.push(rest);
            }
            self.boxes = kept;
        }
        reached
    }

    pub fn first(&self) -> Option<&Cube> {
        self.boxes.first()
    }

    pub fn len(&self) -> usize {
        self.boxes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }
}

/// The first `limit` rules (in order) with a box among the first `before` that
/// intersects `cube`. Scans from the top and stops early: broad early rules are found
/// at once, and the count past `limit` is not needed.
pub fn intersecting_rules(
    terms: &[(u32, Cube)],
    cube: &Cube,
    before: usize,
    limit: usize,
) -> Vec<u32> {
    let mut rules: Vec<u32> = Vec::new();
    for (rule, c) in &terms[..before.min(terms.len())] {
        if rules.last() == Some(rule) || !cubes_intersect(c, cube) {
            continue;
        }
        if !rules.contains(rule) {
            rules.push(*rule);
            if rules.len() >= limit {
                break;
            }
        }
    }
    rules
}

/// For every attribute and class, the bitset of boxes that allow it: finds the boxes
/// that may intersect a given one without testing them all.
pub struct TermIndex<'t> {
    terms: &'t [(u32, Cube)],
    words: usize,
    sets: Vec<Vec<u64>>,
    live: Vec<usize>,
}

impl<'t> TermIndex<'t> {
    pub fn new(domains: &[Domain], terms: &'t [(u32, Cube)]) -> TermIndex<'t> {
        let words = terms.len().div_ceil(64).max(1);
        let sets = crate::compile::table::class_bitsets(domains, terms, words);
        let live = domains
            .iter()
            .map(|d| d.live.iter().filter(|l| **l).count())
            .collect();
        TermIndex {
            terms,
            words,
            sets,
            live,
        }
    }

    /// Indexes of the boxes among the first `before` that may intersect `cube`, in
    /// order (every box that intersects it is listed; a few more may be).
    pub fn candidate_ids(&self, cube: &Cube, before: usize) -> Vec<usize> {
        let words = self.words;
        let mut acc = vec![u64::MAX; words];
        for (d, set) in cube.iter().enumerate() {
            if set.len() == self.live[d] {
                continue; // every box allows some class of an unconstrained attribute
            }
            let mut any = vec![0u64; words];
            for c in set.iter() {
                for (w, a) in any.iter_mut().enumerate() {
                    *a |= self.sets[d][c as usize * words + w];
                }
            }
            for (a, b) in acc.iter_mut().zip(&any) {
                *a &= b;
            }
        }
        let mut out = Vec::new();
        for (w, word) in acc.iter().enumerate() {
            let mut x = *word;
            while x != 0 {
                let t = w * 64 + x.trailing_zeros() as usize;
                if t >= before {
                    return out;
                }
                out.push(t);
                x &= x - 1;
            }
        }
        out
    }

    /// The boxes among the first `before` that may intersect `cube`, in order.
    pub fn candidates(&self, cube: &Cube, before: usize) -> Vec<&'t Cube> {
        self.candidate_ids(cube, before)
            .into_iter()
            .map(|t| &self.terms[t].1)
            .collect()
    }
}

/// One class per attribute from a non-empty box, preferring a present value to "absent".
pub fn point(cube: &Cube, absent: impl Fn(usize) -> u16) -> Vec<u16> {
    cube.iter()
        .enumerate()
        .map(|(d, set): (usize, &ClassSet)| {
            set.iter()
                .find(|c| *c != absent(d))
                .or_else(|| set.first())
                .unwrap_or(0)
        })
        .collect()
}
