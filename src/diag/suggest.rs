//! "Did you mean" suggestions: the closest known name by edit distance, and for request
//! attributes also by a shared word, so every tool suggests the same attribute.

/// The candidate closest to `input`, if it is close enough to be a plausible typo.
pub fn closest<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let input_lower = input.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for cand in candidates {
        let cand_lower = cand.to_ascii_lowercase();
        let dist = strsim::damerau_levenshtein(&input_lower, &cand_lower);
        let limit = (input.chars().count().max(cand.chars().count()) / 3).max(1);
        let prefix = cand_lower.starts_with(&input_lower) || input_lower.starts_with(&cand_lower);
        let score = if prefix && dist > limit { limit } else { dist };
        if score <= limit && best.is_none_or(|(d, _)| score < d) {
            best = Some((score, cand));
        }
    }
    best.map(|(_, c)| c)
}

/// A help line "did you mean `x`?" when a close candidate exists.
pub fn did_you_mean<'a, I>(input: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    closest(input, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The attribute `input` most likely means: the closest by edit distance, else the one
/// sharing most words with it (`tokens` → `estimated_tokens`), nearest first on ties.
pub fn closest_attribute<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    if let Some(c) = closest(input, candidates.iter().copied()) {
        return Some(c);
    }
    let input_lower = input.to_ascii_lowercase();
    let mine = words(&input_lower);
    let mut best: Option<(usize, usize, &'a str)> = None;
    for cand in candidates {
        let cand_lower = cand.to_ascii_lowercase();
        let shared = words(&cand_lower)
            .iter()
            .filter(|w| mine.contains(w))
            .count();
        if shared == 0 {
            continue;
        }
        let dist = strsim::damerau_levenshtein(&input_lower, &cand_lower);
        if best.is_none_or(|(s, d, _)| shared > s || (shared == s && dist < d)) {
            best = Some((shared, dist, cand));
        }
    }
    best.map(|(_, _, c)| c)
}

/// The words of a name (`estimated_tokens` → `estimated`, `tokens`); words shorter than
/// three letters say too little to tie two names together.
fn words(name: &str) -> Vec<&str> {
    name.split(['_', '.', '-'])
        .filter(|w| w.len() >= 3)
        .collect()
}

/// A help line "did you mean `x`?" for an attribute, by [`closest_attribute`].
pub fn did_you_mean_attribute<'a, I>(input: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    closest_attribute(input, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_rejects_strangers() {
        let names = ["claude_opus", "claude_sonnet", "openclaw_light"];
        assert_eq!(closest("claude_sonet", names), Some("claude_sonnet"));
        assert_eq!(closest("gpt_55", names), None);
        assert_eq!(closest("weigth", ["weight", "models"]), Some("weight"));
    }

    #[test]
    fn attributes_match_by_a_shared_word() {
        let attrs = ["estimated_tokens", "task_type", "customer_tier"];
        assert_eq!(closest_attribute("tokens", attrs), Some("estimated_tokens"));
        assert_eq!(closest_attribute("tier", attrs), Some("customer_tier"));
        assert_eq!(closest_attribute("task_typ", attrs), Some("task_type"));
        assert_eq!(closest_attribute("latency", attrs), None);
    }
}
