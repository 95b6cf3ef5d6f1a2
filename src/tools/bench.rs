//! `rulec bench`: decisions per second of the compiled table against the plain
//! first-match interpreter, on the same generated requests in the same process.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::compile::value::Scalar;
use crate::compile::{interp, Routing};

pub struct Report {
    pub rules: usize,
    pub layout: &'static str,
    pub requests: usize,
    pub table_ns: f64,
    pub interpreter_ns: f64,
    pub agreement: usize,
}

impl Report {
    pub fn speedup(&self) -> f64 {
        self.interpreter_ns / self.table_ns.max(f64::MIN_POSITIVE)
    }
}

/// A small deterministic generator, so runs are comparable.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Requests spread over every class of every tested attribute, absent included.
pub fn requests(routing: &Routing, count: usize, seed: u64) -> Vec<Vec<Option<Scalar>>> {
    let mut rng = XorShift(seed | 1);
    let domains = &routing.table.domains;
    (0..count)
        .map(|_| {
            let mut values = vec![None; routing.schema.attributes.len()];
            for (d, domain) in domains.iter().enumerate() {
                let live: Vec<u16> = (0..domain.classes())
                    .filter(|c| domain.live[*c as usize])
                    .collect();
                let class = live[rng.below(live.len())];
                values[routing.table.slots[d] as usize] = domain.representative(class);
            }
            values
        })
        .collect()
}

/// Repeats `f` over all requests until at least `min` has passed; ns per request.
fn time_per(requests: usize, min: Duration, mut f: impl FnMut() -> usize) -> f64 {
    let mut rounds = 0u64;
    let start = Instant::now();
    loop {
        black_box(f());
        rounds += 1;
        if start.elapsed() >= min {
            break;
        }
    }
    start.elapsed().as_nanos() as f64 / (rounds as f64 * requests.max(1) as f64)
}

/// The plain first-match interpreter over a routing's conditions, with attributes
/// found by name as an interpreter would: the baseline the table is measured against.
pub struct Interpreter<'r> {
    routing: &'r Routing,
    slot_of: HashMap<&'r str, usize>,
}

impl<'r> Interpreter<'r> {
    pub fn new(routing: &'r Routing) -> Interpreter<'r> {
        let slot_of = routing
            .schema
            .attributes
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.as_str(), i))
            .collect();
        Interpreter { routing, slot_of }
    }

    pub fn decide(&self, values: &[Option<Scalar>]) -> Option<u32> {
        let get = |name: &str| {
            self.slot_of
                .get(name)
                .and_then(|i| values.get(*i)?.as_ref())
        };
        interp::first_match(&self.routing.conditions, &get).map(|r| r as u32)
    }
}

pub fn run(routing: &Routing, count: usize, seed: u64, min: Duration) -> Report {
    let reqs = requests(routing, count, seed);
    let interpreter = Interpreter::new(routing);
    let interpret = |values: &[Option<Scalar>]| interpreter.decide(values);
    let agreement = reqs
        .iter()
        .filter(|v| routing.table.decide(v) == interpret(v))
        .count();
    let table_ns = time_per(reqs.len(), min, || {
        reqs.iter()
            .filter_map(|v| routing.table.decide(black_box(v)))
            .count()
    });
    let interpreter_ns = time_per(reqs.len(), min, || {
        reqs.iter().filter_map(|v| interpret(black_box(v))).count()
    });
    Report {
        rules: routing.table.rules.len(),
        layout: routing.table.layout_name(),
        requests: reqs.len(),
        table_ns,
        interpreter_ns,
        agreement,
    }
}
