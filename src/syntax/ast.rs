//! The AST of routing conditions and literal values. Positions are byte ranges within
//! the condition text; they are ignored by equality, so `parse(print(e)) == e` compares
//! structure only.

use std::ops::Range;

/// A byte range inside the condition text; equal to every other `Pos`.
#[derive(Debug, Clone, Default)]
pub struct Pos(pub Range<usize>);

impl PartialEq for Pos {
    fn eq(&self, _: &Pos) -> bool {
        true
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `a || b || ...` with at least two operands
    Or(Vec<Expr>, Pos),
    /// `a && b && ...` with at least two operands
    And(Vec<Expr>, Pos),
    Not(Box<Expr>, Pos),
    Compare {
        left: Operand,
        op: CmpOp,
        right: Operand,
        pos: Pos,
    },
    In {
        operand: Operand,
        negated: bool,
        list: Vec<Literal>,
        pos: Pos,
    },
    /// a bare operand used as a condition: a boolean attribute or `true` / `false`
    Bare(Operand),
}

impl Expr {
    pub fn pos(&self) -> &Range<usize> {
        match self {
            Expr::Or(_, p) | Expr::And(_, p) | Expr::Not(_, p) => &p.0,
            Expr::Compare { pos, .. } | Expr::In { pos, .. } => &pos.0,
            Expr::Bare(o) => o.pos(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }

    /// The operator with its operands swapped: `a < b` ⇔ `b > a`.
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Attr(String, Pos),
    Lit(Literal),
}

impl Operand {
    pub fn pos(&self) -> &Range<usize> {
        match self {
            Operand::Attr(_, p) => &p.0,
            Operand::Lit(l) => &l.pos.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    pub value: Value,
    pub pos: Pos,
}

/// A literal value of the rule language.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
    Duration(Duration),
    /// dollars
    Money(f64),
    /// percent points: `5%` is `5.0`
    Percent(f64),
    Rate(Rate),
}

/// A duration in whole milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    pub ms: u64,
}

impl Duration {
    pub fn from_secs(s: u64) -> Duration {
        Duration { ms: s * 1000 }
    }
}

/// `count` events per `per`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub count: f64,
    pub per: Duration,
}

impl Rate {
    pub fn per_second(&self) -> f64 {
        self.count * 1000.0 / self.per.ms.max(1) as f64
    }
}

/// A five-field cron schedule, each field the set of values it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    pub minutes: Vec<u8>,
    pub hours: Vec<u8>,
    pub days_of_month: Vec<u8>,
    pub months: Vec<u8>,
    pub days_of_week: Vec<u8>,
}
