//! The registry of diagnostic codes: one entry per code with its severity and its doc
//! (what, why, example, fix). `--explain` and the pages under `docs/codes/` are both
//! generated from here (by `tools::code_docs`); each example is the code's own test
//! fixture, so every example is checked.

use super::Severity;

/// The documentation of one diagnostic code.
#[derive(Debug)]
pub struct CodeDoc {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
    pub what: &'static str,
    pub why: &'static str,
    pub fix: &'static str,
    /// The policy that triggers it: `tests/fixtures/codes/<CODE>.yaml`.
    pub example: &'static [u8],
}

macro_rules! codes {
    ($( $variant:ident = $code:literal $sev:ident $name:literal {
        summary: $summary:literal,
        what: $what:literal,
        why: $why:literal,
        fix: $fix:literal $(,)?
    } )*) => {
        /// A stable diagnostic code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($variant),* }

        /// Every code, in documentation order.
        pub const ALL: &[Code] = &[$(Code::$variant),*];

        impl Code {
            pub fn doc(self) -> &'static CodeDoc {
                match self {
                    $(Code::$variant => &CodeDoc {
                        code: $code,
                        name: $name,
                        severity: Severity::$sev,
                        summary: $summary,
                        what: $what,
                        why: $why,
                        fix: $fix,
                        example: include_bytes!(concat!("../../tests/fixtures/codes/", $code, ".yaml")),
                    },)*
                }
            }
        }
    };
}

impl Code {
    pub fn as_str(self) -> &'static str {
        self.doc().code
    }

    pub fn severity(self) -> Severity {
        self.doc().severity
    }

    /// Looks a code up by its text, e.g. `E020` (case-insensitive).
    pub fn parse(text: &str) -> Option<Code> {
        ALL.iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

codes! {
    InvalidUtf8 = "E001" Error "invalid-utf8" {
        summary: "the file is not UTF-8 text",
        what: "The file contains bytes that are not valid UTF-8, or NUL bytes that mark a binary file.",
        why: "Policies are YAML text; a binary or mis-encoded file was most likely picked up by mistake, and guessing its encoding would check something other than what the author wrote.",
        fix: "Save the file as UTF-8, or move non-policy files out of the policy folder.",
    }
    YamlSyntax = "E002" Error "yaml-syntax" {
        summary: "the file is not valid YAML",
        what: "The YAML parser could not read the file: bad indentation, a tab used for indentation, an unclosed quote or bracket.",
        why: "Nothing after the error can be read reliably, so the file is not checked further.",
        fix: "Correct the YAML at the position shown. Indent with spaces, never tabs.",
    }
    DuplicateKey = "E003" Error "duplicate-key" {
        summary: "a key appears twice in the same mapping",
        what: "The same key is written twice in one YAML mapping.",
        why: "Most YAML loaders silently keep the last value, so half of the author's intent is lost without a word.",
        fix: "Remove one of the two entries, or merge them.",
    }
    TooComplex = "E004" Error "too-complex" {
        summary: "the document exceeds a safety limit",
        what: "The document nests deeper than 64 levels, expands aliases into more than 100,000 nodes, or a condition nests deeper than 64 levels.",
        why: "Such inputs are almost always generated or malicious (an \"alias bomb\" expands a few lines into billions of nodes); rulec refuses them instead of running out of memory or stack.",
        fix: "Flatten the structure; write conditions with fewer nested parentheses; do not reuse aliases of aliases.",
    }
    UnknownKey = "E005" Error "unknown-key" {
        summary: "a key that this section does not have",
        what: "A mapping contains a key that rulec does not know in that place.",
        why: "A misspelt key (`wieght` for `weight`) would otherwise be ignored and its setting silently lost.",
        fix: "Use the suggested key, or remove the entry. `rulec check --explain E005` lists nothing more: the message names the keys that are allowed.",
    }
    MissingKey = "E006" Error "missing-key" {
        summary: "a required key is missing",
        what: "A section lacks a key that it cannot work without (a model's `provider`, a provider's `base_url`, a channel's `endpoint_env`).",
        why: "Without it the gateway cannot act: it would not know where to send a request or a notification.",
        fix: "Add the key named in the message.",
    }
    WrongType = "E007" Error "wrong-type" {
        summary: "a value of the wrong kind",
        what: "A value has the wrong YAML shape: a string where a number is expected, a list where a mapping is expected.",
        why: "Guessing a conversion hides mistakes such as `max_concurrent: \"ten\"`.",
        fix: "Write the value in the form the message asks for.",
    }
    InvalidKeyword = "E008" Error "invalid-keyword" {
        summary: "a value outside the words this setting accepts",
        what: "A setting that takes one of a fixed set of words (a strategy, a status, a metric, an action, a provider kind) has another value.",
        why: "An unrecognised strategy cannot be executed; falling back to a default would route traffic in a way nobody wrote.",
        fix: "Use one of the words listed in the help, usually the suggested one.",
    }
    InvalidValue = "E009" Error "invalid-value" {
        summary: "a typed value that does not parse",
        what: "A duration (`30s`), rate (`10/min`), interval (`every 6h`), cron schedule (`0 8 * * *`), money amount, URL or environment variable name is malformed, or a `time_zone` is not a zone of the IANA time zone database (`Europe/Berlin`).",
        why: "These values drive timers and limits at run time; a malformed one must be caught before deployment.",
        fix: "Write the value in the syntax shown in the help.",
    }
    ExprSyntax = "E010" Error "expression-syntax" {
        summary: "a routing condition that does not parse",
        what: "The `if:` condition of a routing rule is not a valid expression of the rule language.",
        why: "A rule whose condition cannot be read cannot be compiled; the error points at the exact character inside the condition.",
        fix: "Correct the condition. Conditions compare attributes with literals: `task_type == \"code_generation\" && estimated_tokens > 8000`.",
    }
    DuplicateDefinition = "E011" Error "duplicate-definition" {
        summary: "a name or section defined twice",
        what: "A model, provider, pool, channel, template or attribute is declared twice, or a section that may appear once (such as `failover`) appears in two files.",
        why: "When policies are split over several files, a second definition would silently replace the first.",
        fix: "Keep one definition; rename or delete the other.",
    }
    EmptyFile = "W001" Warning "empty-file" {
        summary: "a policy file with no content",
        what: "A policy file is empty or contains only comments.",
        why: "An empty file in a policy folder is usually a mistake: a file that was meant to be filled in or deleted.",
        fix: "Add the policy, or delete the file.",
    }
    UndefinedName = "E020" Error "undefined-name" {
        summary: "a reference to a model, provider, pool, channel, template or event that is not declared",
        what: "A rule, pool, failover chain or notification route names something that no file declares.",
        why: "At run time the gateway would have nowhere to send the request or notification; for a provider it would have no endpoint and no credentials.",
        fix: "Declare the name (`providers:`, `gateway.models`, `load_balancing.pools`, `channels:`, `templates:`) or use the suggested one.",
    }
    UnknownAttribute = "E021" Error "unknown-attribute" {
        summary: "a condition tests an attribute the request schema does not have",
        what: "A routing condition refers to a request attribute that is neither built in nor declared under `request:`.",
        why: "Such a condition would compare against a value that never arrives, so the rule could never fire as intended.",
        fix: "Use the suggested attribute, or declare it under `request:` with its type.",
    }
    TypeMismatch = "E030" Error "type-mismatch" {
        summary: "a comparison between values of different types or units",
        what: "A condition compares an attribute with a value of another type (`estimated_tokens == \"big\"`) or another unit (a duration with money).",
        why: "Such a comparison is never true; it is almost always a typo or a misunderstanding of the attribute.",
        fix: "Compare with a value of the attribute's type, shown in the label.",
    }
    ValueNotAllowed = "E031" Error "value-not-allowed" {
        summary: "a value outside the attribute's allowed values",
        what: "A condition compares an enumerated attribute with a value that is not one of its declared values.",
        why: "Requests never carry that value, so the comparison is dead; typos such as `\"simpel\"` are the usual cause.",
        fix: "Use one of the declared values (the suggestion in the help), or add the value to the attribute under `request:`.",
    }
    InvalidOperator = "E032" Error "invalid-operator" {
        summary: "an operator that does not apply to its operands",
        what: "An ordering comparison (`<`, `>=`) on a value without an order (strings, enums, booleans), or a non-boolean attribute used as a condition on its own.",
        why: "There is no meaningful answer to `task_type > \"analysis\"`.",
        fix: "Use `==`, `!=` or `in [...]` for unordered values; compare non-boolean attributes explicitly.",
    }
    AttributeComparison = "E033" Error "attribute-comparison" {
        summary: "a condition that compares two request attributes",
        what: "A comparison has a request attribute on both sides (`max_tokens_wanted > estimated_tokens`).",
        why: "Conditions compile into a decision table indexed by each attribute's value classes; a relation between two attributes has no such classes, so it cannot be compiled or analysed.",
        fix: "Compare each attribute with a literal value; if the relation matters, let the client send it as a boolean attribute.",
    }
    ConstantCondition = "W030" Warning "constant-comparison" {
        summary: "a comparison whose result does not depend on the request",
        what: "A comparison is always true or always false: it compares two literals, or a value outside the attribute's declared range (`estimated_tokens < 0`).",
        why: "The rule then fires always or never, which is rarely what was meant.",
        fix: "Compare the attribute with a value inside its range, or remove the comparison.",
    }
    DuplicateListValue = "W031" Warning "duplicate-list-value" {
        summary: "a value repeated in a list",
        what: "An `in [...]` list, a capability list or a channel list names the same value twice.",
        why: "The repeat has no effect and often hides a typo for a different value.",
        fix: "Remove the repeat, or correct it to the value you meant.",
    }
    RuleTarget = "E040" Error "rule-target" {
        summary: "a routing rule without exactly one target",
        what: "A routing rule has neither `model` nor `pool`, or has both.",
        why: "The gateway must know where a matching request goes, and only one place.",
        fix: "Give the rule either `model: NAME` or `pool: NAME`.",
    }
    FallbackNotLast = "E041" Error "fallback-not-last" {
        summary: "a fallback that is not the last rule, or more than one fallback",
        what: "A `fallback` entry is followed by more rules, or the rule list has two fallbacks.",
        why: "Rules are tried in order and the fallback matches everything: rules after it can never fire.",
        fix: "Move the fallback to the end of the list and keep only one.",
    }
    ShadowedRule = "W042" Warning "shadowed-rule" {
        summary: "a rule that can never fire",
        what: "Every request the rule's condition matches is already taken by earlier rules; the message names them.",
        why: "Rules are tried in order, so the rule is dead code; usually the earlier rule is too broad or the two are in the wrong order.",
        fix: "Move the rule above the rules that shadow it, narrow them, or delete the rule.",
    }
    NeverMatches = "W043" Warning "never-matches" {
        summary: "a condition that matches no request",
        what: "The parts of the condition contradict each other (`tier == \"a\" && tier == \"b\"`), or ask for values outside the attributes' declared ranges.",
        why: "The rule can never fire, which is rarely what its author meant.",
        fix: "Correct the condition, or delete the rule.",
    }
    AlwaysMatches = "W044" Warning "always-matches" {
        summary: "a rule whose condition matches every request",
        what: "A rule that is not the `fallback` matches every possible request.",
        why: "Every rule after it is dead, and a catch-all hidden in an `if:` is easy to misread.",
        fix: "Write it as `- fallback: NAME` at the end of the list, or narrow the condition.",
    }
    Uncovered = "W045" Warning "uncovered-requests" {
        summary: "requests that no rule matches, with no fallback",
        what: "Some requests match no routing rule and the list has no `fallback`; the message gives one such request.",
        why: "The gateway has no route for them and must refuse them.",
        fix: "Add `- fallback: NAME` as the last rule, or a rule for the example request.",
    }
    OverlappingRules = "I046" Info "overlapping-rules" {
        summary: "rules whose conditions overlap",
        what: "Some requests match both this rule and an earlier one; the earlier rule decides them. Shown with `--info`.",
        why: "Overlaps are normal in first-match lists, but it helps to see which requests a rule really gets.",
        fix: "Nothing, if the order is intended; otherwise reorder or narrow the rules.",
    }
    MissingCapability = "E050" Error "missing-capability" {
        summary: "a task type routed to a model that lacks a capability it requires",
        what: "A rule whose condition selects a task type sends it to a model (or a pool with a member) that does not list a capability the task type requires under `request.task_type.requires`.",
        why: "The request would be answered by a model known not to be able to do the task.",
        fix: "Route the task type to a model with the capability, or add the capability to the model if it has it.",
    }
    CapabilityReach = "W051" Warning "capability-reach" {
        summary: "a request type that reaches a model lacking a capability it requires",
        what: "A rule's condition does not exclude a task type (or other attribute value) whose requirements the rule's model, or a member of its pool, does not meet; the message gives a request that takes this path.",
        why: "Such requests are answered by a model known not to be able to do the task; the typical cause is a broad early rule (`task_complexity == \"simple\"`) that catches task types it was not meant for.",
        fix: "Restrict the rule to the task types its model can serve (`&& task_type in [...]`), or route the other task types before it.",
    }
    UnprovidedCapability = "W050" Warning "unprovided-capability" {
        summary: "a capability that no model provides",
        what: "A task type requires a capability that no declared model lists.",
        why: "No routing rule can serve that task type correctly; often the capability name is misspelt on one side.",
        fix: "Correct the name, or add a model that has the capability.",
    }
    ContextWindowReach = "W052" Warning "context-window-reach" {
        summary: "a rule that admits requests larger than its model's context window",
        what: "A rule's condition allows `estimated_tokens` above the `max_tokens` of its model, or of a member of its pool; the message gives a request that takes this path. `max_tokens` is the model's context window: the most tokens (prompt and answer together) one request to it may carry.",
        why: "Such a request is sent to a model that cannot hold it; the provider refuses it, or silently cuts the prompt.",
        fix: "Bound the rule (`&& estimated_tokens <= MAX`), route larger requests to a model with a larger window in an earlier rule, or correct `max_tokens`.",
    }
    WeightsMismatch = "E060" Error "weights-mismatch" {
        summary: "a pool whose weights do not match its members",
        what: "A load-balancing pool lists a different number of weights than models.",
        why: "The balancer cannot tell which weight belongs to which model.",
        fix: "Give one weight per model, in the same order.",
    }
    OutOfRange = "E061" Error "out-of-range" {
        summary: "a number outside the range that makes sense",
        what: "A count, weight, price, interval, timeout or limit is zero or negative where it must be positive, or a fraction lies outside 0 to 1.",
        why: "Zero concurrency, a negative price or an error rate above 100% cannot be executed meaningfully.",
        fix: "Use a value within the range given in the message.",
    }
    TimingConflict = "E062" Error "timing-conflict" {
        summary: "a timeout or interval that contradicts another",
        what: "A health-check timeout is not shorter than its interval, a cost window is checked less often than it is long, or a provider's `first_byte_timeout` is longer than its `timeout`.",
        why: "Checks would overlap, whole windows would pass unchecked, or a timeout could never fire: the whole call's timeout always comes first.",
        fix: "Make timeouts shorter than the interval they run in, `check_interval` shorter than the window, and `first_byte_timeout` no longer than `timeout`.",
    }
    WeightsNotHundred = "W060" Warning "weights-not-percent" {
        summary: "weights that do not add up to 100",
        what: "The weights of a pool or of the failover fallbacks add up to something other than 100.",
        why: "Weights are relative shares, so the traffic split is not what the numbers suggest: 80/20/10 gives 72.7% / 18.2% / 9.1%.",
        fix: "Adjust the weights so that they add up to 100.",
    }
    BudgetBelowPrice = "W061" Warning "budget-below-price" {
        summary: "a budget or threshold too small for the prices of the models",
        what: "A cost limit (per session, per day, or a cost-per-task threshold) buys fewer than 1,000 tokens of a model the policy routes to.",
        why: "Either the budget is unusable or the price is in the wrong unit (per 1K or per 1M tokens written as per token).",
        fix: "Check `cost_per_token` (it is the price of one token, e.g. `0.000015` for $15 per million) and the limit.",
    }
    TimeoutAboveLatency = "W062" Warning "timeout-above-latency" {
        summary: "a failover timeout above the latency that triggers a switch",
        what: "A failover fallback may take longer than the `latency_p99` threshold of the cost window.",
        why: "Traffic failed over to that provider can breach the latency rule and trigger another switch: the two policies fight.",
        fix: "Lower the timeout below the threshold, or raise the threshold.",
    }
    UnitlessThreshold = "W063" Warning "unitless-threshold" {
        summary: "a latency threshold without a unit",
        what: "A `latency_*` threshold is a bare number.",
        why: "Milliseconds are assumed, but `10` could as well mean seconds: a unit makes the intent unambiguous.",
        fix: "Write the unit: `10000ms` or `10s`.",
    }
    QualityUnenforceable = "W064" Warning "quality-unenforceable" {
        summary: "a quality floor that no model can be measured against",
        what: "`quality_threshold` is set, but some routed models declare no `quality` score.",
        why: "The floor cannot be enforced for those models, so cost optimisation may pick a model below it.",
        fix: "Give every model a `quality` score between 0 and 1, or remove the threshold.",
    }
    NoHealthCheck = "W065" Warning "no-health-check" {
        summary: "a pool without active health checks",
        what: "A load-balancing pool has no `health_check` and no default is set under `load_balancing.health_check`.",
        why: "A dead member is then only noticed by failing real requests.",
        fix: "Add a `health_check` with `interval`, `timeout` and `unhealthy_threshold` to the pool, or a default one to `load_balancing`.",
    }
    PriceNotPerToken = "W066" Warning "price-not-per-token" {
        summary: "a price per token that no model charges",
        what: "A model's `cost_per_token` (or `input_cost_per_token`, `output_cost_per_token`) is above $0.001, i.e. above $1,000 per million tokens; the message says what it means per million tokens and which unit it was probably written in.",
        why: "No published model costs that much (the dearest charge up to about $600 per million output tokens), so the number is almost always a price per 1K or per 1M tokens written as per token. Cost optimisation, budgets and cost windows would all be off by a factor of a thousand or a million.",
        fix: "Write the price of one token: $3 per million tokens is `cost_per_token: 0.000003`. The help gives the corrected value.",
    }
    InactiveModel = "W070" Warning "inactive-model" {
        summary: "a model that is not active is still in use",
        what: "A rule, pool or downgrade path uses a model whose `status` is `deprecated` or `disabled`.",
        why: "Deprecated models are about to disappear and disabled ones will not be called: traffic routed there fails or moves unexpectedly.",
        fix: "Route to an active model, or set the model's status back to `active`.",
    }
    UnusedModel = "W071" Warning "unused-model" {
        summary: "a model that no traffic can reach",
        what: "A declared model is the target of no routing rule, member of no pool used by a rule, and target of no downgrade or `fallback_to`.",
        why: "It is either dead configuration or a rule that was meant to use it is missing.",
        fix: "Route to it, or delete it.",
    }
    UnusedPool = "W072" Warning "unused-pool" {
        summary: "a pool that no rule routes to",
        what: "A load-balancing pool is declared, but no routing rule has `pool: NAME` (or `fallback: NAME`) naming it.",
        why: "Its weights, limits and health checks never apply: traffic goes to the models directly.",
        fix: "Route rules to the pool with `pool: NAME`, or delete it.",
    }
    UnusedProvider = "W073" Warning "unused-provider" {
        summary: "a provider that nothing uses",
        what: "A declared provider serves no model and takes no part in failover.",
        why: "It is dead configuration, often a misspelt provider name on the models' side.",
        fix: "Use it from a model or the failover chain, or delete it.",
    }
    CheapestDowngrade = "W074" Warning "cheapest-downgrade" {
        summary: "a downgrade with nowhere to go",
        what: "`downgrade_to: next_cheaper` can be triggered while traffic is on the cheapest routed model, which has no cheaper model to move to.",
        why: "When the cost window is breached on that model, the downgrade does nothing and the breach persists.",
        fix: "Add a cheaper model, or make sure the cheapest model is never the one whose cost breaches the threshold.",
    }
    DowngradeCycle = "W075" Warning "downgrade-cycle" {
        summary: "a downgrade that does not make things cheaper",
        what: "`downgrade_to` names a model that is not cheaper than some model it replaces, so downgrades can go up in price or return to where they started.",
        why: "A downgrade that raises the cost per token makes a cost breach worse, and a cycle never settles.",
        fix: "Downgrade to the cheapest model in use, or use `next_cheaper`.",
    }
    FailoverDeadEnd = "W076" Warning "failover-dead-end" {
        summary: "a failover provider that serves no declared model",
        what: "A provider in the failover chain has no declared model, so traffic failed over to it has nothing to run on.",
        why: "The failover looks configured but cannot carry traffic: at 3 AM it is a dead end.",
        fix: "Declare models for the provider, or remove it from the failover chain.",
    }
    EventWithoutProducer = "W080" Warning "event-without-producer" {
        summary: "a notification route for an event type that nothing emits",
        what: "A notification rule routes an event type that is neither emitted by the gateway nor declared under `events:`.",
        why: "The route can never fire; it is usually a misspelt event type.",
        fix: "Use one of the gateway's event types, or declare the event under `events:` when an external producer posts it.",
    }
    UnroutedNotification = "W081" Warning "unrouted-notification" {
        summary: "notifications that no route delivers",
        what: "A feature is set to notify (`scheduled_failover.notify: true`), but no notification rule routes its event type to a channel.",
        why: "The notification is produced and dropped; the people who expect it never hear of it.",
        fix: "Add a `routing_rules` entry for the event type named in the message.",
    }
    UnusedChannel = "W082" Warning "unused-channel" {
        summary: "a channel that no notification route uses",
        what: "A notification channel is declared, but no `routing_rules` entry sends anything to it.",
        why: "Its endpoint and credentials are configured for nothing; usually a route is missing.",
        fix: "Add it to a route's `channels`, or delete it.",
    }
    UnusedTemplate = "W083" Warning "unused-template" {
        summary: "a template that no route uses",
        what: "A content template is declared, but no notification route names it in `content_template`.",
        why: "It is dead configuration, often a misspelt template name on the route's side.",
        fix: "Use it from a route, or delete it.",
    }
    SecretInPolicy = "E090" Error "secret-in-policy" {
        summary: "a secret written into the policy",
        what: "A field that takes the *name* of an environment variable holds something that looks like a credential or a URL with a token.",
        why: "Policies are committed and bundles are shipped; secrets must stay in the environment.",
        fix: "Put the secret in an environment variable and write the variable's name (e.g. `ANTHROPIC_API_KEY`).",
    }
}
