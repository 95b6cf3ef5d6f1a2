//! A deterministic generator of large, *clean* routing policies for the benchmarks.
//!
//! `policy(n, seed)` writes one YAML document with three providers, twenty models,
//! a `request:` schema with four extra attributes, four load-balancing pools and `n`
//! routing rules followed by a fallback. The conditions mix every operator of the rule
//! language (`==`, `!=`, `in`, `not in`, orderings on numbers and durations, `&&`, `||`,
//! `!`, parentheses, bare booleans) and the YAML scalar styles they are written in
//! (plain, single-quoted, double-quoted with escapes), so checking exercises every
//! stage. Nothing in the output should draw a diagnostic: rules that select task types
//! only target models (or pools of models) with every capability those types require,
//! lists never repeat a value, and numeric comparisons stay inside attribute ranges.

use std::fmt::Write as _;

/// xorshift64*: small, fast and good enough to vary the generated rules.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() >> 33) as usize % n
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `k` distinct items of `items`, in random order.
    pub fn distinct<'a, T>(&mut self, items: &'a [T], k: usize) -> Vec<&'a T> {
        let mut idx: Vec<usize> = (0..items.len()).collect();
        let k = k.min(idx.len());
        for i in 0..k {
            let j = i + self.below(idx.len() - i);
            idx.swap(i, j);
        }
        idx[..k].iter().map(|&i| &items[i]).collect()
    }
}

/// Task types and the capability each requires (mirrors `BUILTIN_TASK_TYPES`).
const TASK_TYPES: &[(&str, Option<&str>)] = &[
    ("general", None),
    ("simple_qa", Some("simple_qa")),
    ("classification", Some("classification")),
    ("extraction", Some("extraction")),
    ("summarization", Some("summarization")),
    ("content_creation", Some("content_writing")),
    ("code_generation", Some("code_generation")),
    ("critical_analysis", Some("analysis")),
];

const TASK_CAPS: &[&str] = &[
    "simple_qa",
    "classification",
    "extraction",
    "summarization",
    "content_writing",
    "code_generation",
    "analysis",
];

const COMPLEXITIES: &[&str] = &["simple", "moderate", "complex"];
const REGIONS: &[&str] = &[
    "us_east",
    "us_west",
    "eu_central",
    "eu_west",
    "ap_south",
    "ap_northeast",
];
const PRIORITIES: &[&str] = &["cost", "quality", "latency", "balanced"];
const MODEL_COUNT: usize = 20;
/// Models `m00..m04` have every capability.
const FULL_MODELS: usize = 5;
const TENANTS: usize = 50;

struct Provider {
    name: &'static str,
    kind: &'static str,
    env: &'static str,
}

const PROVIDERS: &[Provider] = &[
    Provider {
        name: "anthropic",
        kind: "anthropic",
        env: "ANTHROPIC_API_KEY",
    },
    Provider {
        name: "openai",
        kind: "openai",
        env: "OPENAI_API_KEY",
    },
    Provider {
        name: "local",
        kind: "openai_compatible",
        env: "LOCAL_API_KEY",
    },
];

struct Model {
    name: String,
    caps: Vec<&'static str>,
}

struct Pool {
    name: &'static str,
    members: Vec<usize>,
    weights: Vec<u32>,
}

/// What the generator declared, for choosing rule targets.
struct World {
    models: Vec<Model>,
    pools: Vec<Pool>,
    tenants: Vec<String>,
}

impl World {
    fn new(rng: &mut Rng) -> World {
        let models = (0..MODEL_COUNT)
            .map(|i| {
                let caps = if i < FULL_MODELS {
                    TASK_CAPS.to_vec()
                } else {
                    let k = 1 + rng.below(4);
                    let mut caps: Vec<&'static str> =
                        rng.distinct(TASK_CAPS, k).into_iter().copied().collect();
                    caps.sort_unstable();
                    caps
                };
                Model {
                    name: format!("m{i:02}"),
                    caps,
                }
            })
            .collect();
        let pools = vec![
            Pool {
                name: "pool_quality",
                members: vec![0, 1, 2],
                weights: vec![50, 30, 20],
            },
            Pool {
                name: "pool_full",
                members: vec![3, 4],
                weights: vec![60, 40],
            },
            Pool {
                name: "pool_budget",
                members: vec![10, 11, 12, 13],
                weights: vec![40, 30, 20, 10],
            },
            Pool {
                name: "pool_mixed",
                members: vec![2, 7, 15],
                weights: vec![34, 33, 33],
            },
        ];
        World {
            models,
            pools,
            tenants: (0..TENANTS).map(|i| format!("t{i:02}")).collect(),
        }
    }

    fn has_all(&self, model: usize, caps: &[&str]) -> bool {
        caps.iter().all(|c| self.models[model].caps.contains(c))
    }

    /// A `model:` or `pool:` line whose every model has `caps`.
    fn target(&self, rng: &mut Rng, caps: &[&str]) -> String {
        if rng.chance(1, 8) {
            let able: Vec<&Pool> = self
                .pools
                .iter()
                .filter(|p| p.members.iter().all(|&m| self.has_all(m, caps)))
                .collect();
            if !able.is_empty() {
                return format!("pool: {}", rng.pick(&able).name);
            }
        }
        let able: Vec<usize> = (0..self.models.len())
            .filter(|&m| self.has_all(m, caps))
            .collect();
        let m = *rng.pick(&able); // never empty: the full models have everything
        if rng.chance(1, 2) {
            format!("model: {}", self.models[m].name)
        } else {
            format!("model: \"{}\"", self.models[m].name)
        }
    }
}

/// Builds one condition and remembers which task types it may select.
struct CondGen<'w> {
    world: &'w World,
    /// capabilities required by task types the condition names positively
    caps: Vec<&'static str>,
}

impl CondGen<'_> {
    fn quoted_list(values: &[&str]) -> String {
        let items: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
        format!("[{}]", items.join(", "))
    }

    fn need_task(&mut self, task: &str) {
        if let Some((_, Some(cap))) = TASK_TYPES.iter().find(|(t, _)| *t == task) {
            if !self.caps.contains(cap) {
                self.caps.push(cap);
            }
        }
    }

    /// One comparison or membership test.
    fn atom(&mut self, rng: &mut Rng) -> String {
        match rng.below(12) {
            0 => format!("task_complexity == \"{}\"", rng.pick(COMPLEXITIES)),
            1 => {
                let vs: Vec<&str> = rng.distinct(COMPLEXITIES, 2).into_iter().copied().collect();
                let op = if rng.chance(1, 2) { "in" } else { "not in" };
                format!("task_complexity {op} {}", Self::quoted_list(&vs))
            }
            2 => {
                let (t, _) = *rng.pick(TASK_TYPES);
                if rng.chance(1, 3) {
                    format!("task_type != \"{t}\"")
                } else {
                    self.need_task(t);
                    format!("task_type == \"{t}\"")
                }
            }
            3 => {
                let k = 2 + rng.below(2);
                let ts: Vec<&str> = rng
                    .distinct(TASK_TYPES, k)
                    .into_iter()
                    .map(|(t, _)| *t)
                    .collect();
                if rng.chance(1, 3) {
                    format!("task_type not in {}", Self::quoted_list(&ts))
                } else {
                    for t in &ts {
                        self.need_task(t);
                    }
                    format!("task_type in {}", Self::quoted_list(&ts))
                }
            }
            4 => {
                let op = if rng.chance(3, 4) { "==" } else { "!=" };
                format!("tenant {op} \"{}\"", rng.pick(&self.world.tenants))
            }
            5 => {
                let k = 2 + rng.below(4);
                let ts: Vec<&str> = rng
                    .distinct(&self.world.tenants, k)
                    .into_iter()
                    .map(String::as_str)
                    .collect();
                let op = if rng.chance(3, 4) { "in" } else { "not in" };
                format!("tenant {op} {}", Self::quoted_list(&ts))
            }
            6 => {
                let op = *rng.pick(&["==", "!="]);
                format!("region {op} \"{}\"", rng.pick(REGIONS))
            }
            7 => {
                let k = 2 + rng.below(3);
                let vs: Vec<&str> = rng.distinct(REGIONS, k).into_iter().copied().collect();
                let op = if rng.chance(1, 2) { "in" } else { "not in" };
                format!("region {op} {}", Self::quoted_list(&vs))
            }
            8 => {
                // strictly inside `estimated_tokens`'s range (min 0), so never constant
                let op = *rng.pick(&["<", "<=", ">", ">="]);
                let k = 1 + rng.below(200) * 1000;
                if rng.chance(1, 4) {
                    format!("estimated_tokens {op} {}_000", 1 + rng.below(199))
                } else {
                    format!("estimated_tokens {op} {k}")
                }
            }
            9 => {
                let op = *rng.pick(&["<", "<=", ">", ">="]);
                let d = match rng.below(3) {
                    0 => format!("{}ms", 50 + rng.below(20) * 50),
                    1 => format!("{}s", 1 + rng.below(30)),
                    _ => format!("{}m", 1 + rng.below(5)),
                };
                format!("latency_budget {op} {d}")
            }
            10 => match rng.below(3) {
                0 => "is_streaming".to_string(),
                1 => "!is_streaming".to_string(),
                _ => format!("is_streaming == {}", rng.pick(&["true", "false"])),
            },
            _ => format!("session_id != \"s{:04}\"", rng.below(10_000)),
        }
    }

    /// A condition of up to `depth` levels of `&&` / `||` / `!` / parentheses.
    fn expr(&mut self, rng: &mut Rng, depth: usize) -> String {
        if depth == 0 || rng.chance(2, 5) {
            return self.atom(rng);
        }
        match rng.below(5) {
            0 | 1 => {
                let n = 2 + rng.below(2);
                let parts: Vec<String> = (0..n).map(|_| self.group(rng, depth - 1)).collect();
                let op = if rng.chance(1, 6) { " and " } else { " && " };
                parts.join(op)
            }
            2 | 3 => {
                let n = 2 + rng.below(2);
                let parts: Vec<String> = (0..n).map(|_| self.group(rng, depth - 1)).collect();
                let op = if rng.chance(1, 6) { " or " } else { " || " };
                parts.join(op)
            }
            _ => format!("!({})", self.expr(rng, depth - 1)),
        }
    }

    /// A sub-expression, parenthesised when it is compound.
    fn group(&mut self, rng: &mut Rng, depth: usize) -> String {
        let e = self.expr(rng, depth);
        if e.contains("&&") || e.contains("||") || e.contains(" and ") || e.contains(" or ") {
            format!("({e})")
        } else {
            e
        }
    }
}

/// The condition as a YAML scalar: plain when YAML allows it, otherwise quoted.
fn yaml_scalar(rng: &mut Rng, cond: &str) -> String {
    let plain_ok = cond.starts_with(|c: char| c.is_ascii_alphabetic() || c == '(')
        && !cond.contains(": ")
        && !cond.contains(" #");
    match rng.below(6) {
        0 => format!("\"{}\"", cond.replace('\\', "\\\\").replace('"', "\\\"")),
        1 | 2 => format!("'{}'", cond.replace('\'', "''")),
        _ if plain_ok => cond.to_string(),
        _ => format!("'{}'", cond.replace('\'', "''")),
    }
}

/// A clean policy with `rules` routing rules (plus the fallback), deterministic in `seed`.
pub fn policy(rules: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let world = World::new(&mut rng);
    let mut out = String::with_capacity(1024 + rules * 160);
    let o = &mut out;

    let _ = writeln!(
        o,
        "# generated by benches/policy_gen: {rules} rules, seed {seed}"
    );
    o.push_str("providers:\n");
    for (i, p) in PROVIDERS.iter().enumerate() {
        let _ = writeln!(o, "  {}:", p.name);
        let _ = writeln!(o, "    kind: {}", p.kind);
        let _ = writeln!(o, "    base_url: \"http://127.0.0.1:{}/v1\"", 9 + i);
        let _ = writeln!(o, "    api_key_env: {}", p.env);
    }

    o.push_str("request:\n");
    o.push_str("  tenant:\n    type: enum\n    description: the customer a request is billed to\n    values: [");
    o.push_str(&world.tenants.join(", "));
    o.push_str("]\n");
    o.push_str("  region:\n    type: enum\n    values: [");
    o.push_str(&REGIONS.join(", "));
    o.push_str("]\n");
    o.push_str("  latency_budget:\n    type: duration\n");
    o.push_str("  is_streaming:\n    type: bool\n");

    o.push_str("gateway:\n  version: \"v2\"\n  models:\n");
    for (i, m) in world.models.iter().enumerate() {
        let p = &PROVIDERS[i % PROVIDERS.len()];
        let caps: Vec<String> = std::iter::once("general_purpose")
            .chain(m.caps.iter().copied())
            .map(|c| format!("\"{c}\""))
            .collect();
        let _ = writeln!(o, "    {}:", m.name);
        let _ = writeln!(o, "      provider: \"{}\"", p.name);
        let _ = writeln!(o, "      model: \"{}-model-{i}\"", p.kind);
        let _ = writeln!(
            o,
            "      max_tokens: {}",
            [32_000, 64_000, 128_000, 200_000][i % 4]
        );
        let _ = writeln!(o, "      cost_per_token: 0.00000{}", 1 + i % 9);
        let _ = writeln!(o, "      status: active");
        let _ = writeln!(o, "      capabilities: [{}]", caps.join(", "));
        let _ = writeln!(o, "      quality: 0.9");
    }
    o.push_str("  routing_strategy:\n    policy: first_match\n    rules:\n");
    for i in 0..rules {
        let mut g = CondGen {
            world: &world,
            caps: Vec::new(),
        };
        let cond = g.expr(&mut rng, 3);
        let target = world.target(&mut rng, &g.caps);
        let first = if rng.chance(1, 3) {
            let _ = writeln!(o, "      - name: rule_{i}");
            "        "
        } else {
            "      - "
        };
        let _ = writeln!(o, "{first}if: {}", yaml_scalar(&mut rng, &cond));
        let _ = writeln!(o, "        {target}");
        if rng.chance(1, 4) {
            let _ = writeln!(o, "        priority: {}", rng.pick(PRIORITIES));
        }
    }
    let _ = writeln!(o, "      - fallback: {}", world.models[0].name);

    o.push_str("load_balancing:\n  strategy: weighted_round_robin\n");
    o.push_str("  health_check:\n    interval: 30s\n    timeout: 5s\n    unhealthy_threshold: 3\n");
    o.push_str("  pools:\n");
    for (i, p) in world.pools.iter().enumerate() {
        let members: Vec<&str> = p
            .members
            .iter()
            .map(|&m| world.models[m].name.as_str())
            .collect();
        let weights: Vec<String> = p.weights.iter().map(u32::to_string).collect();
        debug_assert_eq!(p.weights.iter().sum::<u32>(), 100);
        let _ = writeln!(o, "    {}:", p.name);
        let _ = writeln!(o, "      models: [{}]", members.join(", "));
        let _ = writeln!(o, "      weight: [{}]", weights.join(", "));
        let _ = writeln!(o, "      max_concurrent: {}", 10 * (i + 1));
        if i % 2 == 0 {
            o.push_str("      health_check:\n        interval: 10s\n        timeout: 2s\n        unhealthy_threshold: 3\n");
        }
    }
    o.push_str("  session_affinity:\n    enabled: true\n    ttl: 15m\n");
    out
}
