//! Stage 7: bundles. A bundle is the compiled policy as JSON: a format version, the
//! SHA-256 of the canonical encoding of its content, and the content. Compiling the
//! same policy twice gives the same bytes; loading verifies version and hash, and
//! checks the table's shape so that a crafted bundle cannot make a decision panic.

pub mod spec;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::check::Analysis;
use crate::compile::request::RequestSchema;
use crate::compile::table::{DecisionTable, Layout};
use crate::compile::Routing;
use crate::policy::{Policy, Service, Symbols};

use spec::*;

/// The format this version writes and reads.
pub const FORMAT: &str = "rulec-bundle/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Content {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    pub schema: RequestSchema,
    pub table: DecisionTable,
    pub providers: Vec<ProviderSpec>,
    pub models: Vec<ModelSpec>,
    pub pools: Vec<PoolSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_affinity: Option<AffinitySpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub downgrades: Vec<DowngradeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budgets: Option<BudgetSpec>,
    /// health, cost-window and failover state machines
    pub machines: crate::machines::Machines,
    pub channels: Vec<ChannelSpec>,
    pub notifications: Vec<NotifySpec>,
    pub templates: Vec<TemplateSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    /// `sha256:` and the hex digest of the canonical encoding of `content`
    pub hash: String,
    pub content: Content,
}

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    /// not JSON, or cut short
    Malformed(String),
    /// a format this version cannot read
    Format(String),
    /// the JSON is not a bundle's shape
    Shape(String),
    /// the content does not match its hash: edited or corrupted
    Hash { expected: String, actual: String },
    /// the table's dimensions do not fit together
    Inconsistent(String),
    /// the budget day's time zone is not in this machine's zone database
    UnknownZone(String),
}

impl std::fmt::Display for BundleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BundleError::Malformed(e) => write!(f, "the bundle is not valid JSON (truncated or corrupted?): {e}"),
            BundleError::Format(v) => write!(f, "the bundle has format `{v}`, but this rulec reads `{FORMAT}`; compile the policy again"),
            BundleError::Shape(e) => write!(f, "the file is not a rulec bundle: {e}"),
            BundleError::Hash { expected, actual } => write!(
                f,
                "the bundle's content does not match its hash (it says {expected}, the content hashes to {actual}): it was edited or corrupted after compiling"
            ),
            BundleError::Inconsistent(e) => write!(f, "the bundle's decision table is inconsistent: {e}"),
            BundleError::UnknownZone(z) => write!(
                f,
                "the bundle's budget day follows the time zone `{z}`, which this machine's time zone database does not have: update the zone data (`TZDIR`, /usr/share/zoneinfo) or choose a zone it has"
            ),
        }
    }
}

impl std::error::Error for BundleError {}

/// The canonical encoding: compact JSON, fields in declaration order.
pub fn canonical(content: &Content) -> Vec<u8> {
    serde_json::to_vec(content).unwrap_or_default()
}

pub fn digest(content: &Content) -> String {
    let hash = Sha256::digest(canonical(content));
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

impl Bundle {
    /// The bundle of a policy and its compiled routing.
    pub fn new(policy: &Policy, routing: &Routing) -> Bundle {
        let service = Service::new(policy, &Symbols::new(policy));
        Bundle::build(policy, &service, routing)
    }

    /// [`Bundle::new`] for a policy already analysed.
    pub fn analysed(analysis: &Analysis<'_>, routing: &Routing) -> Bundle {
        Bundle::build(analysis.policy, &analysis.service, routing)
    }

    fn build(policy: &Policy, service: &Service<'_>, routing: &Routing) -> Bundle {
        let content = Content {
            policy_version: policy.version.as_ref().map(|v| v.value.clone()),
            schema: routing.schema.clone(),
            table: routing.table.clone(),
            providers: providers(policy),
            models: models(policy),
            pools: pools(policy),
            session_affinity: affinity(policy),
            failover: failover(policy),
            downgrades: downgrades(policy, service),
            budgets: budgets(policy),
            machines: crate::machines::compile(policy),
            channels: channels(policy),
            notifications: notifications(policy),
            templates: templates(policy),
        };
        Bundle {
            format: FORMAT.to_string(),
            hash: digest(&content),
            content,
        }
    }

    /// The bytes written to disk: compact JSON (large tables stay small; `jq .`
    /// shows it indented) and a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Reads and verifies a bundle.
    pub fn load(bytes: &[u8]) -> Result<Bundle, BundleError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Malformed(e.to_string()))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => return Err(BundleError::Format(other.to_string())),
            None => return Err(BundleError::Shape("it has no `format`".into())),
        }
        let mut bundle: Bundle =
            serde_json::from_value(value).map_err(|e| BundleError::Shape(e.to_string()))?;
        let actual = digest(&bundle.content);
        if actual != bundle.hash {
            return Err(BundleError::Hash {
                expected: bundle.hash.clone(),
                actual,
            });
        }
        validate(&bundle.content)?;
        bundle.content.table.rebuild();
        Ok(bundle)
    }
}

/// Dimensions that `decide` relies on.
fn validate(c: &Content) -> Result<(), BundleError> {
    let t = &c.table;
    let bad = |m: String| Err(BundleError::Inconsistent(m));
    if t.slots.len() != t.domains.len() {
        return bad(format!(
            "{} slots for {} attributes",
            t.slots.len(),
            t.domains.len()
        ));
    }
    if let Some(s) = t
        .slots
        .iter()
        .find(|s| **s as usize >= c.schema.attributes.len())
    {
        return bad(format!("slot {s} is outside the request schema"));
    }
    c.machines.validate().map_err(BundleError::Inconsistent)?;
    // the budget day must be computable here: a zone unknown to this machine would
    // otherwise turn the day silently into another one
    if let Some(zone) = c.budgets.as_ref().and_then(|b| b.time_zone.as_ref()) {
        if jiff::tz::db().get(zone).is_err() {
            return Err(BundleError::UnknownZone(zone.clone()));
        }
    }
    let models: std::collections::HashSet<&str> =
        c.models.iter().map(|m| m.name.as_str()).collect();
    for p in &c.pools {
        if p.weights.len() != p.models.len() {
            return bad(format!(
                "pool `{}` has {} weights for {} models",
                p.name,
                p.weights.len(),
                p.models.len()
            ));
        }
        if let Some(m) = p.models.iter().find(|m| !models.contains(m.as_str())) {
            return bad(format!(
                "pool `{}` lists `{m}`, which is not a model of the bundle",
                p.name
            ));
        }
    }
    let pools: std::collections::HashSet<&str> = c.pools.iter().map(|p| p.name.as_str()).collect();
    for r in &t.rules {
        let known = match r.target.kind {
            crate::compile::table::TargetKind::Model => models.contains(r.target.name.as_str()),
            crate::compile::table::TargetKind::Pool => pools.contains(r.target.name.as_str()),
        };
        if !known {
            return bad(format!(
                "rule `{}` routes to `{}`, which the bundle does not declare",
                r.id, r.target.name
            ));
        }
    }
    let rules = t.rules.len() as u32;
    for d in &t.domains {
        let n = match &d.kind {
            crate::compile::domain::DomainKind::Values { values, .. } => values.len(),
            crate::compile::domain::DomainKind::Numeric { thresholds, .. } => thresholds.len() * 2,
            crate::compile::domain::DomainKind::Bool => 0,
        };
        if n > 60_000 {
            return bad(format!("`{}` has too many classes", d.attr));
        }
    }
    match &t.layout {
        Layout::Flat { strides, cells } => {
            if strides.len() != t.domains.len() {
                return bad("strides do not match the attributes".into());
            }
            let size = t
                .domains
                .iter()
                .try_fold(1usize, |acc, d| acc.checked_mul(d.classes() as usize));
            if size != Some(cells.len()) {
                return bad("the number of cells does not match the classes".into());
            }
            let mut expect = 1u64;
            for (d, s) in t.domains.iter().zip(strides).rev() {
                if u64::from(*s) != expect {
                    return bad("strides do not match the classes".into());
                }
                expect *= u64::from(d.classes());
            }
            if cells
                .iter()
                .any(|c| *c != crate::compile::table::NO_MATCH && *c >= rules)
            {
                return bad("a cell names a rule that does not exist".into());
            }
        }
        Layout::Bitsets(b) => {
            if b.constraints.len() != t.domains.len()
                || b.words as usize != b.term_rule.len().div_ceil(64).max(1)
            {
                return bad("bitsets do not match the attributes".into());
            }
            for (d, cons) in t.domains.iter().zip(&b.constraints) {
                let bad_class = cons.iter().any(|c| {
                    c.term as usize >= b.term_rule.len()
                        || c.runs.iter().any(|[a, b]| a > b || *b >= d.classes())
                });
                if bad_class {
                    return bad(format!(
                        "the constraints of `{}` name boxes or classes that do not exist",
                        d.attr
                    ));
                }
            }
            if b.term_rule.iter().any(|r| *r >= rules) {
                return bad("a box names a rule that does not exist".into());
            }
        }
    }
    Ok(())
}
