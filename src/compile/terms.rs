//! Conditions as unions of boxes. A box fixes, for every attribute, the set of classes
//! it allows; a condition in disjunctive normal form is a list of boxes. Negation is
//! exact because the classes of an attribute, "absent" included, partition its domain.

use serde::{Deserialize, Serialize};

use super::domain::{Domain, DomainKind};
use super::value::{literal, Scalar};
use crate::syntax::{CmpOp, Expr, Literal, Operand};

/// Most boxes one condition may expand into.
pub const MAX_TERMS_PER_RULE: usize = 1024;

/// A set of classes of one attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClassSet(Vec<u64>);

impl ClassSet {
    pub fn empty(classes: u16) -> ClassSet {
        ClassSet(vec![0; (classes as usize).div_ceil(64)])
    }

    /// Every class, valid or not.
    pub fn all(classes: u16) -> ClassSet {
        let mut s = ClassSet::empty(classes);
        for c in 0..classes {
            s.insert(c);
        }
        s
    }

    /// Every class that holds a valid value.
    pub fn live(domain: &Domain) -> ClassSet {
        let mut s = ClassSet::empty(domain.classes());
        for (c, live) in domain.live.iter().enumerate() {
            if *live {
                s.insert(c as u16);
            }
        }
        s
    }

    pub fn insert(&mut self, c: u16) {
        self.0[c as usize / 64] |= 1 << (c % 64);
    }

    pub fn contains(&self, c: u16) -> bool {
        self.0
            .get(c as usize / 64)
            .is_some_and(|w| w & (1 << (c % 64)) != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub fn and(&self, other: &ClassSet) -> ClassSet {
        ClassSet(self.0.iter().zip(&other.0).map(|(a, b)| a & b).collect())
    }

    pub fn minus(&self, other: &ClassSet) -> ClassSet {
        ClassSet(self.0.iter().zip(&other.0).map(|(a, b)| a & !b).collect())
    }

    pub fn intersects(&self, other: &ClassSet) -> bool {
        self.0.iter().zip(&other.0).any(|(a, b)| a & b != 0)
    }

    pub fn is_subset(&self, other: &ClassSet) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & !b == 0)
    }

    pub fn first(&self) -> Option<u16> {
        self.0
            .iter()
            .enumerate()
            .find(|(_, w)| **w != 0)
            .map(|(i, w)| (i * 64) as u16 + w.trailing_zeros() as u16)
    }

    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().enumerate().flat_map(|(i, w)| {
            (0..64u16)
                .filter(move |b| w & (1 << b) != 0)
                .map(move |b| (i * 64) as u16 + b)
        })
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
}

/// One box: a class set per domain, in domain order.
pub type Cube = Vec<ClassSet>;

pub fn universe(domains: &[Domain]) -> Cube {
    domains.iter().map(ClassSet::live).collect()
}

pub fn cube_is_empty(cube: &Cube) -> bool {
    cube.iter().any(ClassSet::is_empty)
}

pub fn cube_and(a: &Cube, b: &Cube) -> Cube {
    a.iter().zip(b).map(|(x, y)| x.and(y)).collect()
}

pub fn cubes_intersect(a: &Cube, b: &Cube) -> bool {
    a.iter().zip(b).all(|(x, y)| x.intersects(y))
}

pub fn cube_contains(outer: &Cube, inner: &Cube) -> bool {
    inner.iter().zip(outer).all(|(i, o)| i.is_subset(o))
}

/// The condition expands into more boxes than [`MAX_TERMS_PER_RULE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooManyTerms;

/// Converts conditions to boxes over a fixed list of domains.
pub struct Expander<'d> {
    domains: &'d [Domain],
    universe: Cube,
}

impl<'d> Expander<'d> {
    pub fn new(domains: &'d [Domain]) -> Expander<'d> {
        Expander {
            domains,
            universe: universe(domains),
        }
    }

    pub fn universe(&self) -> &Cube {
        &self.universe
    }

    /// The boxes of `expr` (of `!expr` when `negated`), none of them empty.
    pub fn dnf(&self, expr: &Expr, negated: bool) -> Result<Vec<Cube>, TooManyTerms> {
        match expr {
            Expr::Not(inner, _) => self.dnf(inner, !negated),
            Expr::Or(items, _) if !negated => self.union(items, false),
            Expr::And(items, _) if negated => self.union(items, true),
            Expr::And(items, _) => self.product(items, false),
            Expr::Or(items, _) => self.product(items, true),
            leaf => Ok(self.leaf(leaf, negated)),
        }
    }

    fn union(&self, items: &[Expr], negated: bool) -> Result<Vec<Cube>, TooManyTerms> {
        let mut out = Vec::new();
        for item in items {
            out.extend(self.dnf(item, negated)?);
            if out.len() > MAX_TERMS_PER_RULE {
                return Err(TooManyTerms);
            }
        }
        Ok(out)
    }

    fn product(&self, items: &[Expr], negated: bool) -> Result<Vec<Cube>, TooManyTerms> {
        let mut acc = vec![self.universe.clone()];
        for item in items {
            let part = self.dnf(item, negated)?;
            let mut next = Vec::new();
            for a in &acc {
                for b in &part {
                    let c = cube_and(a, b);
                    if !cube_is_empty(&c) {
                        next.push(c);
                    }
                }
            }
            if next.len() > MAX_TERMS_PER_RULE {
                return Err(TooManyTerms);
            }
            acc = next;
            if acc.is_empty() {
                break;
            }
        }
        Ok(acc)
    }

    fn leaf(&self, expr: &Expr, negated: bool) -> Vec<Cube> {
        let (domain, set) = match self.predicate(expr) {
            Pred::Const(b) => {
                return if b != negated {
                    vec![self.universe.clone()]
                } else {
                    Vec::new()
                };
            }
            Pred::On(domain, set) => (domain, set),
        };
        let live = &self.universe[domain];
        let set = if negated {
            live.minus(&set)
        } else {
            set.and(live)
        };
        if set.is_empty() {
            return Vec::new();
        }
        let mut cube = self.universe.clone();
        cube[domain] = set;
        vec![cube]
    }

    fn domain_of(&self, attr: &str) -> Option<usize> {
        self.domains.iter().position(|d| d.attr == attr)
    }

    fn predicate(&self, expr: &Expr) -> Pred {
        match expr {
            Expr::Compare {
                left, op, right, ..
            } => match (left, right) {
                (Operand::Attr(a, _), Operand::Lit(l)) => self.compare(a, *op, l),
                (Operand::Lit(l), Operand::Attr(a, _)) => self.compare(a, op.flipped(), l),
                (Operand::Lit(l), Operand::Lit(r)) => {
                    Pred::Const(const_compare(&literal(&l.value), *op, &literal(&r.value)))
                }
                // refused by `check` (E033); never true
                (Operand::Attr(..), Operand::Attr(..)) => Pred::Const(false),
            },
            Expr::In {
                operand,
                negated,
                list,
                ..
            } => match operand {
                Operand::Attr(a, _) => {
                    let values: Vec<Scalar> = list.iter().map(|l| literal(&l.value)).collect();
                    self.classes_where(a, |d, c| {
                        let hit = class_value_in(d, c, &values);
                        // absent is in no list and outside every list
                        if c == d.absent() {
                            *negated
                        } else {
                            hit != *negated
                        }
                    })
                }
                Operand::Lit(l) => {
                    let v = literal(&l.value);
                    let hit = list.iter().any(|x| literal(&x.value) == v);
                    Pred::Const(hit != *negated)
                }
            },
            Expr::Bare(Operand::Attr(a, _)) => {
                self.classes_where(a, |d, c| matches!(d.kind, DomainKind::Bool) && c == 1)
            }
            Expr::Bare(Operand::Lit(l)) => Pred::Const(literal(&l.value) == Scalar::Bool(true)),
            Expr::Not(..) | Expr::And(..) | Expr::Or(..) => Pred::Const(false),
        }
    }

    fn compare(&self, attr: &str, op: CmpOp, lit: &Literal) -> Pred {
        let v = literal(&lit.value);
        // `tenant == "t7"` on an enum of thousands: one class, found by lookup, rather
        // than every class tested (the result is the same as `class_compare`'s)
        if let (Some(i), Scalar::Str(s), CmpOp::Eq | CmpOp::Ne) = (self.domain_of(attr), &v, op) {
            let d = &self.domains[i];
            if matches!(d.kind, DomainKind::Values { .. }) {
                let mut set = ClassSet::empty(d.classes());
                if let Some(c) = d.class_of_value(s) {
                    set.insert(c);
                }
                if op == CmpOp::Ne {
                    set = ClassSet::all(d.classes()).minus(&set);
                }
                return Pred::On(i, set);
            }
        }
        self.classes_where(attr, |d, c| class_compare(d, c, op, &v))
    }

    fn classes_where(&self, attr: &str, truth: impl Fn(&Domain, u16) -> bool) -> Pred {
        let Some(i) = self.domain_of(attr) else {
            return Pred::Const(false);
        };
        let d = &self.domains[i];
        let mut set = ClassSet::empty(d.classes());
        for c in 0..d.classes() {
            if truth(d, c) {
                set.insert(c);
            }
        }
        Pred::On(i, set)
    }
}

enum Pred {
    Const(bool),
    On(usize, ClassSet),
}

fn const_compare(a: &Scalar, op: CmpOp, b: &Scalar) -> bool {
    match (a, b) {
        (Scalar::Num(x), Scalar::Num(y)) => super::value::compare_numbers(*x, op, *y),
        _ => match op {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            _ => false,
        },
    }
}

/// Whether every value of class `c` is in `values` (classes never straddle a listed value).
fn class_value_in(d: &Domain, c: u16, values: &[Scalar]) -> bool {
    match &d.kind {
        DomainKind::Values { values: vs, .. } => vs
            .get(c as usize)
            .is_some_and(|v| values.iter().any(|x| matches!(x, Scalar::Str(s) if s == v))),
        DomainKind::Numeric { .. } => match d.bounds(c) {
            Some((t, _, true)) => values
                .iter()
                .any(|x| matches!(x, Scalar::Num(n) if *n == t)),
            _ => false,
        },
        DomainKind::Bool => c < 2 && values.contains(&Scalar::Bool(c == 1)),
    }
}

/// The truth of `value OP lit` for every value of class `c`. An absent attribute
/// equals nothing: `==` and orderings are false, `!=` is true.
pub fn class_compare(d: &Domain, c: u16, op: CmpOp, lit: &Scalar) -> bool {
    if c == d.absent() {
        return op == CmpOp::Ne;
    }
    match (&d.kind, lit) {
        (DomainKind::Values { values, .. }, Scalar::Str(s)) => {
            let eq = values.get(c as usize).is_some_and(|v| v == s);
            match op {
                CmpOp::Eq => eq,
                CmpOp::Ne => !eq,
                _ => false,
            }
        }
        (DomainKind::Bool, Scalar::Bool(b)) => {
            let eq = (c == 1) == *b;
            match op {
                CmpOp::Eq => eq,
                CmpOp::Ne => !eq,
                _ => false,
            }
        }
        (DomainKind::Numeric { .. }, Scalar::Num(t)) => {
            let Some((lo, hi, point)) = d.bounds(c) else {
                return false;
            };
            let t = *t;
            if point {
                return const_compare(&Scalar::Num(lo), op, &Scalar::Num(t));
            }
            // an open interval lies wholly on one side of every threshold
            match op {
                CmpOp::Eq => false,
                CmpOp::Ne => true,
                CmpOp::Lt | CmpOp::Le => hi <= t,
                CmpOp::Gt | CmpOp::Ge => lo >= t,
            }
        }
        _ => op == CmpOp::Ne,
    }
}
