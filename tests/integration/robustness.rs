//! Bad input gets a clear diagnostic or a clear error, never a panic or a hang.

use crate::common::{codes, rulec, scratch};

fn check_bytes(name: &str, bytes: &[u8]) -> (i32, Vec<String>, String) {
    let dir = scratch(&format!("robust_{}", name.replace('.', "_")));
    let file = dir.join(name);
    std::fs::write(&file, bytes).unwrap();
    let run = rulec(&["check", "--format", "json", file.to_str().unwrap()]);
    assert!(!run.stderr.contains("panicked"), "panic: {}", run.stderr);
    (run.code, codes(&run.stdout), run.stdout)
}

#[test]
fn empty_and_comment_only_files_warn() {
    assert_eq!(check_bytes("empty.yaml", b"").1, vec!["W001"]);
    assert_eq!(
        check_bytes("comment.yaml", b"# nothing yet\n").1,
        vec!["W001"]
    );
}

#[test]
fn binary_and_non_utf8_files_are_refused() {
    let (code, c, _) = check_bytes("bin.yaml", b"\x7fELF\x02\x01\x01\x00\x00\x00");
    assert_eq!((code, c), (1, vec!["E001".to_string()]));
    let (code, c, out) = check_bytes("latin1.yaml", b"gateway:\n  version: \"caf\xe9\"\n");
    assert_eq!((code, c), (1, vec!["E001".to_string()]));
    assert!(out.contains("\"line\": 2"), "{out}");
}

#[test]
fn tabs_get_a_hint() {
    let (code, c, out) = check_bytes("tabs.yaml", b"gateway:\n\tversion: v2\n");
    assert_eq!((code, c), (1, vec!["E002".to_string()]));
    assert!(out.contains("tabs for indentation"), "{out}");
}

#[test]
fn ten_megabyte_file_is_checked() {
    let mut text = String::from("gateway:\n  models:\n");
    let mut i = 0;
    while text.len() < 10 * 1024 * 1024 {
        text.push_str(&format!("    m{i}:\n      provider: nowhere\n      model: x\n      max_tokens: 100\n      cost_per_token: 0.000001\n"));
        i += 1;
    }
    let (code, c, _) = check_bytes("big.yaml", text.as_bytes());
    assert_eq!(code, 1);
    assert_eq!(
        c.iter().filter(|c| *c == "E020").count(),
        i,
        "one undefined provider per model"
    );
}

#[test]
fn deeply_nested_parentheses_are_refused() {
    let cond = format!(
        "{}task_complexity == \"simple\"{}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let text = format!(
        "gateway:\n  routing_strategy:\n    rules:\n      - if: '{cond}'\n        model: m\n"
    );
    let (code, c, _) = check_bytes("parens.yaml", text.as_bytes());
    assert_eq!(code, 1);
    assert!(c.contains(&"E004".to_string()), "{c:?}");
}

#[test]
fn deeply_nested_yaml_is_refused() {
    let text = format!("gateway: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (code, c, _) = check_bytes("nested.yaml", text.as_bytes());
    assert_eq!((code, c), (1, vec!["E004".to_string()]));
}

#[test]
fn alias_bombs_are_refused() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let (code, c, _) = check_bytes("bomb.yaml", text.as_bytes());
    assert_eq!(code, 1);
    assert_eq!(c, vec!["E004".to_string()]);
}

#[test]
fn a_folder_without_policies_is_a_clear_error() {
    let dir = scratch("no_policy");
    std::fs::write(dir.join("readme.md"), "hi").unwrap();
    let run = rulec(&["check", dir.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("holds no policy files"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_keys_suggest_the_right_one() {
    let (_, c, out) = check_bytes("typo.yaml", b"load_balancing:\n  pools:\n    p:\n      models: []\n      wieght: [1]\n      max_concurent: 3\n");
    assert!(c.iter().filter(|c| *c == "E005").count() == 2, "{c:?}");
    assert!(out.contains("did you mean `weight`?"), "{out}");
    assert!(out.contains("did you mean `max_concurrent`?"), "{out}");
}

#[test]
fn duplicate_keys_point_at_both() {
    let (_, c, out) = check_bytes("dup.yaml", b"gateway:\n  version: v1\n  version: v2\n");
    assert_eq!(c, vec!["E003"]);
    assert!(out.contains("first written here"), "{out}");
}
