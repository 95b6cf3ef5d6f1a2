//! "Did you mean" suggestions: the closest known name by edit distance.

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
}
