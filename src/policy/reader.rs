//! Reading typed values out of the spanned YAML tree. Every mistake becomes a
//! diagnostic and reading goes on, so one run reports every problem of a file.

use super::model::{Name, Spanned};
use crate::diag::suggest::did_you_mean;
use crate::diag::{Code, Diagnostic};
use crate::load::{Kind, Node};
use crate::source::Span;
use crate::syntax::SyntaxError;

/// Collects the diagnostics of one decoding pass.
#[derive(Default)]
pub struct Ctx {
    pub diags: Vec<Diagnostic>,
}

/// How to write a value of the expected shape: every E007 says how, in the policy and
/// in test files alike.
fn shape_help(expected: &str) -> String {
    match expected {
        e if e.starts_with("a mapping") => {
            "write `key: value` lines indented under it, or `{key: value}`".to_string()
        }
        "a list" => "write one item per line starting with `- `, or `[a, b]`".to_string(),
        "a string" => {
            "write the text; quote it if it reads as a number, `true` or `null`".to_string()
        }
        "a number" | "a whole number" => {
            "write the number without quotes or units, e.g. `8000`".to_string()
        }
        "`true` or `false`" => "write `true` or `false`, without quotes".to_string(),
        other => format!("write {other} here"),
    }
}

/// The one way to build an E006: the help is not optional, so no missing key is
/// reported without saying what to write.
pub fn missing_key(
    span: Span,
    message: impl Into<String>,
    label: impl Into<String>,
    help: impl Into<String>,
) -> Diagnostic {
    Diagnostic::new(Code::MissingKey, span, message)
        .primary_label(label)
        .help(help)
}

/// Reads a YAML mapping key by key; `finish` reports the keys nobody asked for.
pub struct MapReader<'a> {
    /// the span that names this mapping (its key in the parent), for "missing" errors
    owner: Span,
    what: String,
    entries: &'a [(Node, Node)],
    known: Vec<&'static str>,
    used: Vec<bool>,
}

impl Ctx {
    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    pub fn wrong_type(&mut self, node: &Node, expected: &str, what: &str) {
        self.push(
            Diagnostic::new(
                Code::WrongType,
                node.span,
                format!("{what} must be {expected}, not {}", node.describe()),
            )
            .primary_label(format!("expected {expected}"))
            .help(shape_help(expected)),
        );
    }

    /// Opens a mapping; `owner` is the span naming it, `what` describes it in messages.
    pub fn map<'a>(&mut self, node: &'a Node, owner: Span, what: &str) -> Option<MapReader<'a>> {
        match &node.kind {
            Kind::Map(entries) => Some(MapReader {
                owner,
                what: what.to_string(),
                entries,
                known: Vec::new(),
                used: vec![false; entries.len()],
            }),
            _ => {
                self.wrong_type(node, "a mapping", what);
                None
            }
        }
    }

    /// The entries of a mapping of named things (`models:`, `pools:`): key name + value.
    pub fn named<'a>(&mut self, node: &'a Node, what: &str) -> Vec<(Name, &'a Node)> {
        let Some(entries) = node.as_map() else {
            if !node.is_null() {
                self.wrong_type(node, "a mapping of names", what);
            }
            return Vec::new();
        };
        let mut out: Vec<(Name, &'a Node)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in entries {
            // a repeated key is E003 already: the first entry counts, as everywhere
            if !seen.insert(k.text()) {
                continue;
            }
            if let Some(name) = self.string(k, "a name") {
                out.push((name, v));
            }
        }
        out
    }

    pub fn list<'a>(&mut self, node: &'a Node, what: &str) -> &'a [Node] {
        match &node.kind {
            Kind::Seq(items) => items,
            _ if node.is_null() => &[],
            _ => {
                self.wrong_type(node, "a list", what);
                &[]
            }
        }
    }

    pub fn string(&mut self, node: &Node, what: &str) -> Option<Name> {
        match &node.kind {
            Kind::Scalar(s) if !s.is_null() || s.is_quoted() => {
                Some(Spanned::new(s.value.clone(), node.span))
            }
            _ => {
                self.wrong_type(node, "a string", what);
                None
            }
        }
    }

    pub fn strings(&mut self, node: &Node, what: &str) -> Vec<Name> {
        let items = self.list(node, what);
        items.iter().filter_map(|n| self.string(n, what)).collect()
    }

    pub fn number(&mut self, node: &Node, what: &str) -> Option<Spanned<f64>> {
        let parsed = node
            .as_scalar()
            .filter(|s| !s.is_quoted())
            .and_then(|s| s.value.replace('_', "").parse::<f64>().ok())
            .filter(|n| n.is_finite());
        match parsed {
            Some(n) => Some(Spanned::new(n, node.span)),
            None => {
                self.wrong_type(node, "a number", what);
                if let Some(full) = node.text().and_then(expand_suffix) {
                    if let Some(d) = self.diags.last_mut() {
                        d.help = Some(format!("write the number in full: `{full}`"));
                    }
                }
                None
            }
        }
    }

    /// A whole number (counts, limits): `12`, not `12.5`.
    pub fn integer(&mut self, node: &Node, what: &str) -> Option<Spanned<f64>> {
        let n = self.number(node, what)?;
        if n.value.fract() != 0.0 {
            self.wrong_type(node, "a whole number", what);
            return None;
        }
        Some(n)
    }

    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<Spanned<bool>> {
        let value =
            node.as_scalar()
                .filter(|s| !s.is_quoted())
                .and_then(|s| match s.value.as_str() {
                    "true" | "True" | "TRUE" => Some(true),
                    "false" | "False" | "FALSE" => Some(false),
                    _ => None,
                });
        match value {
            Some(b) => Some(Spanned::new(b, node.span)),
            None => {
                self.wrong_type(node, "`true` or `false`", what);
                None
            }
        }
    }

    /// One of a fixed set of words.
    pub fn keyword<T: Copy>(
        &mut self,
        node: &Node,
        what: &str,
        choices: &[(&'static str, T)],
    ) -> Option<Spanned<T>> {
        let name = self.string(node, what)?;
        if let Some((_, v)) = choices.iter().find(|(w, _)| *w == name.value) {
            return Some(Spanned::new(*v, node.span));
        }
        let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
        let listed = words
            .iter()
            .map(|w| format!("`{w}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let help = match did_you_mean(&name.value, words.iter().copied()) {
            Some(dym) => format!("{dym} {what} is one of {listed}"),
            None => format!("{what} is one of {listed}"),
        };
        self.push(
            Diagnostic::new(
                Code::InvalidKeyword,
                node.span,
                format!("`{}` is not a valid {what}", name.value),
            )
            .primary_label(format!("unknown {what}"))
            .help(help),
        );
        None
    }

    /// A value in the rule language's syntax (duration, rate, cron, ...).
    pub fn typed<T>(
        &mut self,
        node: &Node,
        what: &str,
        parse: fn(&str) -> Result<T, SyntaxError>,
    ) -> Option<Spanned<T>> {
        let Some(text) = node.text().filter(|_| !node.is_null()) else {
            self.wrong_type(node, &format!("{what} (a string)"), what);
            return None;
        };
        match parse(text.trim()) {
            Ok(v) => Some(Spanned::new(v, node.span)),
            Err(e) => {
                let lead = text.len() - text.trim_start().len();
                let span = node.value_span(e.range.start + lead..e.range.end + lead);
                let code = if e.too_complex {
                    Code::TooComplex
                } else {
                    Code::InvalidValue
                };
                self.push(
                    Diagnostic::new(code, span, e.message)
                        .primary_label(format!("expected {what}"))
                        .help_opt(e.help),
                );
                None
            }
        }
    }

    /// The name of an environment variable (`ANTHROPIC_API_KEY`), never a secret.
    pub fn env_name(&mut self, node: &Node, what: &str) -> Option<Name> {
        let name = self.string(node, what)?;
        let v = name.value.as_str();
        let valid = !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && !v.starts_with(|c: char| c.is_ascii_digit());
        if valid {
            return Some(name);
        }
        if looks_like_secret(v) {
            self.push(
                Diagnostic::new(
                    Code::SecretInPolicy,
                    node.span,
                    format!("{what} holds what looks like a secret"),
                )
                .primary_label("this looks like a credential, not a variable name")
                .help(format!(
                    "put the secret in an environment variable and write its name here, e.g. `{}`; rotate the leaked secret",
                    example_env(what)
                )),
            );
        } else {
            self.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    node.span,
                    format!("`{v}` is not an environment variable name"),
                )
                .primary_label("expected a name such as `SLACK_WEBHOOK_URL`")
                .help("environment variable names use capital letters, digits and `_`"),
            );
        }
        None
    }
}

/// `128k` → `128000`, `1M` → `1000000`: what a number with a suffix was meant to be.
fn expand_suffix(text: &str) -> Option<String> {
    let text = text.trim();
    let (digits, factor) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 1_000.0),
        (i, 'm' | 'M') => (&text[..i], 1_000_000.0),
        _ => return None,
    };
    let n: f64 = digits.parse().ok()?;
    Some(format!("{}", n * factor))
}

/// A variable name that fits the field, for help lines.
fn example_env(what: &str) -> &'static str {
    if what.contains("endpoint") {
        "SLACK_WEBHOOK_URL"
    } else if what.contains("secret") {
        "TELEGRAM_BOT_TOKEN"
    } else {
        "ANTHROPIC_API_KEY"
    }
}

/// Credentials tend to be long runs of letters and digits, or URLs with tokens in them.
pub fn looks_like_secret(v: &str) -> bool {
    let prefixes = ["sk-", "sk_", "xoxb-", "xoxp-", "AIza", "ghp_", "Bearer "];
    if prefixes.iter().any(|p| v.starts_with(p)) {
        return true;
    }
    if let Some((_, rest)) = v.split_once("://") {
        let webhook = [
            "hooks.slack.com",
            "discord.com/api/webhooks",
            "discordapp.com/api/webhooks",
            "api.telegram.org/bot",
        ];
        let token_segment = rest.split(['/', '?', '&', '=']).any(|seg| {
            seg.len() >= 20
                && seg.chars().any(|c| c.is_ascii_digit())
                && seg.chars().any(|c| c.is_ascii_alphabetic())
        });
        return rest.contains('@') || webhook.iter().any(|w| rest.contains(w)) || token_segment;
    }
    let long_token = v.len() >= 24 && !v.contains(' ');
    let mixed = v.chars().any(|c| c.is_ascii_lowercase()) && v.chars().any(|c| c.is_ascii_digit());
    long_token && mixed
}

impl<'a> MapReader<'a> {
    fn find(&mut self, key: &'static str) -> Option<(&'a Node, &'a Node)> {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
        let i = self
            .entries
            .iter()
            .position(|(k, _)| k.text() == Some(key))?;
        // a repeated key is E003 already; the first value counts, the repeat is not unknown
        for (j, (k, _)) in self.entries.iter().enumerate() {
            if k.text() == Some(key) {
                self.used[j] = true;
            }
        }
        let (k, v) = &self.entries[i];
        Some((k, v))
    }

    /// The value of an optional key.
    pub fn opt(&mut self, key: &'static str) -> Option<&'a Node> {
        self.find(key).map(|(_, v)| v)
    }

    /// The key node itself (for spans) and its value.
    pub fn opt_entry(&mut self, key: &'static str) -> Option<(&'a Node, &'a Node)> {
        self.find(key)
    }

    /// The value of a required key; reports E006 when it is absent. `example` is a value
    /// of the right shape, shown in the help as `key: example`.
    pub fn req(&mut self, ctx: &mut Ctx, key: &'static str, example: &str) -> Option<&'a Node> {
        let found = self.opt(key);
        // a misspelt key (`cost_per_tokens`) is reported once, as E005 with the suggestion
        let misspelt = self.entries.iter().enumerate().any(|(i, (k, _))| {
            !self.used[i]
                && k.text()
                    .is_some_and(|t| crate::diag::suggest::closest(t, [key]).is_some())
        });
        if found.is_none() && !misspelt {
            ctx.push(missing_key(
                self.owner,
                format!("{} is missing `{key}`", self.what),
                format!("`{key}` is required here"),
                format!("add `{key}: {example}`"),
            ));
        }
        found
    }

    /// Declares keys that are read elsewhere, so `finish` does not report them.
    pub fn allow(&mut self, keys: &[&'static str]) {
        for key in keys {
            let _ = self.find(key);
        }
    }

    /// Reports unused keys (E005) with the closest known key as a suggestion.
    pub fn finish(self, ctx: &mut Ctx) {
        for (i, (key, _)) in self.entries.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let text = key.text().unwrap_or("?");
            let mut known = self.known.clone();
            known.sort_unstable();
            let listed = known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            // a key that names a section of the format is answered with where that
            // section lives, unless the close key here means the same thing: a
            // "did you mean" must never lead to a section of another meaning
            let close = crate::diag::suggest::closest(text, known.iter().copied());
            let same = close.is_some_and(|c| {
                super::sections::named(c).is_empty() || super::sections::same_meaning(text, c)
            });
            let test_file = (text == "tests" && self.what == "a policy document").then(|| {
                "`tests` is the key of a test file: name the file `*.test.yaml` and run it with `rulec test`".to_string()
            });
            let help = match (test_file, close, super::sections::elsewhere(text)) {
                (Some(t), _, _) => t,
                (None, Some(c), _) if same => format!("did you mean `{c}`?"),
                (None, _, Some(there)) => there,
                (None, Some(c), None) => format!("did you mean `{c}`?"),
                (None, None, None) => format!("{} takes {listed}", self.what),
            };
            ctx.push(
                Diagnostic::new(
                    Code::UnknownKey,
                    key.span,
                    format!("unknown key `{text}` in {}", self.what),
                )
                .primary_label("unknown key")
                .help(help),
            );
        }
    }

    pub fn owner(&self) -> Span {
        self.owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// E006 must be built by [`missing_key`], whose help is not optional: a diagnostic
    /// built any other way could go out without saying what to write.
    #[test]
    fn every_missing_key_goes_through_one_constructor() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![root.clone()];
        let mut offenders = Vec::new();
        let needle = ["Code::", "MissingKey"].concat();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let allowed = path.ends_with("policy/reader.rs");
                    if text.contains(&needle) && !allowed {
                        offenders.push(path.display().to_string());
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "build E006 with `reader::missing_key`: {offenders:?}"
        );
        // the walk found the sources at all, so an empty list means something
        assert!(root.join("policy/reader.rs").is_file());
    }

    #[test]
    fn a_missing_key_says_what_to_write() {
        let text = "name: probe";
        let file = crate::source::SourceMap::new().add("p.yaml", text);
        let node = crate::load::yaml::parse(file, text).0.remove(0);
        let mut ctx = Ctx::default();
        let mut m = ctx.map(&node, node.span, "`thing`").expect("a mapping");
        assert!(m.req(&mut ctx, "interval", "30s").is_none());
        let help = ctx.diags[0].help.clone().unwrap_or_default();
        assert_eq!(help, "add `interval: 30s`");
    }
}
